"""The landmarks per real crop that synthetic fakes' blend masks follow (``train.synthetic_landmarks``):
a stored file (``prepare``'s 5-point ``landmarks.csv`` or a 68-point file), or landmarks detected on each
crop (5 points by the face detector, or 68 by dlib with ``dlib68``), saved in the run so that a resumed
run makes the same fakes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.config import ExperimentConfig
from fakescope.data.manifest import ManifestRow
from fakescope.data.synthetic import read_aligned_landmarks
from fakescope.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "SYNTHETIC_LANDMARKS_FILE",
    "SYNTHETIC_LANDMARKS68_FILE",
    "Landmarks",
    "synthetic_landmarks",
    "write_synthetic_landmarks",
]

#: Written into a run folder by ``train`` when the landmarks were detected on the crops.
SYNTHETIC_LANDMARKS_FILE = "synthetic_landmarks.csv"
SYNTHETIC_LANDMARKS68_FILE = "synthetic_landmarks68.csv"


@dataclass
class Landmarks:
    """Landmarks by real crop path (crops missing here use the layout's fixed points) and, when they
    were detected in this call, the detections to save in the run."""

    by_path: dict[str, np.ndarray]
    detected: dict[str, Any] | None = None
    dense: bool = False  # 68 points (dlib68) rather than 5


def synthetic_landmarks(
    cfg: ExperimentConfig, run: Path, rows: list[ManifestRow], progress: bool
) -> Landmarks:
    """The blend masks' landmarks for ``rows`` (real crops). Reads ``RUN/synthetic_landmarks.csv`` when
    a resumed run saved one; detects otherwise, leaving the file to :func:`write_synthetic_landmarks`."""
    source = cfg.train.synthetic_landmarks
    if source == "layout":
        return Landmarks({})
    if source == "dlib68":
        saved68 = run / SYNTHETIC_LANDMARKS68_FILE
        if not saved68.is_file():
            return _detect68(cfg, rows, progress)
        return _from_file(saved68, rows)
    beside = Path(cfg.data.manifest).parent / "landmarks.csv" if cfg.data.manifest else None
    saved = run / SYNTHETIC_LANDMARKS_FILE
    if source == "auto" and beside is not None and beside.is_file():
        file = beside
    elif source in ("auto", "detect"):
        file = saved
        if not saved.is_file():
            return _detect(cfg, rows, progress)
    else:
        file = Path(source)
        if not file.is_file():
            raise InputError(
                f"train.synthetic_landmarks: {file}: file not found (or use auto, detect, dlib68, layout)"
            )
    return _from_file(file, rows)


def _from_file(file: Path, rows: list[ManifestRow]) -> Landmarks:
    """A 68-point file (``p0_x`` column) or a 5-point one in ``prepare``'s layout."""
    from fakescope.preprocess.landmarks68 import read_landmarks68_csv

    with open(file, encoding="utf-8", errors="surrogateescape") as fh:
        dense = "p0_x" in fh.readline().split(",")
    stored = read_landmarks68_csv(file) if dense else read_aligned_landmarks(file)
    marks = {r.path: stored[k] for r in rows if (k := str(Path(r.path).resolve())) in stored}
    _log_landmarks(marks, rows, f"from {file}")
    return Landmarks(marks, dense=dense)


def _decoder(cfg: ExperimentConfig):
    from fakescope.data.images import load_image_rgb

    def load(path: str) -> np.ndarray:  # the decode FaceDataset blends on, so pixels match
        return load_image_rgb(path, max_pixels=cfg.data.max_image_pixels, background=cfg.data.rgba_background)

    return load


def _detect68(cfg: ExperimentConfig, rows: list[ManifestRow], progress: bool) -> Landmarks:
    from fakescope.preprocess.landmarks68 import detect_crop_landmarks68

    found = detect_crop_landmarks68([r.path for r in rows], _decoder(cfg), progress=progress)
    marks = {p: pts for p, (pts, _) in found.items()}
    _log_landmarks(marks, rows, "(68 points, dlib) detected on the crops")
    return Landmarks(marks, found, dense=True)


def _detect(cfg: ExperimentConfig, rows: list[ManifestRow], progress: bool) -> Landmarks:
    from fakescope.preprocess.detectors import build_face_detector
    from fakescope.preprocess.landmarks import detect_crop_landmarks

    detector = build_face_detector(cfg.preprocess, device="cpu")
    found = detect_crop_landmarks([r.path for r in rows], detector, _decoder(cfg), progress=progress)
    marks = {p: pts for p, (pts, _) in found.items()}
    _log_landmarks(marks, rows, "detected on the crops")
    return Landmarks(marks, found)


def write_synthetic_landmarks(run: Path, landmarks: Landmarks) -> None:
    """``RUN/synthetic_landmarks.csv`` (or ``synthetic_landmarks68.csv``) when the landmarks were detected
    (a resumed run reads it back)."""
    from fakescope.preprocess.landmarks import write_landmarks_csv
    from fakescope.preprocess.landmarks68 import write_landmarks68_csv

    if landmarks.detected is None:
        return
    if landmarks.dense:
        write_landmarks68_csv(run / SYNTHETIC_LANDMARKS68_FILE, landmarks.detected)
    else:
        write_landmarks_csv(run / SYNTHETIC_LANDMARKS_FILE, landmarks.detected)


def _log_landmarks(marks: dict[str, np.ndarray], rows: list[ManifestRow], where: str) -> None:
    log.info(
        "synthetic fakes: landmarks %s for %d of %d real crops; the rest use train.synthetic_face_layout's points",
        where, len(marks), len(rows),
    )  # fmt: skip
