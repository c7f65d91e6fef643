"""The detector that ships inside the package: a run directory under ``fakescope/resources/detector``.

It is an ordinary run folder (``checkpoints/best.safetensors`` with its JSON and SHA-256, loaded by
:func:`fakescope.inference.checkpoint.load_detector` like any run), plus the files that make it a
product rather than an experiment: ``calibration.json`` and ``familiarity.safetensors`` (fitted on the
pooled validation split), ``shipped.json`` (its name, operating point and provenance: commit, the
manifests' hashes and the exact command) and ``MODEL_CARD.md`` (docs/model-card.md). ``load()``,
``detect``, ``serve`` and ``demo`` use it when no run is named.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from fakescope.errors import ModelLoadError

__all__ = ["SHIPPED_NAME", "is_shipped", "model_card_path", "shipped_meta", "shipped_model_dir"]

#: the folder name inside ``fakescope/resources``
SHIPPED_NAME = "detector"


def _resource_dir() -> Path:
    return Path(str(resources.files("fakescope") / "resources" / SHIPPED_NAME))


def shipped_model_dir() -> Path:
    """The shipped detector's run folder; one-line :class:`ModelLoadError` when this install has none."""
    path = _resource_dir()
    if not (path / "checkpoints" / "best.json").is_file():
        raise ModelLoadError(
            f"no shipped detector in this install ({path} is missing); name a trained run with --model RUN "
            "(or --run RUN for serve), or reinstall fakescope"
        )
    return path


def is_shipped(run_dir: str | os.PathLike[str]) -> bool:
    """Whether ``run_dir`` is the shipped detector's folder."""
    try:
        return Path(run_dir).resolve() == _resource_dir().resolve()
    except OSError:
        return False


def model_card_path(run_dir: str | os.PathLike[str]) -> Path | None:
    """``RUN/MODEL_CARD.md`` when the run carries a model card."""
    path = Path(run_dir) / "MODEL_CARD.md"
    return path if path.is_file() else None


def shipped_meta(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``RUN/shipped.json`` (name, operating point, provenance), or ``None`` for a run that has none."""
    path = Path(run_dir) / "shipped.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: unreadable ({err})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return data
