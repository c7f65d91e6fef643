"""Face detectors returning boxes, scores and 5 landmarks (INFER §3.1: RetinaFace; AIRL §IV-B: MTCNN
with confidence >= 0.95).

- ``retinaface``: the RetinaFace-MobileNet0.25 ONNX model shipped in ``fakescope/resources`` (MIT;
  resources/LICENSES.md), run with onnxruntime (CUDA provider when ``--device cuda`` and
  onnxruntime-gpu is present); prior boxes, decoding and NMS are :mod:`fakescope.preprocess.retinaface`
  and keep sub-pixel landmarks, which alignment needs.
- ``mtcnn``: ``facenet_pytorch.MTCNN`` (P/R/O-Net weights in that optional wheel, installed by
  ``make setup``), on the torch device.

Both detect on a copy of the frame shrunk so its long side is at most ``detect_max_side`` (speed;
faces in face-swap datasets are large) and report coordinates in the full-resolution frame.
Landmark order: left eye, right eye, nose, left mouth corner, right mouth corner, where left/right
mean the image's left/right (the subject's right eye is the first point).

Several faces in one frame: :func:`select_faces` applies ``preprocess.face_select``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from fakescope.errors import ConfigError, ModelLoadError
from fakescope.preprocess.config import PreprocessConfig
from fakescope.utils.imports import reraise_interrupt

__all__ = [
    "FaceDetection",
    "FaceDetector",
    "RetinaFaceDetector",
    "MTCNNDetector",
    "build_face_detector",
    "select_faces",
    "detect_tiled",
    "DEFAULT_CONFIDENCE",
]

DEFAULT_CONFIDENCE = {"retinaface": 0.9, "mtcnn": 0.95}


@dataclass(frozen=True)
class FaceDetection:
    """``box`` is (x1, y1, x2, y2) in pixels; ``landmarks`` is float32 [5, 2] (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


class FaceDetector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in one HxWx3 uint8 RGB image, most confident first."""
        ...


def _shrink(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, 1.0
    scale = max_side / max(h, w)
    small = cv2.resize(
        image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    return small, scale


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {got}")
    return image


class RetinaFaceDetector:
    """RetinaFace (Deng et al., CVPR 2020), MobileNet-0.25 weights from ``fakescope/resources``."""

    name = "retinaface"

    def __init__(
        self,
        min_confidence: float = 0.9,
        nms_threshold: float = 0.4,
        max_side: int | None = 960,
        device: str = "cpu",
        threads: int = 0,
    ) -> None:
        from fakescope.preprocess import retinaface as rf

        try:
            import onnxruntime as ort
        except ImportError as err:  # pragma: no cover - a dependency of fakescope
            reraise_interrupt(err)  # Ctrl-C while onnxruntime initialises is not a missing package
            raise ModelLoadError(f"RetinaFace needs onnxruntime ({err}); pip install onnxruntime") from None
        path = rf.model_path()
        try:
            weights = path.read_bytes()
        except OSError as err:
            raise ModelLoadError(
                f"{path}: cannot read the RetinaFace weights ({err.strerror or err}); reinstall fakescope"
            ) from None
        if hashlib.sha256(weights).hexdigest() != rf.MODEL_SHA256:
            raise ModelLoadError(
                f"{path}: the RetinaFace weights are damaged (SHA-256 mismatch); reinstall fakescope"
            )
        self.min_confidence = float(min_confidence)
        self.nms_threshold = float(nms_threshold)
        self.max_side = max_side
        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(weights, options, providers=providers)
        self._priors: dict[tuple[int, int], np.ndarray] = {}

    def _prior_boxes(self, h: int, w: int) -> np.ndarray:
        from fakescope.preprocess.retinaface import prior_boxes

        if (h, w) not in self._priors:
            if len(self._priors) > 8:  # a video keeps one frame size; a folder of photos may not
                self._priors.clear()
            self._priors[(h, w)] = prior_boxes(h, w)
        return self._priors[(h, w)]

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        from fakescope.preprocess.retinaface import decode, nms, normalise

        image = _check_image(image)
        small, scale = _shrink(image, self.max_side)
        h, w = small.shape[:2]
        loc, conf, marks = self.session.run(None, {"input": normalise(small)})
        out = decode(loc[0], conf[0], marks[0], self._prior_boxes(h, w))
        keep = np.flatnonzero(out.scores >= self.min_confidence)
        keep = keep[nms(out.boxes[keep], out.scores[keep], self.nms_threshold)]
        return [
            FaceDetection(
                tuple(float(v) / scale for v in out.boxes[i]),  # type: ignore[arg-type]
                float(out.scores[i]),
                (out.landmarks[i] / scale).astype(np.float32),
            )
            for i in keep
        ]


class MTCNNDetector:
    """MTCNN (Zhang et al., 2016) through ``facenet_pytorch``; AIRL §IV-B keeps faces with p >= 0.95."""

    name = "mtcnn"

    def __init__(
        self,
        min_confidence: float = 0.95,
        max_side: int | None = 960,
        device: str = "cpu",
        min_face_size: int = 20,
    ) -> None:
        try:
            from facenet_pytorch import MTCNN
        except ImportError as err:  # pragma: no cover - optional (make setup installs it)
            reraise_interrupt(err)
            raise ModelLoadError(
                f"MTCNN needs the facenet-pytorch package ({err}); "
                "install it with: pip install --no-deps facenet-pytorch==2.6.0 (or run `make setup`)"
            ) from None
        import torch

        self.min_confidence = float(min_confidence)
        self.max_side = max_side
        self.model = MTCNN(
            keep_all=True,
            device=torch.device(device),
            min_face_size=min_face_size,
            post_process=False,
            select_largest=False,
        )

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        image = _check_image(image)
        small, scale = _shrink(image, self.max_side)
        boxes, probs, marks = self.model.detect(small, landmarks=True)
        if boxes is None:
            return []
        out = []
        for box, p, lm in zip(boxes, probs, marks, strict=True):
            if p is None or not math.isfinite(float(p)) or float(p) < self.min_confidence:
                continue
            out.append(
                FaceDetection(
                    tuple(float(v) / scale for v in box),
                    float(p),  # type: ignore[arg-type]
                    (np.asarray(lm, dtype=np.float32) / scale),
                )
            )
        out.sort(key=lambda d: -d.score)
        return out


def build_face_detector(cfg: PreprocessConfig, device: str = "cpu", threads: int = 0) -> FaceDetector:
    """The detector named by ``preprocess.detector``; ``min_confidence`` null means the paper's value."""
    conf = cfg.min_confidence if cfg.min_confidence is not None else DEFAULT_CONFIDENCE[cfg.detector]
    if cfg.detector == "retinaface":
        return RetinaFaceDetector(
            conf, cfg.nms_threshold, cfg.detect_max_side, device=device, threads=threads
        )
    if cfg.detector == "mtcnn":
        return MTCNNDetector(conf, cfg.detect_max_side, device=device, min_face_size=cfg.mtcnn_min_face_size)
    raise ConfigError(f"preprocess.detector: unknown detector {cfg.detector!r} (retinaface | mtcnn)")


def select_faces(detections: Sequence[Sequence[FaceDetection]], policy: str) -> list[FaceDetection | None]:
    """Choose one face per frame of one video (``None`` where the frame has none).

    - ``largest``: the biggest box (the subject is usually the closest face);
    - ``confident``: the highest score;
    - ``track``: the face consistent with the video's other frames. Start from the largest face
      of the frame whose largest face is the biggest in the video, then walk to each neighbouring
      frame and take the face whose centre is nearest the last chosen one (distance measured in
      box widths), so a bystander never replaces the subject between two sampled frames.
    """
    if policy == "largest":
        return [max(d, key=lambda f: f.area) if d else None for d in detections]
    if policy == "confident":
        return [max(d, key=lambda f: f.score) if d else None for d in detections]
    if policy != "track":
        raise ConfigError(f"preprocess.face_select: unknown policy {policy!r} (largest | confident | track)")
    chosen: list[FaceDetection | None] = [None] * len(detections)
    seeds = [(max(f.area for f in d), i) for i, d in enumerate(detections) if d]
    if not seeds:
        return chosen
    _, start = max(seeds)
    chosen[start] = max(detections[start], key=lambda f: f.area)

    def nearest(prev: FaceDetection, faces: Sequence[FaceDetection]) -> FaceDetection:
        px, py = prev.center
        width = max(prev.box[2] - prev.box[0], 1.0)
        return min(faces, key=lambda f: math.hypot(f.center[0] - px, f.center[1] - py) / width)

    for order in (range(start + 1, len(detections)), range(start - 1, -1, -1)):
        prev = chosen[start]
        for i in order:
            if detections[i]:
                assert prev is not None
                chosen[i] = nearest(prev, detections[i])
                prev = chosen[i]
    return chosen


#: A frame whose long side exceeds this many times its short side is searched in overlapping tiles.
TILE_ASPECT = 3.0


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect_tiled(detector: FaceDetector, image: np.ndarray, iou: float = 0.4) -> list[FaceDetection]:
    """``detector.detect`` on a normal frame; on an extreme aspect ratio (a 10000x200 banner: long side
    over :data:`TILE_ASPECT` times the short side), on overlapping tiles of twice the short side along
    the long axis, so that shrinking the whole frame to ``detect_max_side`` cannot make a face too
    small to find. Detections are moved back to frame pixels and merged (highest score wins at IoU >
    ``iou``); most confident first."""
    h, w = image.shape[:2]
    long_side, short_side = max(h, w), min(h, w)
    if short_side == 0 or long_side <= TILE_ASPECT * short_side:
        return detector.detect(image)
    tile, stride = 2 * short_side, short_side
    starts = list(range(0, long_side - tile + 1, stride))
    if starts[-1] + tile < long_side:
        starts.append(long_side - tile)
    found: list[FaceDetection] = []
    for s in starts:
        part = image[:, s : s + tile] if w >= h else image[s : s + tile]
        dx, dy = (s, 0) if w >= h else (0, s)
        for d in detector.detect(np.ascontiguousarray(part)):
            box = (d.box[0] + dx, d.box[1] + dy, d.box[2] + dx, d.box[3] + dy)
            found.append(FaceDetection(box, d.score, d.landmarks + np.array([dx, dy], np.float32)))
    kept: list[FaceDetection] = []
    for d in sorted(found, key=lambda d: d.score, reverse=True):
        if all(_iou(d.box, k.box) <= iou for k in kept):
            kept.append(d)
    return kept
