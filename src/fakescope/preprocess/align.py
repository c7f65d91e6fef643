"""Face alignment: a similarity transform from 5 landmarks onto a template (INFER §3.1 "warp and
affine" on five keypoints; AIRL §IV-B: 30% margin, 224x224).

The template is ArcFace's 112-px 5-point template. The margin widens its frame: the crop spans
``(1 + margin) * 112`` template pixels with the face centred, scaled to ``size``. So with the
defaults (margin 0.3, size 224) the eyes land at (84.8, 105.4) and (139.0, 105.1) in the crop.
The transform is the least-squares similarity (Umeyama) of scikit-image; the warp is OpenCV's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

from fakescope.errors import InputError
from fakescope.preprocess.config import AlignConfig

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "AlignedFace",
    "template_landmarks",
    "similarity_matrix",
    "align_face",
    "box_matrix",
    "outside_share",
]

# ArcFace / InsightFace 5-point template for 112x112 crops: left eye, right eye, nose tip, left and
# right mouth corners (image left/right).
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)

_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}
_BORDER = {
    "constant": cv2.BORDER_CONSTANT,
    "replicate": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
}


@dataclass(frozen=True)
class AlignedFace:
    """``image``: size x size x 3 uint8 RGB. ``matrix``: the 2x3 map from frame to crop pixels.
    ``landmarks``: the detected 5 points in the frame; ``landmarks_aligned``: the same in the crop."""

    image: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray
    landmarks_aligned: np.ndarray


def template_landmarks(size: int = 224, margin: float = 0.3, template: str = "arcface") -> np.ndarray:
    """The template's 5 points in a ``size`` crop whose frame is widened by ``margin``."""
    if template != "arcface":
        raise ValueError(f"unknown alignment template {template!r}")
    pad = 56.0 * margin  # half of the extra (margin * 112) on each side
    return (ARCFACE_TEMPLATE_112 + pad) * (size / (112.0 * (1.0 + margin)))


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``src`` to ``dst``, 2x3."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(src)):
        raise InputError("landmarks contain NaN or infinity")
    if hasattr(SimilarityTransform, "from_estimate"):
        tform = SimilarityTransform.from_estimate(src, dst)
        ok = bool(tform)
    else:  # scikit-image < 0.26
        tform = SimilarityTransform()
        ok = tform.estimate(src, dst)
    if not ok or not np.all(np.isfinite(tform.params)):
        raise InputError("landmarks are degenerate (all points coincide); cannot align the face")
    return np.asarray(tform.params[:2], dtype=np.float64)


def box_matrix(box: tuple[float, float, float, float], size: int, margin: float) -> np.ndarray:
    """Scale + translation mapping a square of side ``max(w, h) * (1 + margin)`` centred on ``box``
    onto the ``size`` crop (``align.method=box``: no rotation)."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    s = size / side
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy]], dtype=np.float64)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    cfg: AlignConfig | None = None,
    box: tuple[float, float, float, float] | None = None,
) -> AlignedFace:
    """Warp ``image`` (HxWx3 uint8 RGB) so the 5 ``landmarks`` land on the template.

    ``cfg.method=box`` instead crops the square around ``box`` (which is then required).
    """
    cfg = cfg or AlignConfig()
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if cfg.method == "similarity":
        matrix = similarity_matrix(landmarks, template_landmarks(cfg.size, cfg.margin, cfg.template))
    else:
        if box is None:
            raise ValueError("align.method=box needs the detector box")
        matrix = box_matrix(box, cfg.size, cfg.margin)
    crop = cv2.warpAffine(
        image,
        matrix,
        (cfg.size, cfg.size),
        flags=_INTERP[cfg.interpolation],
        borderMode=_BORDER[cfg.border],
        borderValue=(0, 0, 0),
    )
    return AlignedFace(
        crop, matrix, landmarks.astype(np.float32), _apply(matrix, landmarks).astype(np.float32)
    )


def outside_share(matrix: np.ndarray, frame_shape: tuple[int, ...], size: int) -> float:
    """The share of a ``size`` crop's pixels that ``matrix`` takes from outside the frame (filled by
    ``align.border``). Large when the input is already a tight face crop that gets re-aligned."""
    inside = np.full(frame_shape[:2], 255, np.uint8)
    warped = cv2.warpAffine(inside, matrix, (size, size), flags=cv2.INTER_NEAREST, borderValue=0)
    return float((warped == 0).mean())
