"""RetinaFace-MobileNet0.25 (Deng et al., "RetinaFace: Single-Shot Multi-Level Face Localisation in the
Wild", CVPR 2020) run from the ONNX file shipped in ``fakescope/resources``: input normalisation, prior
boxes, box and landmark decoding, and non-maximum suppression.

The network (§3.1-3.2 of the paper, the MobileNet-0.25 light-weight variant of §4.8) is a feature
pyramid with three levels, strides 8, 16 and 32, and two square anchors per cell and level (16 and 32,
64 and 128, 256 and 512 pixels). For each anchor it gives three outputs, concatenated level by level,
cell by cell in row order (y, then x), anchor by anchor:

- ``loc`` [N, A, 4]: the box offset (dx, dy, dw, dh) encoded against the anchor as in SSD (Liu et al.,
  ECCV 2016, §2.2) with variances (0.1, 0.2): centre = anchor centre + d * 0.1 * anchor side,
  side = anchor side * exp(dw * 0.2);
- ``conf`` [N, A, 2]: softmax over (background, face);
- ``landmarks`` [N, A, 10]: five points (x, y), each encoded like the box centre (the paper's
  five-landmark regression, §3.1, eq. 2).

A feature map of a stride-s level has ceil(H / s) x ceil(W / s) cells (each stride-2 convolution of
the backbone pads by one), which makes any input size valid. The weights were trained on BGR images
with the per-channel means (104, 117, 123) subtracted and no scaling.

Sub-pixel landmarks are kept: similarity alignment needs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "MODEL_FILE",
    "STRIDES",
    "ANCHOR_SIDES",
    "RetinaFaceOutput",
    "decode",
    "model_path",
    "nms",
    "normalise",
    "prior_boxes",
]

#: the ONNX file inside ``fakescope/resources`` (resources/LICENSES.md gives its origin and licence)
MODEL_FILE = "retinaface_mnet025.onnx"
#: its SHA-256, checked when the detector loads it
MODEL_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"
STRIDES = (8, 16, 32)
ANCHOR_SIDES = ((16, 32), (64, 128), (256, 512))
CENTRE_VARIANCE = 0.1
SIZE_VARIANCE = 0.2
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def model_path() -> Path:
    """The shipped RetinaFace-MobileNet0.25 ONNX file."""
    return Path(str(resources.files("fakescope") / "resources" / MODEL_FILE))


def normalise(image_rgb: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB image as the network's [1, 3, H, W] float32 input (BGR minus the means)."""
    x = image_rgb[..., ::-1].astype(np.float32) - MEAN_BGR
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def prior_boxes(height: int, width: int) -> np.ndarray:
    """[A, 4] anchors (centre x, centre y, side, side) in pixels, in the network's output order."""
    levels = []
    for stride, sides in zip(STRIDES, ANCHOR_SIDES, strict=True):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        cy, cx = np.meshgrid(
            (np.arange(ny, dtype=np.float32) + 0.5) * stride,
            (np.arange(nx, dtype=np.float32) + 0.5) * stride,
            indexing="ij",
        )
        k = len(sides)
        centres = np.stack([cx.ravel(), cy.ravel()], axis=1)  # row order: y outer, x inner
        centres = np.repeat(centres, k, axis=0)  # each cell's anchors are consecutive
        side = np.tile(np.asarray(sides, dtype=np.float32), ny * nx)[:, None]
        levels.append(np.hstack([centres, side, side]))
    return np.concatenate(levels, axis=0)


@dataclass(frozen=True)
class RetinaFaceOutput:
    """Decoded candidates of one image, before thresholding: ``boxes`` [A, 4] (x1, y1, x2, y2),
    ``scores`` [A], ``landmarks`` [A, 5, 2], all in the input's pixels."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray


def decode(loc: np.ndarray, conf: np.ndarray, marks: np.ndarray, priors: np.ndarray) -> RetinaFaceOutput:
    """Boxes, face probabilities and landmarks from one image's raw outputs ([A, 4], [A, 2], [A, 10])."""
    if not (len(loc) == len(conf) == len(marks) == len(priors)):
        raise ValueError(
            f"RetinaFace outputs disagree with the prior boxes: {len(loc)}, {len(conf)}, {len(marks)} "
            f"predictions for {len(priors)} anchors"
        )
    centre, side = priors[:, :2], priors[:, 2:]
    box_centre = centre + loc[:, :2] * CENTRE_VARIANCE * side
    box_side = side * np.exp(loc[:, 2:] * SIZE_VARIANCE)
    boxes = np.hstack([box_centre - box_side / 2, box_centre + box_side / 2])
    points = centre[:, None, :] + marks.reshape(-1, 5, 2) * CENTRE_VARIANCE * side[:, None, :]
    return RetinaFaceOutput(
        boxes.astype(np.float32), conf[:, 1].astype(np.float32), points.astype(np.float32)
    )


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first. A box is dropped
    when its intersection over union with an already kept, higher-scoring box exceeds ``iou_threshold``."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep: list[int] = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
