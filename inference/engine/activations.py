"""The activation shard store: memory-mapped `.npy` shards of captured activations, written by
`hooks.capture_activations` and read by training, mining and normalisation.

On-disk layout of one activation directory (everything but the manifest is a plain `.npy`)::

    manifest.json                  ActivationManifest; written last, so a directory without it is
                                   an unfinished or failed capture and `ActivationStore.open` refuses it
    vocab.json                     {"token id": display string} for every token id that occurs
    tokens/shard_00000.npy         int32 [n, 5]: snippet index, token position in the tokenized
                                   snippet (special tokens counted), token id, char start, char end
                                   (-1, -1 where the tokenizer gives no offsets)
    <hook name>/shard_00000.npy    float16|float32 [n, d_in], one directory per hook point
    ...                            shard i of every hook holds the same tokens as tokens/shard_i

Rows are tokens in corpus order: snippet 0's kept tokens, then snippet 1's, and so on; padding and
special tokens ([CLS], [SEP], BOS, ...) are never stored.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_FILE = "manifest.json"
VOCAB_FILE = "vocab.json"
TOKENS_DIRECTORY = "tokens"
FORMAT_NAME = "concord-activations"
FORMAT_VERSION = 1
TOKEN_COLUMNS = ("snippet_index", "position", "token_id", "char_start", "char_end")
STORE_DTYPES = ("float16", "float32")

Progress = Callable[[float, str], None]


def shard_file_name(index: int) -> str:
    return f"shard_{index:05d}.npy"


@dataclass(frozen=True)
class ShardInfo:
    file: str
    start: int
    n_tokens: int


@dataclass(frozen=True)
class ActivationManifest:
    """What `manifest.json` records about one capture."""

    directory: str
    n_snippets: int
    n_tokens: int
    dtype: str
    hooks: dict[str, int]  # hook name -> d_in
    shards: tuple[ShardInfo, ...]
    max_length: int
    model: dict[str, Any] = field(default_factory=dict)  # source, revision, kind, d_model, n_layers
    n_special_excluded: int = 0
    n_truncated_snippets: int = 0
    token_columns: tuple[str, ...] = TOKEN_COLUMNS
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("directory")
        data["shards"] = [asdict(shard) for shard in self.shards]
        data["token_columns"] = list(self.token_columns)
        return data

    def write(self) -> None:
        path = Path(self.directory) / MANIFEST_FILE
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2))
        os.replace(temporary, path)  # a reader never sees half a manifest

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ActivationManifest:
        path = Path(directory) / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory} has no {MANIFEST_FILE}: not a finished activation capture")
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT_NAME or data.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path} is not a {FORMAT_NAME} v{FORMAT_VERSION} manifest")
        return cls(
            directory=str(directory),
            n_snippets=int(data["n_snippets"]),
            n_tokens=int(data["n_tokens"]),
            dtype=data["dtype"],
            hooks={name: int(d_in) for name, d_in in data["hooks"].items()},
            shards=tuple(ShardInfo(**shard) for shard in data["shards"]),
            max_length=int(data["max_length"]),
            model=data.get("model", {}),
            n_special_excluded=int(data.get("n_special_excluded", 0)),
            n_truncated_snippets=int(data.get("n_truncated_snippets", 0)),
            token_columns=tuple(data.get("token_columns", TOKEN_COLUMNS)),
        )


class ShardWriter:
    """Appends token rows to fixed-size memory-mapped shards; `abort` deletes everything it wrote.

    Each shard is pre-allocated with `shard_tokens` rows through `open_memmap`, so nothing larger
    than one batch is held in RAM; the last shard is cut to its real length on `finish`.
    """

    def __init__(self, directory: Path, hook_dims: dict[str, int], *, dtype: str, shard_tokens: int):
        if shard_tokens < 1:
            raise ValueError("shard_tokens must be positive")
        self.directory = directory
        self.hook_dims = dict(hook_dims)
        self.dtype = np.dtype(dtype)
        self.shard_tokens = shard_tokens
        self.shards: list[ShardInfo] = []
        self.n_tokens = 0
        self._created: list[Path] = []
        self._tokens: np.memmap | None = None
        self._activations: dict[str, np.memmap] = {}
        self._filled = 0
        for name in [TOKENS_DIRECTORY, *self.hook_dims]:
            sub = directory / name
            if not sub.exists():
                sub.mkdir(parents=True)
                self._created.append(sub)

    def _open_shard(self) -> None:
        index = len(self.shards)
        file = shard_file_name(index)
        token_path = self.directory / TOKENS_DIRECTORY / file
        self._created.append(token_path)
        self._tokens = np.lib.format.open_memmap(
            token_path, mode="w+", dtype=np.int32, shape=(self.shard_tokens, len(TOKEN_COLUMNS))
        )
        self._activations = {}
        for name, d_in in self.hook_dims.items():
            path = self.directory / name / file
            self._created.append(path)
            self._activations[name] = np.lib.format.open_memmap(
                path, mode="w+", dtype=self.dtype, shape=(self.shard_tokens, d_in)
            )
        self.shards.append(ShardInfo(file=file, start=self.n_tokens, n_tokens=0))
        self._filled = 0

    def append(self, tokens: np.ndarray, activations: dict[str, np.ndarray]) -> None:
        """tokens: int32 [n, 5] in TOKEN_COLUMNS order; activations: hook name -> [n, d_in]."""
        n = len(tokens)
        done = 0
        while done < n:
            if self._tokens is None or self._filled == self.shard_tokens:
                self._close_shard()
                self._open_shard()
            take = min(n - done, self.shard_tokens - self._filled)
            rows = slice(self._filled, self._filled + take)
            self._tokens[rows] = tokens[done : done + take]
            for name, values in activations.items():
                self._activations[name][rows] = values[done : done + take]
            self._filled += take
            done += take
            self.n_tokens += take
            last = self.shards[-1]
            self.shards[-1] = ShardInfo(file=last.file, start=last.start, n_tokens=self._filled)

    def _close_shard(self) -> None:
        if self._tokens is None:
            return
        paths = []
        for array in [self._tokens, *self._activations.values()]:
            array.flush()
            paths.append(Path(array.filename))
        self._tokens, self._activations = None, {}  # drop the write maps before rewriting files
        if self._filled < self.shard_tokens:
            for path in paths:
                _truncate_npy(path, self._filled)

    def finish(self) -> list[ShardInfo]:
        self._close_shard()
        return list(self.shards)

    def abort(self) -> None:
        self._tokens, self._activations = None, {}
        for path in reversed(self._created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()


def _truncate_npy(path: Path, n_rows: int, *, chunk_rows: int = 1 << 14) -> None:
    source = np.load(path, mmap_mode="r")
    temporary = path.with_suffix(".tmp.npy")
    target = np.lib.format.open_memmap(temporary, mode="w+", dtype=source.dtype, shape=(n_rows, *source.shape[1:]))
    for start in range(0, n_rows, chunk_rows):
        target[start : start + chunk_rows] = source[start : min(n_rows, start + chunk_rows)]
    target.flush()
    del target, source
    os.replace(temporary, path)


def write_activation_arrays(
    out_dir: str | os.PathLike,
    *,
    activations: dict[str, np.ndarray],
    snippet_index: np.ndarray,
    n_snippets: int,
    token_ids: np.ndarray | None = None,
    positions: np.ndarray | None = None,
    vocabulary: dict[int, str] | None = None,
    dtype: str = "float32",
    shard_tokens: int = 1 << 16,
    max_length: int = 0,
    model: dict[str, Any] | None = None,
) -> ActivationManifest:
    """Write in-memory token rows (hook name -> [n, d_in], snippet_index [n] non-decreasing) as an
    activation directory: imports of existing `.npy` activations, demos and tests."""
    out_dir = Path(out_dir)
    snippet_index = np.asarray(snippet_index, dtype=np.int64)
    n = snippet_index.size
    if n and (np.any(np.diff(snippet_index) < 0) or snippet_index[0] < 0 or snippet_index[-1] >= n_snippets):
        raise ValueError("snippet_index must be non-decreasing and within 0..n_snippets-1")
    for name, values in activations.items():
        if values.ndim != 2 or values.shape[0] != n:
            raise ValueError(f"activations[{name!r}] must be [{n}, d_in]; got {values.shape}")
    if dtype not in STORE_DTYPES:
        raise ValueError(f"dtype must be one of {STORE_DTYPES}")
    if positions is None:  # position within the snippet
        starts = np.searchsorted(snippet_index, snippet_index, side="left")
        positions = np.arange(n) - starts
    if token_ids is None:
        token_ids = np.zeros(n, dtype=np.int64)
    table = np.full((n, len(TOKEN_COLUMNS)), -1, dtype=np.int32)
    table[:, 0], table[:, 1], table[:, 2] = snippet_index, positions, token_ids
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(
        out_dir, {k: v.shape[1] for k, v in activations.items()}, dtype=dtype, shard_tokens=shard_tokens
    )
    try:
        for start in range(0, n, shard_tokens):
            writer.append(
                table[start : start + shard_tokens],
                {k: v[start : start + shard_tokens] for k, v in activations.items()},
            )
        shards = writer.finish()
    except BaseException:
        writer.abort()
        raise
    vocabulary = vocabulary or {}
    (out_dir / VOCAB_FILE).write_text(json.dumps({str(k): v for k, v in sorted(vocabulary.items())}))
    manifest = ActivationManifest(
        directory=str(out_dir),
        n_snippets=n_snippets,
        n_tokens=n,
        dtype=dtype,
        hooks={k: int(v.shape[1]) for k, v in activations.items()},
        shards=tuple(shards),
        max_length=max_length,
        model=model or {},
    )
    manifest.write()
    return manifest


@dataclass(frozen=True)
class SnippetActivations:
    """The kept tokens of one snippet; all arrays have the snippet's token count as first axis."""

    snippet_index: int
    token_ids: np.ndarray  # int32 [n_tok]
    token_strings: list[str]
    positions: np.ndarray  # int32 [n_tok], position in the tokenized snippet
    activations: np.ndarray  # float32 [n_tok, d_in]


