"""Face crop → model inputs: the one place that builds what a detector sees (docs/architecture.md
"What does the model see").

Training, evaluation and ``detect`` all come through here, so an aligned crop gets the same inputs
whichever command scores it:

- ``image``: the crop resized to ``data.image_size`` (:func:`model_image`: INTER_AREA down, INTER_CUBIC
  up), as float ``[3,S,S]`` in [0, 1] (each backbone normalises itself);
- ``heatmaps``: INR heatmaps fitted on that resized uint8 crop (papers/INFER.txt §3.3-3.4) through
  :func:`fakescope.inr.heatmaps_for_images`, with the content-addressed :class:`~fakescope.inr.HeatmapCache`
  when a cache folder is given;
- ``clip``: the frozen image-backbone embedding of the same crop (INFER §3.2; DESIGN.md "CLIP": computed
  once and cached) through :func:`fakescope.models.features.clip_features_for_images`.

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
from fakescope.utils.atomic import atomic_write_text
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
            list(crops), cfg, device, cache_dir=cache_dir, detector=detector, progress=progress
        )
        out.stores["clip"] = [np.asarray(f, dtype=np.float32) for f in feats]
    return out


def _write_fit_log(path: str | os.PathLike[str], paths: Sequence[str], records: Sequence[Any]) -> None:
    lines = ["path,steps,final_psnr,reached,cached"]
    lines += [
        f"{p},{r.steps},{r.final_psnr:.3f},{int(r.reached)},{int(r.cached)}"
        for p, r in zip(paths, records, strict=True)
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")


def precompute_inputs(
    inputs: frozenset[str] | set[str],
    dataset: FaceDataset,
    cfg: ExperimentConfig,
    device: torch.device,
    info: DistInfo | None = None,
    detector: torch.nn.Module | None = None,
    desc: str = "",
    fit_log: str | os.PathLike[str] | None = None,
) -> None:
    """Fill ``dataset.stores`` (keyed by row path) with what ``inputs`` needs beyond the image, computed
    by :func:`compute_inputs` from ``dataset.load_crop`` (the un-augmented, perturbed, resized crop) with
    the run's cache (:func:`feature_cache_dir`). Each image's INR fit (steps, final PSNR, target reached,
    cached) goes to ``fit_log`` (CSV) when given: none is dropped silently."""
    info = info or DistInfo()
    needed = set(inputs) - {"image"} - set(dataset.stores)
    if not needed:
        return
    show = cfg.train.progress and info.is_main
    crops = [
        dataset.load_crop(i)
        for i in tqdm(range(len(dataset)), desc=f"load {desc}", disable=not show, leave=False)
    ]
    paths = [r.path for r in dataset.rows]
    built = compute_inputs(
        needed, crops, cfg, device, detector=detector, cache_dir=feature_cache_dir(cfg), info=info,
        progress=show,
    )  # fmt: skip
    if built.fit_records is not None and fit_log is not None and info.is_main:
        _write_fit_log(fit_log, paths, built.fit_records)
        reached = sum(r.reached for r in built.fit_records)
        psnr = np.mean([r.final_psnr for r in built.fit_records])
        tqdm.write(
            f"INR heatmaps {desc}: {len(paths)} images, {reached} reached {cfg.inr.target_psnr} dB, "
            f"mean {psnr:.2f} dB, log {fit_log}"
        )
    for name, values in built.stores.items():
        dataset.stores[name] = dict(zip(paths, values, strict=True))


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
