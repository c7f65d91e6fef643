"""A uint8 cache of decoded, resized face crops, one memory-mapped ``.npy`` per split (``data.crop_cache``).

Why: every epoch otherwise decodes each JPEG/PNG again and resizes it to ``data.image_size``. The cache
does that once; epochs then read ``S×S×3`` uint8 arrays from a memory map. The crops are exactly those
:meth:`FaceDataset.load_crop <fakescope.data.dataset.FaceDataset.load_crop>` returns without a
perturbation (same decoder, same ``resize_square``), so training reads the same bytes. Memory stays flat
in the data size: the process holds one crop at a time and the operating system's page cache, which it
may evict, holds the file.

Key: a SHA-256 of the format version, ``image_size``, the decode options (``max_pixels``,
``background``) and, for every row in order, its path, file size and modification time (ns). Any change
to the size, the options, the file list or a file's bytes (size or mtime) gives another key, i.e. a new
cache; stale ones are left for the user to delete (the folder is shared by runs).

Build is atomic and resumable: crops are written into ``<key>.npy.partial`` (an ``open_memmap``) in
order; every ``flush_every`` crops the map is flushed and the count done is written atomically to
``<key>.progress``. A crashed build resumes from that count; the finished file is renamed to
``<key>.npy`` (``os.replace``) last, so a ``.npy`` is always complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from fakescope.utils.atomic import atomic_write_text

__all__ = ["CropCache", "crop_cache_key", "build_crop_cache"]

_VERSION = 1


def crop_cache_key(paths: Sequence[str], image_size: int, options: dict[str, object]) -> str:
    """The cache key of ``paths`` decoded with ``options`` and resized to ``image_size`` (see module)."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": _VERSION, "size": int(image_size), "opts": options}, sort_keys=True).encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"\0{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


class CropCache:
    """Read access to a finished cache: ``cache[i]`` is row ``i``'s ``S×S×3`` uint8 crop (a copy).

    The memory map is opened lazily, in the process that reads (so DataLoader workers each open their
    own after the fork), and never loaded whole."""

    def __init__(self, file: str | os.PathLike[str], n: int, image_size: int) -> None:
        self.file = Path(file)
        self.n = int(n)
        self.image_size = int(image_size)
        self._arr: np.ndarray | None = None
        self._pid = -1

    def _map(self) -> np.ndarray:
        if self._arr is None or self._pid != os.getpid():
            arr = np.load(self.file, mmap_mode="r")
            if arr.shape != (self.n, self.image_size, self.image_size, 3) or arr.dtype != np.uint8:
                raise ValueError(
                    f"crop cache {self.file} holds {arr.shape} {arr.dtype}, not the expected crops"
                )
            self._arr, self._pid = arr, os.getpid()
        return self._arr

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> np.ndarray:
        return np.array(self._map()[index])

    def __getstate__(self) -> dict[str, object]:  # workers re-open the map; never pickle its pages
        return {**self.__dict__, "_arr": None, "_pid": -1}


def build_crop_cache(
    paths: Sequence[str],
    image_size: int,
    cache_dir: str | os.PathLike[str],
    load_crop: Callable[[int], np.ndarray],
    options: dict[str, object],
    *,
    flush_every: int = 256,
    progress: Callable[[int], None] | None = None,
) -> CropCache:
    """The cache of ``paths`` at ``image_size`` in ``cache_dir``, building (or resuming) it with
    ``load_crop(i)`` (the uint8 ``S×S×3`` crop of row ``i``) if it is not there yet."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = crop_cache_key(paths, image_size, options)
    final = cache_dir / f"{key}.npy"
    n, s = len(paths), int(image_size)
    if final.is_file():
        return CropCache(final, n, s)
    partial = cache_dir / f"{key}.npy.partial"
    prog = cache_dir / f"{key}.progress"
    done = 0
    if partial.is_file() and prog.is_file():
        try:
            done = int(prog.read_text().strip())
            arr = np.lib.format.open_memmap(partial, mode="r+")
            if arr.shape != (n, s, s, 3) or arr.dtype != np.uint8:
                raise ValueError("shape")
        except (ValueError, OSError):
            done = 0
    if done == 0:
        arr = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(n, s, s, 3))
        atomic_write_text(prog, "0\n")
    for i in range(done, n):
        crop = load_crop(i)
        if crop.shape != (s, s, 3) or crop.dtype != np.uint8:
            raise ValueError(f"crop {i} ({paths[i]}) is {crop.shape} {crop.dtype}, not {s}x{s}x3 uint8")
        arr[i] = crop
        if (i + 1) % flush_every == 0:
            arr.flush()
            atomic_write_text(prog, f"{i + 1}\n")
        if progress is not None:
            progress(1)
    arr.flush()
    del arr
    os.replace(partial, final)
    atomic_write_text(
        cache_dir / f"{key}.json", json.dumps({"n": n, "image_size": s, "options": options}) + "\n"
    )
    prog.unlink(missing_ok=True)
    return CropCache(final, n, s)
