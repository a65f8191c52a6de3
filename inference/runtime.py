"""Loaded host models and SAEs kept per process (LRU), so that explaining a note or auditing a corpus
does not reload weights each time. Torch is imported inside the functions: the web process loads it
only when someone explains a note."""

from __future__ import annotations

import functools
import threading

_load_lock = threading.Lock()


@functools.lru_cache(maxsize=2)
def _host_model(source: str, revision: str | None, kind: str, device: str):
    from inference.engine.host_models import load_host_model

    return load_host_model(source=source, revision=revision, device=device, kind=kind)


@functools.lru_cache(maxsize=8)
def _sae(artifact_uri: str, device: str):
    from inference.engine.formats import load_sae

    return load_sae(artifact_uri).normalised().to(device).eval()


def device():
    from django.conf import settings

    from inference.engine.devices import resolve_device

    return resolve_device(settings.CONCORD_DEVICE)


def host_model_loaded(*, host_model, device_name: str):
    """The host model row's weights in eval mode on `device_name`, loaded once per process."""
    with _load_lock:  # two requests at once load the weights once
        return _host_model(host_model.source, host_model.revision or None, host_model.kind, device_name)


def sae_loaded(*, sae, device_name: str):
    """The SAE row's weights wrapped to read raw activations (NormalisedSAE), loaded once per process."""
    with _load_lock:
        return _sae(sae.artifact_uri, device_name)


def cache_clear() -> None:
    _host_model.cache_clear()
    _sae.cache_clear()
