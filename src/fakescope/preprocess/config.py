"""The ``preprocess`` config section (docs/design.md, "Preprocessing"; INFER §3.1, AIRL §IV-B).

Every choice the papers leave open is a field here and is described in docs/preprocessing.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fakescope.utils.schema import StrictModel


class FrameSamplingConfig(StrictModel):
    policy: Literal["even", "every_k", "all", "per_label"] = Field(
        "even",
        description="even: `count` evenly spaced frames; every_k; all; per_label: INFER's real/fake counts",
    )
    count: int = Field(32, ge=1, description="frames per video for policy=even (AIRL trains on 10; eval 32)")
    every_k: int = Field(10, ge=1, description="stride for policy=every_k")
    real_count: int = Field(40, ge=1, description="frames per real video for policy=per_label (INFER)")
    fake_count: int = Field(10, ge=1, description="frames per fake video for policy=per_label (INFER)")
    seek: bool = Field(
        True,
        description="false: never seek (decode=legacy then decodes every frame from the start; the other "
        "decode strategies read the file from the start and skip what no sampled frame needs)",
    )
    decode: Literal["auto", "seek", "sequential", "legacy"] = Field(
        "auto",
        description="how sampled frames are found, all exact (docs/preprocessing.md, Decoding speed): "
        "sequential reads packets from the start and decodes only those a sampled frame needs; seek jumps "
        "to each needed keyframe; auto seeks only when that skips >= seek_min_gap frames; legacy: the "
        "seek-and-decode-forward path of earlier versions",
    )
    seek_min_gap: int = Field(
        300, ge=1, description="decode=auto: seek when the next needed keyframe is this many frames ahead"
    )
    drop_nonref: bool = Field(
        True,
        description="H.264: do not decode non-reference pictures that are not sampled (no other picture "
        "is predicted from them, so the sampled frames are unchanged); not used by decode=legacy",
    )
    prefetch: int = Field(
        2,
        ge=0,
        le=16,
        description="frames decoded ahead in a background thread while faces are detected (0: off)",
    )
    decode_threads: int = Field(0, ge=0, description="decoder threads per worker (0: FFmpeg's choice)")


class AlignConfig(StrictModel):
    method: Literal["similarity", "box"] = Field(
        "similarity",
        description="similarity: 5-landmark similarity transform onto the template; "
        "box: square crop around the detector box, no rotation",
    )
    size: int = Field(224, ge=16, description="side of the output crop in pixels")
    margin: float = Field(
        0.3, ge=0.0, le=2.0, description="extra context: the crop spans (1 + margin) x the template frame"
    )
    template: Literal["arcface"] = Field("arcface", description="5-point template (ArcFace 112 px, scaled)")
    border: Literal["constant", "replicate", "reflect"] = Field(
        "reflect",
        description="how crop pixels outside the frame are filled: reflect (default; measured: INR steps on "
        "re-aligned DFDC faces equal the training crops', black borders cost 60% more and put a hard edge "
        "into the DCT stream), replicate, or constant (black)",
    )
    interpolation: Literal["linear", "cubic", "area"] = Field(
        "linear", description="resampling used by the alignment warp"
    )


class PreprocessConfig(StrictModel):
    detector: Literal["retinaface", "mtcnn"] = Field(
        "retinaface", description="face detector: RetinaFace (default) or MTCNN (AIRL, confidence >= 0.95)"
    )
    min_confidence: float | None = Field(
        None, ge=0.0, le=1.0, description="null: the paper's value per detector (RetinaFace 0.9, MTCNN 0.95)"
    )
    nms_threshold: float = Field(0.4, ge=0.0, le=1.0, description="RetinaFace non-maximum suppression IoU")
    detect_max_side: int | None = Field(
        960, ge=64, description="detect on a copy shrunk to this long side (null: full resolution)"
    )
    mtcnn_min_face_size: int = Field(20, ge=8, description="MTCNN's smallest face, pixels of the shrunk copy")
    face_select: Literal["largest", "confident", "track"] = Field(
        "largest",
        description="which face to keep when a frame holds several: largest box, most confident, or tracked across frames",
    )
    no_face_policy: Literal["drop", "score_half"] = Field(
        "drop",
        description="frames with no face: drop them (counted), or keep a record so the frame scores 0.5 at video level",
    )
    crop_format: Literal["png", "jpg"] = Field("png", description="file format of saved crops")
    jpeg_quality: int = Field(95, ge=50, le=100, description="for crop_format=jpg")
    frames: FrameSamplingConfig = FrameSamplingConfig()
    align: AlignConfig = AlignConfig()
    workers: int = Field(1, ge=1, description="worker processes (one video at a time each)")
    threads_per_worker: int = Field(
        0, ge=0, description="torch/onnxruntime threads per worker (0: cores / workers)"
    )
