"""What ``fakescope serve`` is told: runs, limits, folders and the optional token."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LOCAL_HOSTS", "TOKEN_ENV", "ServeSettings"]

#: The environment variable read for the bearer token when ``--token`` is not given.
TOKEN_ENV = "FAKESCOPE_SERVE_TOKEN"
#: Binding to one of these keeps the server on this machine; anything else needs ``--public``.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class ServeSettings:
    """Everything the app needs. ``runs`` are run directories (or checkpoint files), loaded once."""

    runs: list[str]
    data_dir: Path = Path("serve_data")
    max_upload_bytes: int = 200 * 1024 * 1024
    queue_size: int = 64
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    token: str | None = None
    allow_dir: Path | None = None
    device: str = "cpu"
    frames_per_video: int | None = None
    gradcam: bool = True
    retry_after_s: int = 5
