"""68-point face landmarks (the iBUG 300-W layout: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
mouth 48-67) for the blend masks of self-blended fakes (``train.synthetic_landmarks: dlib68``).

SBI (Shiohara & Yamasaki, CVPR 2022, §3.2) builds its mask from the convex hull of a face's dense
landmarks, so the mask follows the jaw and brows of each face, turned or not. Five points (eyes, nose,
mouth corners) cannot: :func:`fakescope.data.synthetic.hull_points` has to guess the outline from them.
The points come from dlib's shape predictor (Kazemi & Sullivan, CVPR 2014) with the 68-point model
trained on iBUG 300-W, whose weights ship inside the ``face-recognition-models`` package
(``pip install 'fakescope[sbi]'``: ``dlib-bin`` and ``face-recognition-models``; the 300-W model is for
research use). Nothing else in fakescope needs them.

The predictor needs a face box. Crops from other tools are tight (the shared DFDC crops' faces fill the
image), so each crop is padded by ``pad`` of its side before dlib's HOG face detector runs (again with
one 2× up-sampling if it finds nothing), the box nearest the crop's centre is kept, and the points are
returned in the crop's own pixels. A crop with no face found is left out; the caller falls back to 5
points.

The file written (``synthetic_landmarks68.csv``) has ``path``, ``score`` (dlib's detection score) and
``p<i>_x``, ``p<i>_y`` for i = 0..67, in crop pixels.
"""

from __future__ import annotations

import csv
import importlib.util
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from fakescope.errors import InputError
from fakescope.utils.atomic import atomic_open

__all__ = [
    "N_POINTS",
    "JAW",
    "predictor_path",
    "Landmarks68",
    "detect_crop_landmarks68",
    "write_landmarks68_csv",
    "read_landmarks68_csv",
]


N_POINTS = 68
#: The jaw line's indices in the 68-point layout (right ear, chin at 8, left ear, in image left-to-right).
JAW = tuple(range(17))

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
INSTALL_HINT = "pip install 'fakescope[sbi]' (dlib-bin and face-recognition-models)"


def predictor_path() -> Path:
    """The 68-point model file inside the installed ``face-recognition-models`` package.

    The package is located without importing it (its ``__init__`` needs ``pkg_resources``, which
    recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / "models" / PREDICTOR_FILE
        if path.is_file():
            return path
    raise InputError(
        f"68-point landmarks need dlib's {PREDICTOR_FILE}, which is not installed: {INSTALL_HINT}"
    )


class Landmarks68:
    """dlib's HOG face detector plus its 68-point shape predictor, on RGB uint8 crops."""

    def __init__(self, path: str | os.PathLike[str] | None = None, pad: float = 0.25) -> None:
        try:
            import dlib
        except ImportError as err:
            raise InputError(f"68-point landmarks need dlib, which is not installed: {INSTALL_HINT}") from err
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(path or predictor_path()))
        self.pad = float(pad)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The 68 points ``[68, 2]`` (crop pixels) and the detection score of the face nearest the crop's
        centre, or None when no face is found."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 HxWx3 RGB crop, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        p = int(round(self.pad * max(h, w)))
        padded = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0)) if p else image
        padded = np.ascontiguousarray(padded)
        for upsample in (0, 1):  # up-sampling finds small faces at 4x the cost: only when needed
            boxes, scores, _ = self.detector.run(padded, upsample, 0.0)
            if len(boxes):
                break
        else:
            return None
        centre = np.array([p + w / 2.0, p + h / 2.0])

        def distance(k: int) -> float:
            b = boxes[k]
            return float(
                np.hypot((b.left() + b.right()) / 2 - centre[0], (b.top() + b.bottom()) / 2 - centre[1])
            )

        k = min(range(len(boxes)), key=distance)
        shape = self.predictor(padded, boxes[k])
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(N_POINTS)], dtype=np.float64)
        return pts - p, float(scores[k])


def detect_crop_landmarks68(
    paths: Sequence[str],
    load: Callable[[str], np.ndarray],
    *,
    finder: Landmarks68 | None = None,
    progress: bool = False,
) -> dict[str, tuple[np.ndarray, float]]:
    """68 landmarks of every crop in ``paths`` (loaded by ``load``) where a face is found. An unreadable
    crop is logged in one line and left out, like a crop without a face."""
    from fakescope.preprocess.landmarks import find_on_crops

    return find_on_crops(paths, load, finder or Landmarks68(), desc="68 landmarks", progress=progress)


def _columns() -> list[str]:
    return ["path", "score"] + [f"p{i}_{a}" for i in range(N_POINTS) for a in ("x", "y")]


def write_landmarks68_csv(path: str | os.PathLike[str], marks: dict[str, tuple[np.ndarray, float]]) -> None:
    """Write ``marks`` (crop path -> (68 points, score)) atomically, with absolute crop paths."""
    with atomic_open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        w = csv.writer(fh)
        w.writerow(_columns())
        for crop, (pts, score) in marks.items():
            w.writerow([str(Path(crop).resolve()), f"{score:.4f}", *(f"{v:.2f}" for v in np.ravel(pts))])


def read_landmarks68_csv(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """A file of :func:`write_landmarks68_csv`: absolute crop path -> ``[68, 2]`` (relative paths are
    relative to the file's folder). Rows with a missing or unreadable value are skipped."""
    folder = Path(path).resolve().parent
    cols = _columns()[2:]
    out: dict[str, np.ndarray] = {}
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not set(cols) <= set(reader.fieldnames):
            raise InputError(f"{path}: not a 68-point landmarks file (needs the columns path, p0_x .. p67_y)")
        for row in reader:
            try:
                pts = np.array([float(row[c]) for c in cols], dtype=np.float64).reshape(N_POINTS, 2)
            except (TypeError, ValueError):
                continue
            if not np.all(np.isfinite(pts)):
                continue
            crop = Path(row["path"])
            out[str(crop if crop.is_absolute() else (folder / crop).resolve())] = pts
    return out
