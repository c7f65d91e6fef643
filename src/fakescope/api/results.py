"""What ``detect`` returns: per-face results, video frame scores and the per-input prediction, with
their JSON form (``fakescope detect --json``; docs/CONTRACTS.md "Detect JSON")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field

from fakescope.inference.familiarity import CAUTION
from fakescope.utils.schema import StrictModel
from fakescope.utils.text import display_name

__all__ = ["DetectOptions", "FaceResult", "FrameScore", "ImageInput", "Prediction", "source_name"]

ImageInput = Any  # str | os.PathLike | bytes | PIL.Image.Image | np.ndarray


class DetectOptions(StrictModel):
    """Choices of ``detect`` that the papers leave open (docs/detect.md)."""

    aligned: bool = Field(
        False, description="inputs are already aligned face crops: skip detection and alignment"
    )
    image_score: Literal["max", "mean"] = Field(
        "max", description="an image's score from its faces' scores: max (one fake face makes the image fake)"
    )
    max_faces: int | None = Field(
        None, ge=1, description="score at most this many faces per image (largest first)"
    )
    frames_per_video: int | None = Field(None, ge=1, description="None = the run's eval.frames_per_video")
    explain_frames: int = Field(
        3, ge=1, description="a video report explains its this-many highest-scoring frames"
    )


@dataclass
class FaceResult:
    """One scored face. ``box`` (x1, y1, x2, y2) and ``landmarks`` (5 × (x, y)) are in the input's
    pixels; both are ``None`` for an input given as an aligned crop."""

    score: float
    label: str
    box: list[float] | None = None
    landmarks: list[list[float]] | None = None
    detection_score: float | None = None
    frame: int | None = None
    time_s: float | None = None
    inr: dict[str, Any] | None = None
    #: share of the aligned crop filled from outside the image (``preprocess.align.border``)
    outside_frame: float | None = None
    crop: np.ndarray | None = field(default=None, repr=False)
    heatmaps: np.ndarray | None = field(default=None, repr=False)
    #: calibrated P(fake) (``RUN/calibration.json``); ``None`` when the run has no calibration
    probability: float | None = None
    #: ``{"score", "threshold", "unfamiliar"}``: how far the face lies from the training data (higher =
    #: farther; ``RUN/familiarity.safetensors``); ``None`` when the run has no familiarity model
    familiarity: dict[str, Any] | None = None
    #: how the scored crop was made: ``"detected"`` (found and re-aligned onto the template) or
    #: ``"aligned-crop"`` (the input scored as it is: ``--aligned``, or a face filling most of the
    #: image); ``None`` reads from ``box`` (no box: an aligned crop)
    path: Literal["aligned-crop", "detected"] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "score": round(self.score, 6),
            "label": self.label,
            "path": self.path or ("aligned-crop" if self.box is None else "detected"),
            "box": self.box,
            "landmarks": self.landmarks,
            "detection_score": self.detection_score,
        }
        if self.frame is not None:
            d["frame"] = self.frame
            d["time_s"] = self.time_s
        if self.inr is not None:
            d["inr"] = self.inr
        if self.outside_frame is not None:
            d["outside_frame"] = round(self.outside_frame, 4)
        if self.probability is not None:
            d["probability"] = round(self.probability, 6)
        if self.familiarity is not None:
            d["familiarity"] = dict(self.familiarity)
            if self.familiarity.get("unfamiliar"):
                d["note"] = CAUTION  # the score is still given: flagged, never hidden
        return d


@dataclass
class FrameScore:
    """One sampled video frame: its score (``None`` when it had no face and the policy drops it)."""

    frame: int
    time_s: float | None
    score: float | None
    faces: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "time_s": self.time_s,
            "score": None if self.score is None else round(self.score, 6),
            "faces": self.faces,
        }


@dataclass
class Prediction:
    """The result for one input: per-face results, and an overall score and label.

    ``score`` is the image score (``DetectOptions.image_score`` over its faces) or the video score (the
    mean of the frame scores). ``explained`` lists the indices of ``faces`` a report explains.
    """

    source: str
    kind: Literal["image", "video"]
    model: str
    model_source: str
    threshold: float
    threshold_source: Literal["validation", "default"]
    faces: list[FaceResult]
    score: float | None
    label: str | None
    frames: list[FrameScore] = field(default_factory=list)
    frames_sampled: int = 0
    frames_no_face: int = 0
    no_face_policy: str = ""
    explained: list[int] = field(default_factory=list)
    error: str | None = None
    #: calibrated P(fake) of an image's score (its highest-scoring face), for a run with a calibration;
    #: ``None`` for videos (the calibration is fitted on faces, a video score is a mean of frames)
    probability: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "model": self.model,
            "model_source": self.model_source,
            "score": None if self.score is None else round(self.score, 6),
            "label": self.label,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "faces": [f.to_dict() for f in self.faces],
        }
        if self.error:
            d["note"] = self.error
        if self.probability is not None:
            d["probability"] = round(self.probability, 6)
        if self.kind == "video":
            d.update(
                frames_sampled=self.frames_sampled,
                frames_no_face=self.frames_no_face,
                no_face_policy=self.no_face_policy,
                frames=[f.to_dict() for f in self.frames],
            )
        return d

    def report_data(self) -> dict[str, Any]:
        """Plain data for :func:`fakescope.explain.report.write_report`: :meth:`to_dict` plus the faces
        the report explains and the note on the input, if any."""
        return {**self.to_dict(), "explained": list(self.explained), "error": self.error}


def source_name(src: ImageInput) -> str:
    if isinstance(src, (str, os.PathLike)):
        return display_name(src)  # a non-UTF-8 file name shown with \xNN escapes, never unprintable
    if isinstance(src, np.ndarray):
        return f"<array {'x'.join(map(str, src.shape))}>"
    return f"<{type(src).__name__}>"
