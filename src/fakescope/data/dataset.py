"""A torch ``Dataset`` over manifest rows that yields the batch dicts of docs/CONTRACTS.md.

Each item: ``image`` float32 ``[3,S,S]`` in [0, 1] RGB (not normalised: each backbone normalises
itself), ``label`` (0 real, 1 fake), ``path``, ``video`` (the full video identity), ``group``, plus
``heatmaps`` ``[L,R,R]`` and ``clip`` ``[768]`` when precomputed stores are given (INFER; docs/design.md,
"CLIP branch and head": INR heatmaps and frozen CLIP features are computed once and cached, never
inside the training loop).

Order of operations on a face crop: decode -> test-time perturbation (on the crop at its stored
resolution, if ``perturb_before_resize``) -> resize to ``S`` -> perturbation (otherwise) -> training
augmentation (seeded by ``(seed, epoch, index)``, see :mod:`fakescope.data.augment`).

With ``synthetic`` (:class:`~fakescope.data.synthetic.SyntheticFakes`, ``train.synthetic_fakes``) the
rows must all be real: each yields itself (label 0) and, after all of them, its blended fake (label 1,
path ``<path>#<kind>``, method ``<kind>``), made from the decoded crop at its stored resolution before
anything else, for the current epoch (``synthetic_per_epoch``) or once for all epochs.
Downscaling uses ``cv2.INTER_AREA`` (no aliasing), upscaling ``cv2.INTER_CUBIC``.

With ``crops`` (a :class:`~fakescope.data.crop_cache.CropCache`, ``data.crop_cache``) the decode and
resize steps read the crop decoded and resized once before training instead: the same bytes, without
the per-epoch JPEG/PNG decode. It is refused with perturbations or synthetic fakes, which act on the
crop at its stored resolution.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from fakescope.data.augment import augment_image, augment_rng
from fakescope.data.config import AugmentConfig
from fakescope.data.images import load_image_rgb
from fakescope.data.manifest import ManifestRow
from fakescope.data.perturbations import get_perturbation
from fakescope.data.synthetic import SyntheticFakes

__all__ = ["FaceDataset", "resize_square", "collate_batch"]


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 HxWx3 crop to ``size x size`` (INTER_AREA down, INTER_CUBIC up)."""
    h, w = image.shape[:2]
    if h == size and w == size:
        return image
    interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interp)


class FaceDataset(Dataset):
    """Face crops from ``rows``; ``stores`` maps an input name (``heatmaps``, ``clip``) to a mapping
    from the row's ``path`` to its precomputed array."""

    def __init__(
        self,
        rows: Sequence[ManifestRow],
        image_size: int,
        *,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        perturbation: str | None = None,
        perturb_before_resize: bool = True,
        stores: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        max_image_pixels: int = 64_000_000,
        background: str = "black",
        synthetic: SyntheticFakes | None = None,
        synthetic_per_epoch: bool = True,
        crops: Sequence[np.ndarray] | None = None,
    ) -> None:
        self.rows = list(rows)
        self.synthetic = synthetic
        self.synthetic_per_epoch = synthetic_per_epoch
        self.n_real = len(self.rows)
        if synthetic is not None:
            if any(r.label != 0 for r in self.rows) or synthetic.paths != [r.path for r in self.rows]:
                raise ValueError("synthetic fakes are made from real rows only, in the generator's order")
            self.rows += [_synthetic_row(r, synthetic.kind) for r in self.rows]
        self.image_size = int(image_size)
        self.augment = augment
        self.seed = int(seed)
        # The epoch lives in shared memory so that DataLoader workers, persistent ones included (which
        # keep the dataset object they were forked with), see set_epoch: augmentation and synthetic
        # fakes are drawn per (seed, epoch, index) and must not repeat epoch 0's draws.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.perturbation = None if perturbation in (None, "clean") else perturbation
        self._perturb = get_perturbation(self.perturbation) if self.perturbation else None
        self.perturb_before_resize = perturb_before_resize
        self.stores = dict(stores or {})
        self.max_image_pixels = max_image_pixels
        self.background = background
        self.crops: Sequence[np.ndarray] | None = None
        if crops is not None:
            self.use_crops(crops)

    def use_crops(self, crops: Sequence[np.ndarray]) -> None:
        """Read row ``i``'s resized uint8 crop from ``crops[i]`` (a crop cache) instead of decoding it."""
        if self.synthetic is not None or self._perturb is not None:
            raise ValueError(
                "a crop cache holds plain resized crops: not with perturbations or synthetic fakes"
            )
        if len(crops) != len(self.rows):
            raise ValueError(f"crop cache holds {len(crops)} crops for {len(self.rows)} rows")
        self.crops = crops

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch.fill_(int(value))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws ``__getitem__`` uses (in every worker too)."""
        self.epoch = int(epoch)

    def load_crop(self, index: int) -> np.ndarray:
        """The uint8 ``S x S`` crop after any perturbation, before augmentation: what the INR and CLIP
        stores are computed from."""
        if self.synthetic is not None and index >= self.n_real:
            src = index - self.n_real
            epoch = self.epoch if self.synthetic_per_epoch else 0
            img = self.synthetic.make(src, self._decode(src), epoch, self._decode).image
        elif self.crops is not None:
            return self.crops[index]
        else:
            img = self._decode(index)
        if self._perturb is not None and self.perturb_before_resize:
            img = self._perturb(img)
        img = resize_square(img, self.image_size)
        if self._perturb is not None and not self.perturb_before_resize:
            img = self._perturb(img)
        return img

    def _decode(self, index: int) -> np.ndarray:
        path = self.rows[index].path
        return load_image_rgb(path, max_pixels=self.max_image_pixels, background=self.background)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        img = self.load_crop(index)
        if self.augment is not None:
            x = augment_image(img, self.augment, augment_rng(self.seed, self.epoch, index))
        else:
            x = img.astype(np.float32) / 255.0
        item: dict[str, Any] = {
            "image": torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))),
            "label": int(row.label),
            "path": row.path,
            "video": row.video_id,
            "group": row.group,
            "index": index,
        }
        for name, store in self.stores.items():
            item[name] = torch.as_tensor(np.asarray(store[row.path], dtype=np.float32))
        return item


def _synthetic_row(row: ManifestRow, kind: str) -> ManifestRow:
    video = row.video or os.path.splitext(os.path.basename(row.path))[0]
    return dataclasses.replace(row, path=f"{row.path}#{kind}", label=1, method=kind, video=video)


def collate_batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors; keep the bookkeeping fields (``path``, ``video``, ``group``) as lists."""
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        if isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        elif key in ("label", "index"):
            batch[key] = torch.tensor(values, dtype=torch.long)
        else:
            batch[key] = values
    return batch
