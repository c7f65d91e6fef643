"""The AIRL family (AIRL (Parihar), §III and the Table III ablations of §V-C).

- ``airl``: EfficientNet-B4 RGB stream (1792-d) ⊕ block-DCT frequency stream (256-d), late fusion
  (Linear 2048→512 → BatchNorm → ReLU → Dropout 0.3), classifier 512→2 and projection 512→256→128
  (L2-normalised), trained with CE + 0.5·SupCon.
- ``airl_nocon``: the same late fusion, CE only (Table III "Both (Late Fusion)").
- ``airl_early``: the high-pass DCT map as a 4th input channel of the RGB backbone (Table III "Early"),
  standardised per image and read by its own stem filter, trained at the head's learning rate (see
  :class:`~fakescope.models.backbones.TimmBackbone`).
- ``airl_rgb`` / ``airl_freq``: one stream alone (Table III "RGB Only" / "Frequency Only").

Every ablation keeps the fusion block and classifier, so they differ from ``airl`` only in what the
table says they remove.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fakescope.models.detector import Detector, output_dict
from fakescope.models.registry import register_detector
from fakescope.models.streams import DctStream, dct_frequency_map

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = [
    "AirlFamily",
    "AirlDetector",
    "AirlNoConDetector",
    "AirlEarlyDetector",
    "AirlRgbDetector",
    "AirlFreqDetector",
]


class AirlFamily(Detector):
    family: ClassVar[str] = "AIRL"
    default_backbone: ClassVar[str | None] = "efficientnet_b4"
    default_freeze_backbone: ClassVar[bool] = False
    inputs = frozenset({"image"})
    use_rgb: ClassVar[bool] = True
    use_freq: ClassVar[bool] = True
    early_fusion: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        m = config
        dim = 0
        self.dct_stream: DctStream | None = None
        if self.use_freq:
            self.dct_stream = DctStream(
                m.dct_cutoff,
                m.dct_block,
                m.dct_log_magnitude,
                m.freq_channels,
                m.freq_embed_dim,
                m.freq_dropout,
                m.dct_input_scale,
            )
            dim += self.dct_stream.out_dim
        if self.use_rgb:
            self.backbone = self._build_backbone(in_chans=4 if self.early_fusion else 3)
            dim += self.backbone.out_dim
        self.feature_in_dim = dim
        self.fusion = nn.Sequential(
            nn.Linear(dim, m.fusion_dim),
            nn.BatchNorm1d(m.fusion_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(m.fusion_dropout),
        )
        self.classifier = nn.Linear(m.fusion_dim, 2)
        self.projection: nn.Module | None = None
        if self.uses_supcon:
            self.projection = nn.Sequential(
                nn.Linear(m.fusion_dim, m.proj_hidden),
                nn.ReLU(inplace=True),
                nn.Linear(m.proj_hidden, m.proj_dim),
            )

    @property
    def display_name(self) -> str:
        if self.use_rgb and self.backbone_name != "efficientnet_b4":
            return f"{self.name}[b4→{self.backbone_name}]"
        return self.name

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        images = self._get(batch, "image")
        parts = []
        if self.early_fusion:
            parts.append(self.backbone(images, extra=self.frequency_map(images)))
        else:
            if self.use_rgb:
                parts.append(self.backbone(images))
            if self.use_freq:
                parts.append(self.dct_stream(images))
        joint = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        fused = self.fusion(joint)
        embedding = F.normalize(self.projection(fused), dim=1) if self.projection is not None else None
        return output_dict(self.classifier(fused), fused, embedding)

    def frequency_map(self, images: Tensor) -> Tensor:
        """The ``[B,1,H,W]`` high-pass block-DCT map of the batch (the frequency stream's input)."""
        if self.dct_stream is not None:
            return self.dct_stream.frequency_map(images)
        m = self.config
        return dct_frequency_map(images, m.dct_cutoff, m.dct_log_magnitude, m.dct_block, m.dct_input_scale)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The pretrained backbone's parameters, without the early-fusion stem filter that reads the DCT
        channel: that one is new, so :meth:`Detector.param_groups` trains it at the head's rate
        (``train.lr``), not at ``train.backbone_lr_mult`` × (AIRL §III-C trains the new
        parts from scratch at the base rate)."""
        params = super().backbone_parameters()
        extra = getattr(self.backbone, "extra_input_parameters", None)
        skip = {id(p) for p in extra()} if extra is not None else set()
        return [p for p in params if id(p) not in skip]

    def gradcam_layer(self) -> nn.Module | None:
        if self.backbone is not None:
            return self.backbone.gradcam_layer()
        return self.dct_stream.last_conv() if self.dct_stream is not None else None


@register_detector("airl")
class AirlDetector(AirlFamily):
    description = "EfficientNet-B4 ⊕ block-DCT stream, late fusion, CE + 0.5·SupCon (AIRL)"
    paper_ref = "AIRL §III, Fig. 1; Table III 'Late + Contrastive'"
    uses_supcon = True


@register_detector("airl_nocon")
class AirlNoConDetector(AirlFamily):
    description = "late fusion, CE only"
    paper_ref = "AIRL Table III 'Both (Late Fusion)'"


@register_detector("airl_early")
class AirlEarlyDetector(AirlFamily):
    description = "DCT map as a 4th input channel of EfficientNet-B4, CE only"
    paper_ref = "AIRL Table III 'Both (Early Fusion)'"
    use_freq = False
    early_fusion = True


@register_detector("airl_rgb")
class AirlRgbDetector(AirlFamily):
    description = "EfficientNet-B4 stream alone, CE only"
    paper_ref = "AIRL Table III 'RGB Only'"
    use_freq = False


@register_detector("airl_freq")
class AirlFreqDetector(AirlFamily):
    description = "block-DCT stream alone, CE only"
    paper_ref = "AIRL Table III 'Frequency Only'"
    use_rgb = False
    default_backbone = None
