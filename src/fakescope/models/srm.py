"""SRM two-stream baseline (Luo et al., "Generalizing Face Forgery Detection with High-frequency
Features", CVPR 2021, §3.1 "multi-scale high-frequency feature extraction").

The image goes through two streams: the RGB crop, and its noise residuals from three fixed SRM
high-pass filters (Fridrich & Kodovsky's rich-model kernels, as chosen by Zhou et al. CVPR 2018 and
by Luo et al.): a 2nd-order, a 3rd-order ("KV", 5×5) and a 1st-order-like edge kernel, each summed over
the three colour channels and truncated to [-3, 3] (``Hardtanh``, Luo et al.'s code) on the image
normalised to [-1, 1]. The filters never train.

Choices: both streams are the configured image backbone (``model.backbone``; ``auto`` = ``xception``,
the paper's Xception entry flow), built twice, fine-tuned at ``train.backbone_lr_mult``; the residual
map is scaled to [0, 1] before the backbone (``(r / 3 + 1) / 2``), so the backbone's own
normalisation applies to it as to an image. The paper's cross-modality attention and multi-scale
high-frequency blocks are left out: this is the second-stream idea, fused late by concatenation into
one linear classifier (dropout 0.5 before it, as in the FaceForensics++ Xception head).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fakescope.models.detector import Detector, output_dict
from fakescope.models.registry import register_detector
from fakescope.models.streams import full_precision

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = ["SRM_KERNELS", "SrmFilter", "SrmDetector"]

#: The three SRM kernels of Luo et al.'s code (``SRMConv2d_simple``), before their normalisers.
SRM_KERNELS = (
    (
        [[0, 0, 0, 0, 0], [0, -1, 2, -1, 0], [0, 2, -4, 2, 0], [0, -1, 2, -1, 0], [0, 0, 0, 0, 0]],
        4.0,
    ),
    (
        [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
        12.0,
    ),
    (
        [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -2, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
        2.0,
    ),
)


class SrmFilter(nn.Module):
    """``[B,3,H,W]`` in [0, 1] → ``[B,3,H,W]`` SRM residuals in [-3, 3] (fixed, not trained)."""

    def __init__(self) -> None:
        super().__init__()
        k = torch.tensor([[kern] * 3 for kern, _ in SRM_KERNELS], dtype=torch.float32)
        k = k / torch.tensor([norm for _, norm in SRM_KERNELS]).view(3, 1, 1, 1)
        self.register_buffer("weight", k, persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        with full_precision(images.device):
            x = images.float() * 2.0 - 1.0
            return F.hardtanh(F.conv2d(x, self.weight.to(x.device), padding=2), -3.0, 3.0)


@register_detector("srm")
class SrmDetector(Detector):
    family: ClassVar[str] = "baseline"
    description = "RGB stream ⊕ SRM noise-residual stream, two backbones, late fusion (Luo et al.)"
    paper_ref = "Luo et al. CVPR 2021 §3.1 (SRM high-frequency stream)"
    default_backbone: ClassVar[str | None] = "xception"
    inputs = frozenset({"image"})

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        self.backbone = self._build_backbone()
        self.srm = SrmFilter()
        self.noise_backbone = self._build_backbone()
        dim = self.backbone.out_dim + self.noise_backbone.out_dim
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(dim, 2))

    @property
    def display_name(self) -> str:
        if self.backbone_name != "xception":
            return f"{self.name}[xception→{self.backbone_name}]"
        return self.name

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Both pretrained streams train at ``train.backbone_lr_mult`` ×; the head at the base rate."""
        return list(self.backbone.parameters()) + list(self.noise_backbone.parameters())

    def train(self, mode: bool = True) -> SrmDetector:
        super().train(mode)
        if (
            self.freeze_backbone
        ):  # model.freeze_backbone freezes both streams: keep their BatchNorm statistics
            self.noise_backbone.eval()
        return self

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        images = self._get(batch, "image")
        residual = (self.srm(images) / 3.0 + 1.0) / 2.0
        features = torch.cat([self.backbone(images), self.noise_backbone(residual.to(images.dtype))], dim=1)
        return output_dict(self.head(features), features)
