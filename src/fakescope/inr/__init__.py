"""Batched implicit neural representations (SIREN, Gauss, WIRE), fitting, PCA heatmaps and cache.

papers/INFER.txt §3.3-3.4 and supplementary A.1-A.5; see docs/inr.md.

Names are imported lazily (PEP 562) so that reading a config, which imports
``fakescope.inr.config``, does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CpuWorkerPool": "fakescope.inr.engine",
    "heatmaps_for_images": "fakescope.inr.engine",
    "iter_results": "fakescope.inr.engine",
    "HeatmapCache": "fakescope.inr.cache",
    "InrResult": "fakescope.inr.cache",
    "image_key": "fakescope.inr.cache",
    "InrConfig": "fakescope.inr.config",
    "InrInitConfig": "fakescope.inr.config",
    "learn_init": "fakescope.inr.learned_init",
    "FitRecord": "fakescope.inr.fitting",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fakescope.inr' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
