"""5-point landmarks re-detected on face crops that ``prepare`` did not make, for the blending masks of
self-blended training fakes (``fakescope.data.synthetic``; SBI, Shiohara & Yamasaki, CVPR 2022, §3.2
builds its mask from the face's landmarks; Face X-ray, Li et al., CVPR 2020, §3.2 matches donors by
them).

Crops from other tools (the shared DFDC, FFHQ and CIPLAB sets) are tight: the forehead and chin touch
the border, and face detectors miss a face that fills the whole image. Each crop is therefore padded
by ``pad`` of its side with black before detection, and the face whose box centre lies nearest the
crop's centre is kept; its landmarks are returned in the crop's own pixels. A crop with no face found
is left out, and the caller falls back to the layout's fixed points.

The file written is in ``prepare``'s ``landmarks.csv`` layout (``path`` and ``aligned_<point>_x/y`` in
crop pixels), so :func:`fakescope.data.synthetic.read_aligned_landmarks` reads either.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from fakescope.preprocess.detectors import FaceDetector
from fakescope.utils.atomic import atomic_open

__all__ = [
    "LANDMARK_NAMES",
    "crop_landmarks",
    "detect_crop_landmarks",
    "find_on_crops",
    "write_landmarks_csv",
]

log = logging.getLogger(__name__)

#: The 5 points, in the order every detector and ``landmarks.csv`` use.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")


def crop_landmarks(
    image: np.ndarray, detector: FaceDetector, pad: float = 0.25
) -> tuple[np.ndarray, float] | None:
    """The 5 landmarks ``[5, 2]`` (crop pixels) and score of the face nearest the centre of the uint8
    RGB crop ``image``, or None when the detector finds no face."""
    h, w = image.shape[:2]
    p = int(round(pad * max(h, w)))
    padded = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0)) if p else image
    faces = detector.detect(padded)
    if not faces:
        return None
    centre = np.array([p + w / 2.0, p + h / 2.0])
    face = min(faces, key=lambda f: (float(np.linalg.norm(np.asarray(f.center) - centre)), -f.score))
    return np.asarray(face.landmarks, dtype=np.float64) - p, float(face.score)


def detect_crop_landmarks(
    paths: Sequence[str],
    detector: FaceDetector,
    load: Callable[[str], np.ndarray],
    pad: float = 0.25,
    progress: bool = False,
) -> dict[str, tuple[np.ndarray, float]]:
    """Landmarks of every crop in ``paths`` (loaded by ``load``) where a face is found. An unreadable
    crop is logged in one line and left out, like a crop without a face."""
    return find_on_crops(paths, load, lambda image: crop_landmarks(image, detector, pad), progress=progress)


def find_on_crops(
    paths: Sequence[str],
    load: Callable[[str], np.ndarray],
    find: Callable[[np.ndarray], tuple[np.ndarray, float] | None],
    *,
    desc: str = "landmarks",
    progress: bool = False,
) -> dict[str, tuple[np.ndarray, float]]:
    """``find`` (an image -> (points, score) or None) on every crop in ``paths``: the crops where it
    found a face. An unreadable crop is logged in one line and left out, and the batch goes on."""
    from tqdm import tqdm

    found: dict[str, tuple[np.ndarray, float]] = {}
    for path in tqdm(paths, desc=desc, unit="crop", disable=not progress):
        try:
            image = load(path)
        except Exception as err:  # noqa: BLE001 - one bad file must not stop the batch
            log.warning("landmarks: %s: cannot read it (%s); the layout's points are used", path, err)
            continue
        res = find(image)
        if res is not None:
            found[path] = res
    return found


def write_landmarks_csv(path: str | os.PathLike[str], marks: dict[str, tuple[np.ndarray, float]]) -> None:
    """Write ``marks`` (crop path -> (landmarks, score)) atomically in ``landmarks.csv``'s layout, with
    absolute crop paths."""
    cols = ["path", "score"] + [f"aligned_{n}_{a}" for n in LANDMARK_NAMES for a in ("x", "y")]
    with atomic_open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for crop, (pts, score) in marks.items():
            w.writerow([str(Path(crop).resolve()), f"{score:.4f}", *(f"{v:.2f}" for v in np.ravel(pts))])
