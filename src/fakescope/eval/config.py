"""The ``eval`` config section (DESIGN.md "Data, evaluation, robustness")."""

from __future__ import annotations

from pydantic import Field

from fakescope.utils.schema import StrictModel


class EvalConfig(StrictModel):
    frames_per_video: int = Field(32, ge=1)
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples for the AUC 95% interval")
    batch_size: int = Field(64, ge=1)
