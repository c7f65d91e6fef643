"""Scoring a video (docs/design.md, "Preprocessing" and "Metrics"; AIRL §IV-B, INFER §3.1).

A video is sampled at ``eval.frames_per_video`` evenly spaced frames (``DetectOptions.frames_per_video``
overrides it); in each frame one face is kept (``preprocess.face_select``); the video score is the mean
of the frame scores, and frames with no face follow ``preprocess.no_face_policy`` (dropped,
or scored 0.5) and are counted.

Video scoring sees the detector only through :class:`VideoScorer`: its settings, face search, face
scoring and the prediction it builds (:class:`~fakescope.api.detector.FaceForgeryDetector` is one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from tqdm import tqdm

from fakescope.api.results import FaceResult, FrameScore, Prediction
from fakescope.data.images import face_too_small
from fakescope.errors import InputError, NoFaceError
from fakescope.inference.faces import FaceCrop
from fakescope.preprocess.config import FrameSamplingConfig
from fakescope.preprocess.detectors import FaceDetection, select_faces
from fakescope.preprocess.video.decode import iter_frames
from fakescope.preprocess.video.probe import probe_video
from fakescope.preprocess.video.sampling import select_frame_indices

__all__ = ["VideoScorer", "VideoSettings", "predict_video"]


@dataclass(frozen=True)
class VideoSettings:
    """How a video is sampled and scored: ``eval.frames_per_video`` (or ``DetectOptions.frames_per_video``),
    ``preprocess.frames.seek``, ``preprocess.face_select``, ``preprocess.no_face_policy`` and
    ``DetectOptions.explain_frames``."""

    frames_per_video: int
    seek: bool
    face_select: str
    no_face_policy: str
    explain_frames: int


class VideoScorer(Protocol):
    """What video scoring needs from a detector."""

    def video_settings(self) -> VideoSettings: ...

    def find_faces(self, image: np.ndarray) -> list[FaceCrop]:
        """Every aligned face of an RGB frame, largest first."""
        ...

    def score_faces(
        self, name: str, faces: Sequence[FaceCrop], frames: Sequence[tuple[int, float | None]]
    ) -> list[FaceResult]:
        """One result per face (raising :class:`InputError` naming ``name`` for a non-finite score)."""
        ...

    def prediction(
        self, source: str, kind: Literal["image", "video"], faces: list[FaceResult], score: float | None
    ) -> Prediction: ...


def _sample_faces(
    scorer: VideoScorer, settings: VideoSettings, path: Path, aligned: bool, progress: bool
) -> tuple[list[tuple[int, float | None]], list[list[FaceCrop]], Any, Any]:
    """Decode the sampled frames; per frame, every aligned face (or the frame itself when ``aligned``:
    frames below the minimum face size are refused, as an aligned image is, before any is scored)."""
    probe = probe_video(path)
    sel = select_frame_indices(
        probe.n_frames, FrameSamplingConfig(policy="even", count=settings.frames_per_video)
    )
    if not sel.indices:
        raise InputError(f"{path}: the video has no frames")
    frames: list[tuple[int, float | None]] = []
    per_frame: list[list[FaceCrop]] = []
    it = iter_frames(path, sel.indices, probe=probe, seek=settings.seek)
    bar = tqdm(
        it, total=len(sel.indices), desc=f"{path.name}: frames", unit="frame", disable=not progress,
        leave=False, dynamic_ncols=True,
    )  # fmt: skip
    for fr in bar:
        if aligned and (small := face_too_small(fr.image, str(path))) is not None:
            raise small  # no verdict on a clip of 8-px "faces"
        frames.append((fr.index, fr.time))
        per_frame.append([FaceCrop(fr.image)] if aligned else scorer.find_faces(fr.image))
    return frames, per_frame, probe, sel


def _choose_faces(per_frame: list[list[FaceCrop]], face_select: str, aligned: bool) -> list[Any]:
    """One face per frame (``preprocess.face_select``), ``None`` for a frame with no face."""
    if aligned:
        return [faces[0] for faces in per_frame]
    # select_faces needs detections; keep the aligned crop alongside each detection.
    dets = [
        [FaceDetection(tuple(f.box), f.detection_score, np.asarray(f.landmarks, np.float32)) for f in faces]
        for faces in per_frame
    ]
    picks = select_faces(dets, face_select)
    return [None if p is None else per_frame[i][dets[i].index(p)] for i, p in enumerate(picks)]


def predict_video(scorer: VideoScorer, path: Path, aligned: bool, progress: bool) -> Prediction:
    """Score the sampled frames of a video and average them (see the module docstring)."""
    settings = scorer.video_settings()
    frames, per_frame, probe, sel = _sample_faces(scorer, settings, path, aligned, progress)
    chosen = _choose_faces(per_frame, settings.face_select, aligned)
    scored = [i for i, c in enumerate(chosen) if c is not None]
    faces = scorer.score_faces(str(path), [chosen[i] for i in scored], [frames[i] for i in scored])
    frame_scores: list[float | None] = [None] * len(frames)
    for face, i in zip(faces, scored, strict=True):
        frame_scores[i] = face.score
    policy = settings.no_face_policy
    if policy == "score_half":
        frame_scores = [0.5 if s is None else s for s in frame_scores]
    kept = [s for s in frame_scores if s is not None]
    if not kept:
        raise NoFaceError(f"{path}: no face found in any of the {len(frames)} sampled frames")
    pred = scorer.prediction(str(path), "video", faces, float(np.mean(kept)))
    pred.frames = [
        FrameScore(frames[i][0], frames[i][1], frame_scores[i], len(per_frame[i])) for i in range(len(frames))
    ]
    pred.frames_sampled, pred.frames_no_face, pred.no_face_policy = (
        len(frames),
        len(frames) - len(scored),
        policy,
    )
    if sel.short:
        pred.error = f"the video has only {probe.n_frames} frames; all were used"
    top = np.argsort(-np.array([f.score for f in faces]), kind="stable")[: settings.explain_frames]
    pred.explained = sorted(int(i) for i in top)
    return pred
