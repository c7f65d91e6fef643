"""Settings of the explanations (Grad-CAM overlays, INR heatmap figures, DCT residual maps).

The papers show these figures (INFER Fig. 3 and Fig. 12, an anonymous NeurIPS-format submission;
AIRL (Parihar), §VI-A) but leave
their rendering open; every such choice is a field here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fakescope.utils.schema import StrictModel


class ExplainConfig(StrictModel):
    gradcam: bool = Field(True, description="compute Grad-CAM on the detector's gradcam_layer()")
    cam_alpha: float = Field(0.45, ge=0, le=1, description="opacity of the Grad-CAM colour map over the crop")
    cam_colormap: str = Field("jet", description="matplotlib colormap of Grad-CAM overlays")
    heatmap_colormap: str = Field("viridis", description="matplotlib colormap of INR heatmaps")
    heatmap_clip_percentile: float = Field(
        1.0, ge=0, lt=50, description="INR heatmaps are shown between this percentile and 100 minus it"
    )
    dct_cutoff: int | None = Field(
        None, ge=1, le=8, description="DCT high-pass cutoff c for residual maps; None = the model's own"
    )
    dct_kind: Literal["spatial", "coefficients"] = Field(
        "spatial",
        description="spatial: the kept high-frequency coefficients transformed back to pixels; "
        "coefficients: the block-coefficient map the stream takes as input",
    )
    dct_colormap: str = Field("magma", description="matplotlib colormap of DCT residual maps")
    dct_display: Literal["log_abs", "abs"] = Field(
        "abs", description="residual maps show |value| (default) or log(1+|value|), between percentiles"
    )
    image_format: Literal["png", "jpg"] = Field("png", description="format of the images next to a report")
