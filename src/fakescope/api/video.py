"""Scoring a video (DESIGN.md "Preprocessing" and "Metrics"; AIRL §IV-B, INFER §3.1).

A video is sampled at ``eval.frames_per_video`` evenly spaced frames (``DetectOptions.frames_per_video``
overrides it); in each frame one face is kept (``preprocess.face_select``); the video score is the mean
of the frame scores (DESIGN.md), and frames with no face follow ``preprocess.no_face_policy`` (dropped,
or scored 0.5) and are counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from fakescope.api.results import FrameScore, Prediction
from fakescope.errors import InputError, NoFaceError

if TYPE_CHECKING:
    from fakescope.api.detector import AlignedFace, FaceForgeryDetector

__all__ = ["predict_video"]


def _sample_faces(
    det: FaceForgeryDetector, path: Path, aligned: bool, progress: bool
) -> tuple[list[tuple[int, float | None]], list[list[AlignedFace]], Any, Any]:
    """Decode the sampled frames; per frame, every aligned face (or the frame itself when ``aligned``)."""
    from fakescope.api.detector import AlignedFace
    from fakescope.preprocess.config import FrameSamplingConfig
    from fakescope.preprocess.video import iter_frames, probe_video, select_frame_indices

    probe = probe_video(path)
    count = det.options.frames_per_video or det.cfg.eval.frames_per_video
    sel = select_frame_indices(probe.n_frames, FrameSamplingConfig(policy="even", count=count))
    if not sel.indices:
        raise InputError(f"{path}: the video has no frames")
    frames: list[tuple[int, float | None]] = []
    per_frame: list[list[AlignedFace]] = []
    it = iter_frames(path, sel.indices, probe=probe, seek=det.cfg.preprocess.frames.seek)
    bar = tqdm(
        it, total=len(sel.indices), desc=f"{path.name}: frames", unit="frame", disable=not progress,
        leave=False, dynamic_ncols=True,
    )  # fmt: skip
    for fr in bar:
        frames.append((fr.index, fr.time))
        per_frame.append([AlignedFace(fr.image)] if aligned else det.find_faces(fr.image))
    return frames, per_frame, probe, sel


def _choose_faces(det: FaceForgeryDetector, per_frame: list[list[AlignedFace]], aligned: bool) -> list[Any]:
    """One face per frame (``preprocess.face_select``), ``None`` for a frame with no face."""
    if aligned:
        return [faces[0] for faces in per_frame]
    from fakescope.preprocess.detectors import FaceDetection, select_faces

    # select_faces needs detections; keep the aligned crop alongside each detection.
    dets = [
        [FaceDetection(tuple(f.box), f.detection_score, np.asarray(f.landmarks, np.float32)) for f in faces]
        for faces in per_frame
    ]
    picks = select_faces(dets, det.cfg.preprocess.face_select)
    return [None if p is None else per_frame[i][dets[i].index(p)] for i, p in enumerate(picks)]


def predict_video(det: FaceForgeryDetector, path: Path, aligned: bool, progress: bool) -> Prediction:
    """Score the sampled frames of a video and average them (see the module docstring)."""
    frames, per_frame, probe, sel = _sample_faces(det, path, aligned, progress)
    chosen = _choose_faces(det, per_frame, aligned)
    scored = [i for i, c in enumerate(chosen) if c is not None]
    scores, records, maps = det.score_crops([chosen[i].crop for i in scored])
    det.check_scores(str(path), scores)
    faces = det.face_results([chosen[i] for i in scored], scores, records, maps, [frames[i] for i in scored])
    frame_scores: list[float | None] = [None] * len(frames)
    for k, i in enumerate(scored):
        frame_scores[i] = float(scores[k])
    policy = det.cfg.preprocess.no_face_policy
    if policy == "score_half":
        frame_scores = [0.5 if s is None else s for s in frame_scores]
    kept = [s for s in frame_scores if s is not None]
    if not kept:
        raise NoFaceError(f"{path}: no face found in any of the {len(frames)} sampled frames")
    pred = det.prediction(str(path), "video", faces, float(np.mean(kept)))
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
    top = np.argsort(-np.array([f.score for f in faces]), kind="stable")[: det.options.explain_frames]
    pred.explained = sorted(int(i) for i in top)
    return pred
