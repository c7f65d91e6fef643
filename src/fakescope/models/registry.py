"""Detector registry: build a detector from its own ``ModelConfig`` plus an ``InputSpec``
(docs/CONTRACTS.md)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from fakescope.errors import ConfigError

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.detector import Detector
    from fakescope.models.spec import InputSpec

__all__ = ["register_detector", "build_detector", "list_detectors", "detector_class"]

_REGISTRY: dict[str, type[Detector]] = {}
#: Registered names that :func:`list_detectors` leaves out: combinations of other detectors (the
#: ensemble), which cannot be built from a model section alone and are not a family to compare.
_UNLISTED: set[str] = set()
T = TypeVar("T", bound="type[Detector]")


def register_detector(name: str, listed: bool = True) -> Callable[[T], T]:
    """Class decorator: register a :class:`~fakescope.models.detector.Detector` subclass under ``name``
    (``listed=False``: buildable by name, but not in :func:`list_detectors`)."""

    def wrap(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"detector {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        if not listed:
            _UNLISTED.add(name)
        return cls

    return wrap


def _ensure_loaded() -> None:
    # The detector modules register themselves on import.
    import fakescope.models.airl  # noqa: F401
    import fakescope.models.infer  # noqa: F401

    # The methods the papers compare against (docs/detectors.md, Baselines), after the papers' own detectors.
    from fakescope.models import f3net, mesonet, npr, spsl, srm, univfd, wavelet_clip, xception  # noqa: F401

    # Combinations of trained detectors (unlisted), last: they build the others.
    importlib.import_module("fakescope.models.ensemble")


def list_detectors() -> list[str]:
    """Names of every registered detector, INFER family first, each family in the papers' order."""
    _ensure_loaded()
    return [name for name in _REGISTRY if name not in _UNLISTED]


def detector_class(name: str) -> type[Detector]:
    _ensure_loaded()
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError(f"model.name: unknown detector {name!r} (registered: {', '.join(_REGISTRY)})")
    return cls


def build_detector(model: ModelConfig, spec: InputSpec) -> Detector:
    """Build ``model.name`` from its config and the shapes of the batches it will read (from an
    experiment config: ``build_detector(cfg.model, input_spec_for(cfg))``). Pretrained weights that
    cannot be loaded raise :class:`~fakescope.errors.ModelLoadError`; nothing falls back to random
    weights silently."""
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

    if not isinstance(model, ModelConfig) or not isinstance(spec, InputSpec):
        raise TypeError(
            "build_detector takes a ModelConfig and an InputSpec, e.g. build_detector(cfg.model, "
            f"input_spec_for(cfg)); got {type(model).__name__} and {type(spec).__name__}"
        )
    return detector_class(model.name)(model, spec)
