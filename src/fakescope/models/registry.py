"""Detector registry: build a detector from its name plus the experiment config (docs/CONTRACTS.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from fakescope.errors import ConfigError

if TYPE_CHECKING:
    from fakescope.config import ExperimentConfig
    from fakescope.models.detector import Detector

__all__ = ["register_detector", "build_detector", "list_detectors", "detector_class"]

_REGISTRY: dict[str, type[Detector]] = {}
T = TypeVar("T", bound="type[Detector]")


def register_detector(name: str) -> Callable[[T], T]:
    """Class decorator: register a :class:`~fakescope.models.detector.Detector` subclass under ``name``."""

    def wrap(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"detector {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _ensure_loaded() -> None:
    # The detector modules register themselves on import.
    import fakescope.models.airl  # noqa: F401
    import fakescope.models.infer  # noqa: F401

    # The papers' baselines (issue 14), after the two papers' own detectors.
    from fakescope.models import f3net, mesonet, spsl, srm, univfd, wavelet_clip, xception  # noqa: F401


def list_detectors() -> list[str]:
    """Names of every registered detector, INFER family first, each family in the papers' order."""
    _ensure_loaded()
    return list(_REGISTRY)


def detector_class(name: str) -> type[Detector]:
    _ensure_loaded()
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError(f"model.name: unknown detector {name!r} (registered: {', '.join(_REGISTRY)})")
    return cls


def build_detector(cfg: ExperimentConfig) -> Detector:
    """Build ``cfg.model.name`` with the rest of ``cfg``. Pretrained weights that cannot be loaded raise
    :class:`~fakescope.errors.ModelLoadError`; nothing falls back to random weights silently."""
    return detector_class(cfg.model.name)(cfg)
