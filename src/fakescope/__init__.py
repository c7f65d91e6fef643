"""fakescope: face deepfake detection (INFER and AIRL reference implementations)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(run_dir_or_checkpoint: Any = None, device: str = "cpu") -> Any:
    """Load a trained detector for inference (with no argument, the detector shipped inside the package,
    docs/model-card.md); see :func:`fakescope.api.load`."""
    from fakescope.api import load as _load

    return _load(run_dir_or_checkpoint, device=device)
