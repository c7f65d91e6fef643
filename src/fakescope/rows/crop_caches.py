"""``data.crop_cache``: each split's crops decoded and resized once into a memory-mapped uint8 cache
(:mod:`fakescope.data.crop_cache`), which the datasets then read instead of decoding JPEG/PNG."""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm.auto import tqdm

from fakescope.config import ExperimentConfig
from fakescope.data.dataset import FaceDataset
from fakescope.utils.distributed import DistInfo, barrier

log = logging.getLogger(__name__)

__all__ = ["attach_crop_caches"]


def attach_crop_caches(
    cfg: ExperimentConfig, run: Path, info: DistInfo, datasets: dict[str, FaceDataset]
) -> None:
    """Build (rank 0; the others wait and read) each split's cache under ``data.crop_cache_dir``
    (default ``RUN/crop_cache``) and make its dataset read from it. Splits with perturbations or
    synthetic fakes keep decoding (the cache holds plain crops)."""
    from fakescope.data.crop_cache import build_crop_cache

    cache_dir = Path(cfg.data.crop_cache_dir) if cfg.data.crop_cache_dir else run / "crop_cache"
    for split, ds in datasets.items():
        if ds.synthetic is not None or ds._perturb is not None:
            log.info("data.crop_cache: the %s split has synthetic fakes or perturbations; not cached", split)
            continue
        paths = [r.path for r in ds.rows]
        opts = {"max_pixels": ds.max_image_pixels, "background": ds.background}
        cache = None
        for turn in ("build", "open"):  # rank 0 builds first; the others then find the finished file
            if (turn == "build") == info.is_main:
                bar = tqdm(
                    total=len(paths), desc=f"crop cache {split}", unit="face", leave=False,
                    disable=not (cfg.train.progress and info.is_main and len(paths) > 100),
                )  # fmt: skip
                with bar:
                    cache = build_crop_cache(
                        paths, ds.image_size, cache_dir, ds.load_crop, opts, progress=bar.update
                    )
            barrier(info)
        assert cache is not None
        ds.use_crops(cache)
