"""The ``inr`` config section (DESIGN.md "INFER"; papers/INFER.txt §3.3-3.4, supplementary A.1-A.4)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fakescope.utils.schema import StrictModel


class InrConfig(StrictModel):
    resolution: int = Field(224, ge=8, description="side of the square image the INR is fitted to")
    activation: Literal["sine", "gauss", "wire"] = "sine"
    width: int = Field(128, ge=1)
    depth: int = Field(3, ge=1, description="number of activated layers (first + hidden); one heatmap each")
    omega0: float = Field(30.0, gt=0, description="SIREN frequency of every sine layer")
    gauss_scale: float = Field(10.0, gt=0)
    wire_omega: float = Field(20.0, gt=0)
    wire_scale: float = Field(10.0, gt=0)
    lr: float = Field(1e-4, gt=0)
    target_psnr: float = Field(35.0, gt=0)
    max_steps: int = Field(2000, ge=1)
    init_seed: int = 0
    init_file: str | None = Field(None, description="safetensors file with a shared initialisation")
    heatmap_mode: Literal["pca", "l2norm"] = "pca"
    cache_dir: str = "cache/inr"
