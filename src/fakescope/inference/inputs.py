"""Face crop → model inputs: the one place that builds what a detector sees (docs/architecture.md
"What does the model see").

Training, evaluation and ``detect`` all come through here, so an aligned crop gets the same inputs
whichever command scores it:

- ``image``: the crop resized to ``data.image_size`` (:func:`model_image`: INTER_AREA down, INTER_CUBIC
  up), as float ``[3,S,S]`` in [0, 1] (each backbone normalises itself);
- ``heatmaps``: INR heatmaps fitted on that resized uint8 crop (INFER §3.3-3.4, anonymous NeurIPS-format submission) through
  :func:`fakescope.inr.heatmaps_for_images`, with the content-addressed :class:`~fakescope.inr.HeatmapCache`
  when a cache folder is given;
- ``clip``: the frozen image-backbone embedding of the same crop (INFER §3.2; frozen, so it is computed
  once and cached: docs/design.md, "CLIP branch and head") through :func:`fakescope.models.features.clip_features_for_images`.

Training augmentation is the one step that is not here: it belongs to the training data only
(:class:`fakescope.data.dataset.FaceDataset`), and it is applied to ``image`` alone, after the stores
were computed from the un-augmented crop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from fakescope.config import ExperimentConfig
from fakescope.data.dataset import FaceDataset, resize_square
from fakescope.errors import ConfigError
from fakescope.inference.stores import LazyStore
from fakescope.utils.atomic import atomic_open
from fakescope.utils.distributed import DistInfo, barrier

__all__ = [
    "STORED_INPUTS",
    "ModelInputs",
    "detector_inputs",
    "feature_cache_dir",
    "model_image",
    "images_to_tensor",
    "compute_inputs",
    "precompute_inputs",
    "batch_for_crops",
]

#: Inputs computed once per crop and stored (never inside the training loop).
STORED_INPUTS = ("heatmaps", "clip")


@dataclass
class ModelInputs:
    """What :func:`compute_inputs` built for a list of crops: per-input lists in crop order, and the INR
    fit record of each crop (``None`` when the detector takes no heatmaps)."""

    stores: dict[str, list[np.ndarray]] = field(default_factory=dict)
    fit_records: list[Any] | None = None


def detector_inputs(detector: torch.nn.Module) -> frozenset[str]:
    """The batch keys a detector reads (``image`` by default)."""
    return frozenset(getattr(detector, "inputs", {"image"}))


def feature_cache_dir(cfg: ExperimentConfig) -> Path:
    """Where a run's heatmaps and embeddings are cached: ``train.feature_cache_dir`` or ``inr.cache_dir``."""
    return Path(cfg.train.feature_cache_dir or cfg.inr.cache_dir)


def model_image(crop: np.ndarray, cfg: ExperimentConfig) -> np.ndarray:
    """The uint8 crop at the detector's input size ``data.image_size`` (the training loader's resize)."""
    return resize_square(crop, cfg.data.image_size)


