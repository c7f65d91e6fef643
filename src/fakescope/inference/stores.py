"""Lazy, read-only stores of precomputed inputs: ``path -> array``, read from disk one face at a time
(memory stays flat in the data size; docs/scale.md "Memory").

``FaceDataset`` looks a face's stored inputs up as ``dataset.stores[name][row.path]``. Holding those
arrays in a dict made memory grow with the number of faces (1280 floats per face for a Lite0
embedding, ``L x R x R`` per face for heatmaps), so :func:`~fakescope.inference.inputs.precompute_inputs`
now writes each chunk straight into the caches and fills a :class:`LazyStore` instead: a
:class:`~collections.abc.Mapping` whose whole content in memory is an index, path -> 32-byte cache key.

Two backings, chosen per face when it is stored:

- **the content-addressed cache** the array was just written to or read from
  (:class:`~fakescope.inr.HeatmapCache` for heatmaps, :class:`~fakescope.models.features.FeatureCache`
  for embeddings): the lookup reads that one safetensors file, the same bits the cache holds;
- **a spill file** (:class:`SpillFile`) for what no cache keeps: embeddings of a random (not pretrained)
  backbone, which ``FeatureCache`` never writes (their values depend on the initialisation, not on a
  name), or any face whose cache entry is not on disk after its chunk. It is one ``.npy`` file (``N x shape``
  float32) in a fresh temporary folder (``precompute_inputs(spill_dir=...)``, by default the system's,
  i.e. ``TMPDIR``: a spill is private to the run and disposable, so it never lands beside a run's
  checkpoints), written and read with ``pwrite``/``pread`` (not ``mmap``, whose touched pages would count
  in the resident set for the whole epoch), and deleted when the store is garbage-collected or the
  process exits.

A store pickles as its index (paths joined, keys concatenated) and its backing's location, never as
arrays, so DataLoader workers (``data.num_workers > 0``, fork or spawn) get it cheaply and each opens
its own file handles.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.errors import InputError

__all__ = ["LazyStore", "SpillFile"]


def _remove_dir(path: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # never from a forked DataLoader worker that inherited the object
        shutil.rmtree(path, ignore_errors=True)


class SpillFile:
    """A float32 ``.npy`` file of ``rows x shape`` written and read one row at a time.

    The file is sparse until written; rows are addressed by the dataset index. The owning process
    deletes the temporary folder holding it when the object is collected (or at exit)."""

    def __init__(self, folder: str | os.PathLike[str] | None, rows: int, shape: tuple[int, ...]) -> None:
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=".stores-", dir=folder)
        self.file = os.path.join(self.dir, "store.npy")
        self.shape = tuple(int(s) for s in shape)
        self.row_bytes = int(np.prod(self.shape, dtype=np.int64)) * 4
        with open(self.file, "wb") as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "<f4", "fortran_order": False, "shape": (rows, *self.shape)}
            )
            self.offset = fh.tell()
            fh.truncate(self.offset + rows * self.row_bytes)
        self._fd: int | None = None
        self._pid = -1
        self._finalizer = weakref.finalize(self, _remove_dir, self.dir, os.getpid())

    def _handle(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own descriptor
            self._fd = os.open(self.file, os.O_RDWR)
            self._pid = os.getpid()
        return self._fd

    def write(self, row: int, value: np.ndarray) -> None:
        arr = np.ascontiguousarray(value, dtype="<f4")
        if arr.shape != self.shape:
            raise ValueError(f"spill file holds arrays of shape {self.shape}, got {arr.shape}")
        os.pwrite(self._handle(), arr.tobytes(), self.offset + row * self.row_bytes)

    def read(self, row: int) -> np.ndarray:
        data = os.pread(self._handle(), self.row_bytes, self.offset + row * self.row_bytes)
        if len(data) != self.row_bytes:
            raise InputError(f"stored inputs {self.file}: row {row} is truncated (was the file removed?)")
        return np.frombuffer(data, dtype="<f4").reshape(self.shape).astype(np.float32)

    def __getstate__(self) -> dict[str, Any]:
        # Workers read the owner's file; only the owner deletes it (no finalizer travels).
        return {k: getattr(self, k) for k in ("dir", "file", "shape", "row_bytes", "offset")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fd, self._pid = None, -1


class LazyStore(Mapping[str, np.ndarray]):
    """Read-only ``path -> float32 array``: one face read from disk per lookup.

    ``cache`` is a content-addressed cache and ``read`` the name of its method that reads one entry by
    its hex key (``HeatmapCache.read_heatmaps``, ``FeatureCache.read``); faces stored with
    :meth:`add_cached` are read from it, faces stored with :meth:`add_spilled` from the spill file."""

    def __init__(
        self, cache: Any | None = None, read: str = "", spill_dir: str | os.PathLike[str] | None = None
    ):
        self._cache = cache
        self._read = read
        self._spill_dir = None if spill_dir is None else str(spill_dir)
        self._spill: SpillFile | None = None
        self._rows = 0
        self._index: dict[str, bytes | int] = {}

    # ------------------------------------------------------------------ building (the precompute)

    def reserve(self, rows: int) -> None:
        """Rows the spill file must hold (the dataset length), before anything is spilled."""
        self._rows = max(self._rows, int(rows))

    def add_cached(self, path: str, key: str) -> None:
        self._index[path] = bytes.fromhex(key)

    def add_spilled(self, path: str, row: int, value: np.ndarray) -> None:
        if self._spill is None:
            self._spill = SpillFile(self._spill_dir, max(self._rows, row + 1), np.shape(value))
        self._spill.write(row, value)
        self._index[path] = int(row)

    def cached_entry_exists(self, key: str) -> bool:
        return self._cache is not None and self._cache.path(key).is_file()

    @property
    def spilled(self) -> bool:
        """Whether any face is read from the spill file rather than a cache."""
        return self._spill is not None

    # ------------------------------------------------------------------ the Mapping

    def __getitem__(self, path: str) -> np.ndarray:
        ref = self._index[path]
        if isinstance(ref, int):
            assert self._spill is not None
            return self._spill.read(ref)
        key = ref.hex()
        read: Callable[[str], np.ndarray] = getattr(self._cache, self._read)
        try:
            return np.asarray(read(key), dtype=np.float32)
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error type
            raise InputError(
                f"stored input of {path}: cache entry {key} is missing or unreadable ({err}); it was "
                "removed while the run used it? Rerun to recompute it"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, path: object) -> bool:
        return path in self._index

    # ------------------------------------------------------------------ pickling: the index, compactly

    def __getstate__(self) -> dict[str, Any]:
        cached = [(p, r) for p, r in self._index.items() if isinstance(r, bytes)]
        spilled = [(p, r) for p, r in self._index.items() if isinstance(r, int)]
        return {
            "cache": self._cache,
            "read": self._read,
            "spill": self._spill,
            "order": "".join("c" if isinstance(r, bytes) else "s" for r in self._index.values()),
            "cached_paths": "\0".join(p for p, _ in cached),
            "keys": b"".join(r for _, r in cached),
            "spilled_paths": "\0".join(p for p, _ in spilled),
            "rows": np.asarray([r for _, r in spilled], dtype=np.int64).tobytes(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._cache, self._read, self._spill = state["cache"], state["read"], state["spill"]
        self._spill_dir, self._rows = None, 0
        order = state["order"]
        cached = iter(state["cached_paths"].split("\0") if "c" in order else [])
        keys, rows = state["keys"], np.frombuffer(state["rows"], dtype=np.int64)
        spilled = iter(state["spilled_paths"].split("\0") if "s" in order else [])
        index: dict[str, bytes | int] = {}
        ci = si = 0
        for kind in order:  # rebuild in the original order (iteration order is part of a Mapping)
            if kind == "c":
                index[next(cached)] = keys[32 * ci : 32 * ci + 32]
                ci += 1
            else:
                index[next(spilled)] = int(rows[si])
                si += 1
        self._index = index
