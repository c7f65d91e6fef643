"""Frozen image embeddings computed once per image and cached: CLIP is frozen, so its features need
computing only once (docs/design.md, "CLIP branch and head"; INFER §3.2, anonymous NeurIPS-format
submission).

The cache is content-addressed: one safetensors file per image under
``<cache_dir>/features/<backbone id>/<hash[:2]>/<hash>.safetensors``, where the hash covers the image's
pixels and shape. The backbone id names the weights (hub id, package or file), so two backbones never
share entries. Random (not pretrained) backbones are never written to disk: their outputs depend on the
initialisation, not on a name.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load_file, save

from fakescope.errors import ConfigError, InputError
from fakescope.models.backbones.build import build_backbone
from fakescope.models.backbones.specs import ImageBackbone
from fakescope.utils.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig

__all__ = ["FeatureCache", "image_key", "embed_images", "clip_features_for_images", "image_backbone_for"]


def image_key(image: np.ndarray) -> str:
    """SHA-256 of a uint8 ``H×W×3`` image's shape and pixels."""
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{arr.shape}|{arr.dtype}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


class FeatureCache:
    """Embeddings of one backbone, keyed by :func:`image_key`; writes are atomic, so concurrent
    workers (or DDP ranks) that share the folder can only ever see whole files."""

    def __init__(self, cache_dir: str | os.PathLike[str], backbone_id: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", backbone_id).strip("_")
        self.root = Path(cache_dir) / "features" / slug
        self.backbone_id = backbone_id

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> np.ndarray | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return load_file(str(p))["embedding"].numpy()
        except Exception as err:
            raise InputError(f"feature cache {p}: unreadable ({err}); delete it to recompute") from None

    def read(self, key: str) -> np.ndarray:
        """The embedding of an entry known to exist, read alone (the lazy stores of
        ``fakescope.inference.stores`` read one face at a time through this); same bits as :meth:`get`.
        Raises ``OSError`` / ``SafetensorError`` when the entry is missing or unreadable."""
        from safetensors import safe_open

        with safe_open(str(self.path(key)), framework="numpy") as fh:
            return fh.get_tensor("embedding")

    def put(self, key: str, embedding: np.ndarray | torch.Tensor) -> None:
        t = torch.as_tensor(np.asarray(embedding, dtype=np.float32)).contiguous()
        atomic_write_bytes(self.path(key), save({"embedding": t}, metadata={"backbone": self.backbone_id}))


@torch.no_grad()
def embed_images(
    backbone: ImageBackbone,
    images: Sequence[np.ndarray],
    device: torch.device | str = "cpu",
    cache: FeatureCache | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> list[np.ndarray]:
    """Embed uint8 ``H×W×3`` images (all one size) with ``backbone`` in eval mode, reading and filling
    ``cache`` when given. Returns one float32 ``[out_dim]`` vector per image, in order."""
    from tqdm import tqdm

    keys = [image_key(im) for im in images] if cache is not None else [""] * len(images)
    out: list[np.ndarray | None] = [cache.get(k) if cache is not None else None for k in keys]
    todo = [i for i, v in enumerate(out) if v is None]
    was_training = backbone.training
    backbone.eval()
    try:
        with tqdm(
            total=len(todo),
            desc=f"embed {backbone.spec.name}",
            unit="img",
            disable=not progress or not todo,
            leave=False,
        ) as bar:
            for start in range(0, len(todo), batch_size):
                idx = todo[start : start + batch_size]
                arr = np.stack([np.asarray(images[i]) for i in idx])
                if arr.ndim != 4 or arr.shape[-1] != 3:
                    raise InputError(f"embed_images: expected H×W×3 images, got batch of shape {arr.shape}")
                x = torch.from_numpy(arr).to(device).permute(0, 3, 1, 2).float().div_(255.0)
                feats = backbone(x).float().cpu().numpy()
                for i, f in zip(idx, feats, strict=True):
                    out[i] = f
                    if cache is not None:
                        cache.put(keys[i], f)
                bar.update(len(idx))
    finally:
        backbone.train(was_training)
    return [np.asarray(v, dtype=np.float32) for v in out]  # type: ignore[arg-type]


def image_backbone_for(model: ModelConfig, detector: torch.nn.Module | None = None) -> ImageBackbone:
    """The detector's own frozen image backbone, or a fresh one built from ``model`` (the ``model``
    section of a run's config)."""
    backbone = getattr(detector, "backbone", None) if detector is not None else None
    if isinstance(backbone, ImageBackbone):
        return backbone
    from fakescope.models.registry import detector_class

    cls = detector_class(model.name)
    name = model.backbone if model.backbone != "auto" else cls.default_backbone
    if name is None:
        raise ConfigError(f"detector {model.name} has no image backbone to compute embeddings with")
    return build_backbone(name, model.pretrained, model.weights_path, model.hf_cache_dir)


def clip_features_for_images(
    images: Sequence[np.ndarray],
    model: ModelConfig,
    device: torch.device | str = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    detector: torch.nn.Module | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> list[np.ndarray]:
    """The batch ``clip`` input of INFER-family detectors: the frozen image-backbone embedding of each
    uint8 crop (CLIP ViT-L/14, or the configured stand-in), cached under ``cache_dir`` (default
    ``model.clip_cache_dir``) when the backbone is pretrained."""
    backbone = image_backbone_for(model, detector).to(device)
    root = cache_dir if cache_dir is not None else model.clip_cache_dir
    cache = FeatureCache(root, backbone.backbone_id) if (root is not None and backbone.pretrained) else None
    return embed_images(backbone, images, device, cache, batch_size, progress)
