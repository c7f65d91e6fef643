"""Content and config hashes used as cache keys."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from typing import Any


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Raises ``OSError`` for a path that is not a regular file: opened non-blocking, so a FIFO met in
    a folder scan is refused instead of waiting forever for a writer."""
    h = hashlib.sha256()
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config_hash(obj: Any, length: int = 16) -> str:
    """Stable hash of a JSON-serialisable object (pydantic models: pass ``model_dump()``)."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]