@dataclass(frozen=True)
class ActivationBatch:
    """Rows start:stop of the store, always whole snippets."""

    start: int
    stop: int
    snippet_index: np.ndarray  # int32 [n], non-decreasing
    activations: np.ndarray  # float32 [n, d_in]


class ActivationStore:
    """Read access to the shards of one hook point, without loading them into RAM.

    `store[idx]` gathers arbitrary rows across shards (the trainer's random batches); `iter_batches`
    and `iter_snippets` stream in corpus order (mining, statistics). Values come back as float32.
    """

    def __init__(self, manifest: ActivationManifest, hook_name: str):
        if hook_name not in manifest.hooks:
            raise KeyError(f"{manifest.directory} holds no hook {hook_name!r}; it holds {sorted(manifest.hooks)}")
        self.manifest = manifest
        self.hook_name = hook_name
        self.directory = Path(manifest.directory)
        self.d_in = manifest.hooks[hook_name]
        self._shards = [np.load(self.directory / hook_name / shard.file, mmap_mode="r") for shard in manifest.shards]
        self._token_shards = [
            np.load(self.directory / TOKENS_DIRECTORY / shard.file, mmap_mode="r") for shard in manifest.shards
        ]
        for shard, array in zip(manifest.shards, self._shards, strict=False):
            if array.shape != (shard.n_tokens, self.d_in):
                raise ValueError(
                    f"shard {shard.file} of {hook_name} has shape {array.shape}, manifest says "
                    f"{(shard.n_tokens, self.d_in)}"
                )
        self._starts = np.array([shard.start for shard in manifest.shards] + [manifest.n_tokens], dtype=np.int64)
        self._token_table: np.ndarray | None = None
        self._snippet_offsets: np.ndarray | None = None
        self._vocabulary: dict[int, str] | None = None

    @classmethod
    def open(cls, directory: str | os.PathLike, hook_name: str) -> ActivationStore:
        return cls(ActivationManifest.load(directory), hook_name)

    def __len__(self) -> int:
        return self.manifest.n_tokens

    @property
    def shape(self) -> tuple[int, int]:
        return (self.manifest.n_tokens, self.d_in)

    @property
    def n_snippets(self) -> int:
        return self.manifest.n_snippets

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.manifest.dtype)

    # -- token metadata -------------------------------------------------------------------------
    @property
    def token_table(self) -> np.ndarray:
        """int32 [n_tokens, 5] in TOKEN_COLUMNS order, loaded once (20 bytes per token)."""
        if self._token_table is None:
            if self._token_shards:
                self._token_table = np.concatenate([np.asarray(shard) for shard in self._token_shards])
            else:
                self._token_table = np.zeros((0, len(TOKEN_COLUMNS)), dtype=np.int32)
        return self._token_table

    @property
    def token_index(self) -> np.ndarray:
        """int32 [n_tokens, 2]: (snippet index, token position) of every row."""
        return self.token_table[:, :2]

    @property
    def snippet_index(self) -> np.ndarray:
        return self.token_table[:, 0]

    @property
    def positions(self) -> np.ndarray:
        return self.token_table[:, 1]

    @property
    def token_ids(self) -> np.ndarray:
        return self.token_table[:, 2]

    @property
    def offsets(self) -> np.ndarray:
        """int32 [n_tokens, 2]: character span of each token in its snippet's text."""
        return self.token_table[:, 3:5]

    @property
    def snippet_offsets(self) -> np.ndarray:
        """int64 [n_snippets + 1]: snippet i's rows are snippet_offsets[i]:snippet_offsets[i + 1]."""
        if self._snippet_offsets is None:
            self._snippet_offsets = np.searchsorted(
                self.snippet_index, np.arange(self.n_snippets + 1), side="left"
            ).astype(np.int64)
        return self._snippet_offsets

    @property
    def vocabulary(self) -> dict[int, str]:
        if self._vocabulary is None:
            raw = json.loads((self.directory / VOCAB_FILE).read_text())
            self._vocabulary = {int(token_id): text for token_id, text in raw.items()}
        return self._vocabulary

    def token_strings(self, token_ids: Sequence[int] | np.ndarray) -> list[str]:
        vocabulary = self.vocabulary
        return [vocabulary.get(int(token_id), f"<{int(token_id)}>") for token_id in token_ids]

    # -- activations -----------------------------------------------------------------------------
    def rows(self, start: int, stop: int) -> np.ndarray:
        """float32 [stop - start, d_in] of a contiguous row range, across shard boundaries."""
        start, stop = max(0, start), min(len(self), stop)
        if stop <= start:
            return np.zeros((0, self.d_in), dtype=np.float32)
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        last = int(np.searchsorted(self._starts, stop - 1, side="right")) - 1
        parts = []
        for shard in range(first, last + 1):
            lo = max(start, self._starts[shard]) - self._starts[shard]
            hi = min(stop, self._starts[shard + 1]) - self._starts[shard]
            parts.append(np.array(self._shards[shard][lo:hi], dtype=np.float32))  # a writable copy in RAM
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"row {key} out of range for {len(self)} tokens")
            return self.rows(index, index + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self.rows(start, stop)
            key = np.arange(start, stop, step)
        indices = np.asarray(key)
        if indices.dtype == bool:
            if indices.shape != (len(self),):
                raise IndexError("a boolean index must have one entry per token")
            indices = np.flatnonzero(indices)
        return self.take(indices)

    def take(self, indices: np.ndarray) -> np.ndarray:
        """float32 [len(indices), d_in] for arbitrary (unsorted, repeated, negative) row indices."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        indices = np.where(indices < 0, indices + len(self), indices)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} tokens")
        out = np.empty((indices.size, self.d_in), dtype=np.float32)
        shard_of = np.searchsorted(self._starts, indices, side="right") - 1
        for shard in np.unique(shard_of):
            where = np.flatnonzero(shard_of == shard)
            local = indices[where] - self._starts[shard]
            order = np.argsort(local, kind="stable")  # ascending reads are kinder to the page cache
            out[where[order]] = self._shards[shard][local[order]]
        return out

    def iter_batches(self, *, batch_tokens: int = 8192) -> Iterator[ActivationBatch]:
        """Consecutive row ranges of about `batch_tokens` rows, never splitting a snippet (a snippet
        longer than `batch_tokens` comes as one larger batch)."""
        if batch_tokens < 1:
            raise ValueError("batch_tokens must be positive")
        offsets = self.snippet_offsets
        snippet_index = self.snippet_index
        start = 0
        while start < len(self):
            target = start + batch_tokens
            if target >= len(self):
                stop = len(self)
            else:
                # first snippet boundary at or after the target
                stop = int(offsets[np.searchsorted(offsets, target, side="left")])
                if stop <= start:
                    stop = len(self)
            yield ActivationBatch(
                start=start, stop=stop, snippet_index=snippet_index[start:stop], activations=self.rows(start, stop)
            )
            start = stop

    def iter_snippets(self, *, batch_tokens: int = 8192) -> Iterator[SnippetActivations]:
        """Every snippet in order, including those with no kept tokens (empty arrays)."""
        offsets = self.snippet_offsets
        token_ids, positions = self.token_ids, self.positions
        next_snippet = 0
        for batch in self.iter_batches(batch_tokens=batch_tokens):
            last = int(batch.snippet_index[-1])
            for snippet in range(next_snippet, last + 1):
                lo, hi = int(offsets[snippet]), int(offsets[snippet + 1])
                ids = token_ids[lo:hi]
                yield SnippetActivations(
                    snippet_index=snippet,
                    token_ids=ids,
                    token_strings=self.token_strings(ids),
                    positions=positions[lo:hi],
                    activations=batch.activations[lo - batch.start : hi - batch.start],
                )
            next_snippet = last + 1
        for snippet in range(next_snippet, self.n_snippets):
            yield SnippetActivations(
                snippet_index=snippet,
                token_ids=np.zeros(0, dtype=np.int32),
                token_strings=[],
                positions=np.zeros(0, dtype=np.int32),
                activations=np.zeros((0, self.d_in), dtype=np.float32),
            )


@dataclass(frozen=True)
class NormalisationStats:
    """MedSAE normalisation x' = (x − mean) · scale with E‖x'‖₂ = √d_in."""

    mean: np.ndarray  # float32 [d_in]
    scale: float
    n_tokens: int

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) * self.scale


def mean_and_scale(
    store: ActivationStore, *, batch_tokens: int = 65536, progress: Progress | None = None
) -> NormalisationStats:
    """Two streaming passes in float64: the mean vector, then the mean norm of centred rows.

    E‖x − μ‖ does not decompose into running sums, so the exact value needs μ before the second
    pass; both passes read the shards sequentially and hold one batch in RAM.
    """
    n = len(store)
    if n == 0:
        raise ValueError("the activation store holds no tokens")
    total = np.zeros(store.d_in, dtype=np.float64)
    for start in range(0, n, batch_tokens):
        total += store.rows(start, start + batch_tokens).sum(axis=0, dtype=np.float64)
        if progress is not None:
            progress(0.5 * min(1.0, (start + batch_tokens) / n), "mean")
    mean = total / n
    norm_sum = 0.0
    for start in range(0, n, batch_tokens):
        centred = store.rows(start, start + batch_tokens).astype(np.float64) - mean
        norm_sum += float(np.linalg.norm(centred, axis=1).sum())
        if progress is not None:
            progress(0.5 + 0.5 * min(1.0, (start + batch_tokens) / n), "scale")
    mean_norm = norm_sum / n
    scale = math.sqrt(store.d_in) / mean_norm if mean_norm > 0 else 1.0
    return NormalisationStats(mean=mean.astype(np.float32), scale=float(scale), n_tokens=n)


def snippet_max_activations(store: ActivationStore, *, batch_tokens: int = 65536) -> np.ndarray:
    """float32 [n_snippets, d_in]: each raw neuron's largest value within each snippet (the raw-neuron
    baseline for monosemanticity). Snippets with no kept tokens get 0."""
    out = np.zeros((store.n_snippets, store.d_in), dtype=np.float32)
    for batch in store.iter_batches(batch_tokens=batch_tokens):
        starts = np.flatnonzero(np.r_[True, batch.snippet_index[1:] != batch.snippet_index[:-1]])
        out[batch.snippet_index[starts]] = np.maximum.reduceat(batch.activations, starts, axis=0)
    return out
