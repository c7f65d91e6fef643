"""The INFER family (INFER §3.2, §3.5 and the Table 2 ablations of §4.2; anonymous NeurIPS-format
submission).

- ``infer``: frozen CLIP ViT-L/14 embedding ⊕ INR-heatmap encoder → 3-layer head (hidden 256), CE.
- ``clip``: the CLIP embedding alone → the same head.
- ``clip_fft``: CLIP ⊕ a shallow CNN on the log-magnitude FFT spectrum.
- ``clip_rgb_fft``: CLIP ⊕ shallow CNNs on the RGB pixels and on the FFT spectrum.
- ``heatmaps``: the heatmap encoder alone (not in the paper: what the INR modality gives by itself).

The image-embedding backbone is ``model.backbone`` (``auto`` = ``clip_vit_l14``); ``lite0`` is a real
pretrained CPU stand-in whose 1280-d pooled features take CLIP's place (runs using it say so in their
name, e.g. ``infer[clip→lite0]``). The frozen embedding is standardised per sample before fusion, so
that its scale matches the LayerNorm-ed heatmap embedding (the paper does not say how it scales it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from fakescope.models.detector import Detector, output_dict
from fakescope.models.registry import register_detector
from fakescope.models.streams import FftStream, HeatmapEncoder, RgbStream

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = [
    "InferFamily",
    "InferDetector",
    "ClipDetector",
    "ClipFftDetector",
    "ClipRgbFftDetector",
    "HeatmapsDetector",
    "mlp_head",
]


def mlp_head(in_dim: int, hidden: int, layers: int, dropout: float = 0.0, out_dim: int = 2) -> nn.Sequential:
    """``layers`` fully connected layers with ReLU between them (INFER's head: 3 layers, hidden 256)."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.ReLU(inplace=True)]
        if dropout > 0:
            mods.append(nn.Dropout(dropout))
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def _standardise(x: Tensor) -> Tensor:
    return (x - x.mean(dim=1, keepdim=True)) / x.std(dim=1, keepdim=True).clamp_min(1e-6)


class InferFamily(Detector):
    """Concatenate the enabled branches' features, then classify with INFER's FC head (§3.5).
    ``features`` is that concatenation: the fused representation that Fig. 2 visualises."""

    family: ClassVar[str] = "INFER"
    default_backbone: ClassVar[str | None] = "clip_vit_l14"
    default_freeze_backbone: ClassVar[bool] = True
    uses_image_embedding: ClassVar[bool] = True
    use_heatmaps: ClassVar[bool] = False
    use_fft: ClassVar[bool] = False
    use_rgb: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        m = config
        dim = 0
        if self.uses_image_embedding:
            self.backbone = self._build_backbone()
            dim += self.backbone.out_dim
        if self.use_heatmaps:
            maps = input_spec.heatmap_count  # one input channel per INR heatmap
            self.heatmap_encoder = HeatmapEncoder(
                maps, m.heatmap_channels, m.heatmap_stride, m.heatmap_embed_dim, m.heatmap_mode
            )
            dim += self.heatmap_encoder.out_dim
        if self.use_rgb:
            self.rgb_stream = RgbStream(m.shallow_channels, m.shallow_embed_dim)
            dim += self.rgb_stream.out_dim
        if self.use_fft:
            self.fft_stream = FftStream(m.shallow_channels, m.shallow_embed_dim, m.fft_input)
            dim += self.fft_stream.out_dim
        if self.uses_image_embedding and not self.freeze_backbone:
            # A backbone that trains cannot be served from a cache of its outputs.
            self.inputs = (self.inputs - {"clip"}) | {"image"}
        self.feature_dim = dim
        self.head = mlp_head(dim, m.head_hidden, m.head_layers, m.head_dropout)

    @property
    def display_name(self) -> str:
        """The detector name, plus the stand-in when the image backbone is not the paper's CLIP."""
        if self.uses_image_embedding and self.backbone_name != "clip_vit_l14":
            return f"{self.name}[clip→{self.backbone_name}]"
        return self.name

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        parts = []
        if self.uses_image_embedding:
            parts.append(_standardise(self.image_embedding(batch).float()))
        if self.use_heatmaps:
            parts.append(self.heatmap_encoder(self._get(batch, "heatmaps")))
        if self.use_rgb:
            parts.append(self.rgb_stream(self._get(batch, "image")))
        if self.use_fft:
            parts.append(self.fft_stream(self._get(batch, "image")))
        features = torch.cat(parts, dim=1)
        return output_dict(self.head(features), features)

    def gradcam_layer(self) -> nn.Module | None:
        if self.uses_image_embedding and self.backbone is not None:
            return self.backbone.gradcam_layer()
        if self.use_heatmaps:
            # Maps on the heatmap grid: where in the INR heatmaps the evidence sits.
            return self.heatmap_encoder.last_conv()
        return None


@register_detector("infer")
class InferDetector(InferFamily):
    description = "CLIP ⊕ INR-heatmap encoder → 3-FC head (INFER)"
    paper_ref = "INFER §3.5, Fig. 1"
    inputs = frozenset({"clip", "heatmaps"})
    use_heatmaps = True


@register_detector("clip")
class ClipDetector(InferFamily):
    description = "frozen CLIP embedding → 3-FC head"
    paper_ref = "INFER Table 2 'CLIP'"
    inputs = frozenset({"clip"})


@register_detector("clip_fft")
class ClipFftDetector(InferFamily):
    description = "CLIP ⊕ shallow CNN on the log-|FFT| spectrum"
    paper_ref = "INFER Table 2 'FFT'"
    inputs = frozenset({"clip", "image"})
    use_fft = True


@register_detector("clip_rgb_fft")
class ClipRgbFftDetector(InferFamily):
    description = "CLIP ⊕ shallow RGB CNN ⊕ shallow FFT CNN"
    paper_ref = "INFER Table 2 'RGB+FFT'"
    inputs = frozenset({"clip", "image"})
    use_fft = True
    use_rgb = True


@register_detector("heatmaps")
class HeatmapsDetector(InferFamily):
    description = "INR-heatmap encoder alone → 3-FC head (not in the paper)"
    paper_ref = "INFER §3.5 encoder, no CLIP"
    inputs = frozenset({"heatmaps"})
    default_backbone = None
    uses_image_embedding = False
    use_heatmaps = True
