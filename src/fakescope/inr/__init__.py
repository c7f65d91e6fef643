"""Batched implicit neural representations (SIREN, Gauss, WIRE), fitting, PCA heatmaps and cache.

papers/INFER.txt §3.3-3.4 and supplementary A.1-A.5; see README section "INR engine".
"""

from fakescope.inr.cache import HeatmapCache, InrResult, image_key
from fakescope.inr.config import InrConfig
from fakescope.inr.engine import CpuWorkerPool, heatmaps_for_images, iter_results
from fakescope.inr.fitting import FitRecord

__all__ = [
    "CpuWorkerPool",
    "HeatmapCache",
    "InrConfig",
    "InrResult",
    "FitRecord",
    "heatmaps_for_images",
    "iter_results",
    "image_key",
]