def images_to_tensor(images: Sequence[np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 ``S×S×3`` crops → float ``[B,3,S,S]`` in [0, 1]: ``FaceDataset``'s un-augmented image."""
    arr = np.stack([np.asarray(im) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255.0).to(device)


def compute_inputs(
    needed: frozenset[str] | set[str],
    crops: Sequence[np.ndarray],
    cfg: ExperimentConfig,
    device: torch.device | str,
    *,
    detector: torch.nn.Module | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    info: DistInfo | None = None,
    progress: bool = False,
) -> ModelInputs:
    """Heatmaps and/or image embeddings for uint8 crops already at ``data.image_size``.

    ``cache_dir`` turns on the heatmap and feature caches. Under DDP (``info``) each rank first fits
    its share of the heatmaps into the shared cache, then every rank reads all of them."""
    info = info or DistInfo()
    unknown = set(needed) - {"image", *STORED_INPUTS}
    if unknown:
        raise ConfigError(f"detector needs inputs {sorted(unknown)} that fakescope cannot build")
    out = ModelInputs()
    if "heatmaps" in needed:
        from fakescope.inr import HeatmapCache, heatmaps_for_images

        cache = HeatmapCache(cache_dir, cfg.inr) if cache_dir is not None else None
        if info.enabled and cache is not None:
            mine = list(range(info.rank, len(crops), info.world_size))
            heatmaps_for_images([crops[i] for i in mine], cfg.inr, device, cache=cache)
            barrier(info)
        maps, records = heatmaps_for_images(list(crops), cfg.inr, device, cache=cache)
        out.stores["heatmaps"] = [np.asarray(m, dtype=np.float32) for m in maps]
        out.fit_records = list(records)
    if "clip" in needed:
        from fakescope.models.features import clip_features_for_images

        feats = clip_features_for_images(
            list(crops), cfg.model, device, cache_dir=cache_dir, detector=detector, progress=progress
        )
        out.stores["clip"] = [np.asarray(f, dtype=np.float32) for f in feats]
    return out


class _FitLog:
    """The per-face INR fit records of a precompute, streamed to a CSV as the chunks come (written
    atomically: the file appears whole when the last chunk is in, and no record is dropped), with the
    running totals of the summary line."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = path
        self._cm = atomic_open(path, "w", encoding="utf-8", errors="surrogateescape") if path else None
        self._fh = self._cm.__enter__() if self._cm is not None else None
        if self._fh is not None:
            self._fh.write("path,steps,final_psnr,reached,cached\n")
        self.count = self.reached = 0
        self.psnr_sum = 0.0

    def add(self, paths: Sequence[str], records: Sequence[Any]) -> None:
        for p, r in zip(paths, records, strict=True):
            if self._fh is not None:
                self._fh.write(f"{p},{r.steps},{r.final_psnr:.3f},{int(r.reached)},{int(r.cached)}\n")
            self.count += 1
            self.reached += int(r.reached)
            self.psnr_sum += float(r.final_psnr)

    def close(self, error: BaseException | None = None) -> None:
        if self._cm is not None:
            cm, self._cm = self._cm, None
            if error is None:
                cm.__exit__(None, None, None)
            else:  # leaves no partial file behind
                cm.__exit__(type(error), error, error.__traceback__)


class _BackboneOnly:
    """Stands in for a detector without an image backbone of its own, so the chunks reuse one
    backbone (``image_backbone_for``) instead of building it again for every chunk."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        self.backbone = backbone


def _empty_stores(
    needed: set[str], cfg: ExperimentConfig, cache_dir: Path, detector: Any, n: int, spill_dir: Any
) -> tuple[dict[str, tuple[LazyStore, Any]], Any]:
    """One empty :class:`LazyStore` per needed input, backed by the cache the input is computed into,
    with its key function; and the detector stand-in whose backbone embeds the chunks."""
    stores: dict[str, tuple[LazyStore, Any]] = {}
    if "heatmaps" in needed:
        from fakescope.inr import HeatmapCache
        from fakescope.inr.cache import image_key as heatmap_key

        stores["heatmaps"] = (
            LazyStore(HeatmapCache(cache_dir, cfg.inr), "read_heatmaps", spill_dir),
            heatmap_key,
        )
    if "clip" in needed:
        from fakescope.models.features import FeatureCache, image_backbone_for
        from fakescope.models.features import image_key as feature_key

        backbone = image_backbone_for(cfg.model, detector)
        if getattr(detector, "backbone", None) is not backbone:
            detector = _BackboneOnly(backbone)
        # As clip_features_for_images: a random backbone's embeddings are never cached, so they spill.
        cache = FeatureCache(cache_dir, backbone.backbone_id) if backbone.pretrained else None
        stores["clip"] = (LazyStore(cache, "read", spill_dir), feature_key)
    for store, _ in stores.values():
        store.reserve(n)
    return stores, detector


def precompute_inputs(
    inputs: frozenset[str] | set[str],
    dataset: FaceDataset,
    cfg: ExperimentConfig,
    device: torch.device,
    info: DistInfo | None = None,
    detector: torch.nn.Module | None = None,
    desc: str = "",
    fit_log: str | os.PathLike[str] | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Fill ``dataset.stores`` (keyed by row path) with what ``inputs`` needs beyond the image, computed
    by :func:`compute_inputs` from ``dataset.load_crop`` (the un-augmented, perturbed, resized crop) with
    the run's cache (:func:`feature_cache_dir`). Each image's INR fit (steps, final PSNR, target reached,
    cached) goes to ``fit_log`` (CSV) when given: none is dropped silently.

    Streamed (docs/scale.md "Memory"): ``train.precompute_chunk`` crops at a time are loaded, computed
    into the caches and let go; each store is a :class:`~fakescope.inference.stores.LazyStore` that
    reads one face from the cache per lookup (what no cache keeps goes to a temporary spill file under
    ``spill_dir``, default the system temporary folder). The arrays are the ones one pass over all
    crops gives: the INR fits are per face, and the chunk is a multiple of the embedding batch, so the
    backbone sees the same batches. Under DDP (``info``) each rank first fits its share of the heatmaps
    into the shared cache, then every rank reads all of them."""
    info = info or DistInfo()
    needed = set(inputs) - {"image"} - set(dataset.stores)
    if not needed:
        return
    unknown = needed - set(STORED_INPUTS)
    if unknown:
        raise ConfigError(f"detector needs inputs {sorted(unknown)} that fakescope cannot build")
    show = cfg.train.progress and info.is_main
    chunk = int(cfg.train.precompute_chunk)
    n = len(dataset)
    cache_dir = feature_cache_dir(cfg)
    paths = [r.path for r in dataset.rows]
    if "heatmaps" in needed and info.enabled:
        from fakescope.inr import HeatmapCache, heatmaps_for_images

        cache = HeatmapCache(cache_dir, cfg.inr)
        mine = list(range(info.rank, n, info.world_size))
        for start in range(0, len(mine), chunk):
            part = [dataset.load_crop(i) for i in mine[start : start + chunk]]
            heatmaps_for_images(part, cfg.inr, device, cache=cache)
        barrier(info)
    stores, embedder = _empty_stores(needed, cfg, cache_dir, detector, n, spill_dir)
    log = _FitLog(fit_log if info.is_main else None) if "heatmaps" in needed and fit_log is not None else None
    try:
        with tqdm(total=n, desc=f"inputs {desc}", unit="img", disable=not show, leave=False) as bar:
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                crops = [dataset.load_crop(i) for i in range(start, stop)]
                built = compute_inputs(needed, crops, cfg, device, detector=embedder, cache_dir=cache_dir)  # type: ignore[arg-type]
                for name, values in built.stores.items():
                    store, key_of = stores[name]
                    for i, crop, value in zip(range(start, stop), crops, values, strict=True):
                        key = key_of(crop)
                        if store.cached_entry_exists(key):
                            store.add_cached(paths[i], key)
                        else:
                            store.add_spilled(paths[i], i, value)
                if log is not None and built.fit_records is not None:
                    log.add(paths[start:stop], built.fit_records)
                bar.update(stop - start)
    except BaseException as err:
        if log is not None:
            log.close(err)
        raise
    if log is not None:
        log.close()
        if info.is_main:
            mean = log.psnr_sum / log.count if log.count else float("nan")
            tqdm.write(
                f"INR heatmaps {desc}: {log.count} images, {log.reached} reached {cfg.inr.target_psnr} dB, "
                f"mean {mean:.2f} dB, log {fit_log}"
            )
    for name, (store, _) in stores.items():
        dataset.stores[name] = store


def batch_for_crops(
    crops: Sequence[np.ndarray],
    cfg: ExperimentConfig,
    device: torch.device,
    detector: torch.nn.Module,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    heatmaps: Sequence[np.ndarray] | None = None,
    embeddings: bool = True,
) -> tuple[dict[str, Any], ModelInputs]:
    """The batch dict of docs/CONTRACTS.md for aligned crops of any size (``detect`` and the API).

    The crops are resized with :func:`model_image`, then given the same stored inputs the training and
    evaluation data get. ``heatmaps`` reuses maps already fitted for these crops; ``embeddings=False``
    leaves out the cached image embedding, so the detector runs its image backbone (Grad-CAM hooks it)."""
    images = [model_image(c, cfg) for c in crops]
    needed = set(detector_inputs(detector)) - {"image"}
    if heatmaps is not None:
        needed.discard("heatmaps")
    uses_embedding = getattr(detector, "uses_image_embedding", False) and getattr(detector, "backbone", None)
    if not embeddings or not uses_embedding:
        needed.discard("clip")
    built = compute_inputs(needed, images, cfg, device, detector=detector, cache_dir=cache_dir)
    if heatmaps is not None:
        built.stores["heatmaps"] = [np.asarray(m, dtype=np.float32) for m in heatmaps]
    batch: dict[str, Any] = {"image": images_to_tensor(images, device)}
    for name, values in built.stores.items():
        batch[name] = torch.from_numpy(np.stack(values)).float().to(device)
    return batch, built
