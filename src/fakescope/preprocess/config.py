"""The ``preprocess`` config section (DESIGN.md, "Preprocessing")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fakescope.utils.schema import StrictModel


class FrameSamplingConfig(StrictModel):
    policy: Literal["even", "every_k", "all", "per_label"] = "even"
    count: int = Field(32, ge=1, description="frames per video for policy=even")
    every_k: int = Field(10, ge=1, description="stride for policy=every_k")
    real_count: int = Field(40, ge=1, description="frames per real video for policy=per_label (INFER)")
    fake_count: int = Field(10, ge=1, description="frames per fake video for policy=per_label (INFER)")


class AlignConfig(StrictModel):
    size: int = Field(224, ge=16)
    margin: float = Field(0.3, ge=0.0, le=2.0)
    template: Literal["arcface"] = "arcface"


class PreprocessConfig(StrictModel):
    detector: Literal["retinaface", "mtcnn"] = "retinaface"
    min_confidence: float = Field(0.9, ge=0.0, le=1.0)
    face_select: Literal["largest", "confident", "track"] = "largest"
    no_face_policy: Literal["drop", "score_half"] = "drop"
    frames: FrameSamplingConfig = FrameSamplingConfig()
    align: AlignConfig = AlignConfig()
    workers: int = Field(1, ge=1)
