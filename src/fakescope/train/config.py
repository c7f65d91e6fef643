"""The ``train`` config section (DESIGN.md "AIRL" training; papers/AIRL.txt §III-G)."""

from __future__ import annotations

from pydantic import Field

from fakescope.utils.schema import StrictModel


class AugmentConfig(StrictModel):
    hflip_p: float = Field(0.5, ge=0, le=1)
    brightness: float = Field(0.2, ge=0)
    contrast: float = Field(0.2, ge=0)
    noise_std: float = Field(0.01, ge=0)
    noise_p: float = Field(0.2, ge=0, le=1)
    jpeg_quality_min: int = Field(70, ge=1, le=100)
    jpeg_quality_max: int = Field(100, ge=1, le=100)
    jpeg_p: float = Field(0.3, ge=0, le=1)


class TrainConfig(StrictModel):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=2)
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    backbone_lr_mult: float = Field(0.1, gt=0)
    restart_period: int = Field(10, ge=1, description="cosine warm-restart period T_0 in epochs")
    min_lr: float = Field(1e-6, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    early_stopping_patience: int = Field(10, ge=1)
    supcon_weight: float = Field(0.5, ge=0)
    supcon_temperature: float = Field(0.07, gt=0)
    amp: bool = False
    augment: AugmentConfig | None = AugmentConfig()
