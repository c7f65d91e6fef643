"""Device selection and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch

from fakescope.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is a clear error, not a fallback; a
    name that is not a device (``potato``, ``cuda:x``, a GPU index past the last one) is one
    :class:`ConfigError` naming the flag, not a torch traceback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    hint = "use auto, cpu, cuda or cuda:N"
    try:
        dev = torch.device(str(name))
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"--device {name}: not a device ({hint})") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {name}: unsupported device type {dev.type!r} ({hint})")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA was requested but no GPU is available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name}: MPS was requested but is not available on this machine")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
