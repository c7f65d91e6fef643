"""Batched implicit neural representations (SIREN, Gauss, WIRE), fitting, PCA heatmaps and cache.

INFER §3.3-3.4 and supplementary A.1-A.5 (anonymous NeurIPS-format submission); see docs/inr.md.

Names are imported lazily (PEP 562) so that reading a config, which imports
``fakescope.inr.config``, does not pay for importing torch.
"""

from __future__ import annotations

from fakescope.utils.lazy import lazy_getattr

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


__getattr__ = lazy_getattr("fakescope.inr", _EXPORTS)
