"""A face ready for scoring: its aligned crop and where it was found in the image or frame.

Detection and alignment (:mod:`fakescope.preprocess`) give :class:`~fakescope.preprocess.align.AlignedFace`
(the warped image, its matrix and landmarks); the detector object keeps what a result reports about the
face next to the crop it scores, and an input given as an aligned crop is a :class:`FaceCrop` with no
location.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FaceCrop"]


@dataclass
class FaceCrop:
    """A face ready for scoring: its aligned crop (``preprocess.align.size``) and where it was found
    (all ``None`` for an input given as an aligned crop)."""

    crop: np.ndarray
    box: list[float] | None = None
    landmarks: list[list[float]] | None = None
    detection_score: float | None = None
    outside_frame: float | None = None
