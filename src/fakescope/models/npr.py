"""NPR baseline (Tan et al., "Rethinking the Up-Sampling Operations in CNN-based Generative Network for
Generalizable Deepfake Detection", CVPR 2024, §3 "Neighboring Pixel Relationships" and §4.1).

An up-sampling layer (nearest, bilinear, transposed convolution) makes each output pixel a function of
few input pixels, so the pixels of a local 2×2 patch of a generated image are more alike than a
camera's. NPR exposes that: the image minus its own nearest-neighbour down-sampling by 2 up-sampled back,

    NPR(x) = x - up(down(x)),   down = keep each 2×2 block's top-left pixel,   up = repeat it 2×2,

which is zero wherever a 2×2 block is constant and otherwise holds every pixel's difference from its
block's anchor (§3: the relation of each pixel to its neighbours within the up-sampling window). The
residual is fed to a small ResNet trained from scratch.

Followed from the paper and the authors' released code: the network is ResNet-50 (He et al., CVPR
2016) cut after its second stage, with a 3×3 stride-2 first convolution in place of the 7×7 one:
conv 3×3/2 (64) → BN → ReLU → max-pool 3/2 → stage 1 (three bottlenecks, 256 channels) → stage 2 (four
bottlenecks, stride 2, 512 channels) → global average pool → linear (1.44M parameters, stages 1-2
weight for weight those of ResNet-50); the residual is scaled by 2/3 before the first convolution; no
pretrained weights. Training setup, from the authors' released training command and code (the text
of §4.1 was not at hand to check against): Adam (β 0.9, 0.999), lr 2e-4 decayed ×0.8 every 10
epochs, batch 32, 50 epochs (early stop after 15 without improvement), 224 px random crops of 256 px
images, horizontal flips only, trained on ProGAN images of four classes (configs/npr.yaml).

Choices the paper leaves open or that fakescope's contract fixes:

- **Scale.** The authors' images are ImageNet-normalised before NPR; fakescope's batches are ``[0, 1]``.
  The mean cancels in a difference, so the residual is divided by ImageNet's per-channel std, then
  scaled by 2/3: the first convolution sees the values it sees in the authors' code.
- **Odd sizes.** The anchor image is repeated 2×2 and cropped back to the input size, so an odd row or
  column compares with its own anchor (the authors' code needs even sizes).
- **Output.** The paper's single logit (BCE) becomes the contract's two logits (cross-entropy); the
  512-d pooled vector is ``features``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

from fakescope.models.detector import Detector, output_dict
from fakescope.models.registry import register_detector

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = ["npr_residual", "NprDetector"]

#: ImageNet's per-channel std: the authors' inputs are ImageNet-normalised before NPR.
_IMAGENET_STD = (0.229, 0.224, 0.225)


def npr_residual(images: Tensor) -> Tensor:
    """``[B,C,H,W]`` → ``[B,C,H,W]``: each pixel minus the top-left pixel of its 2×2 block (the image
    minus its nearest-neighbour down- then up-sampling by 2; Tan et al. CVPR 2024 §3)."""
    h, w = images.shape[-2:]
    anchors = images[..., ::2, ::2]
    up = anchors.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :h, :w]
    return images - up


def _stage(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """A ResNet-50 stage of ``blocks`` bottlenecks (torchvision's), the first one down-sampling."""
    out = planes * Bottleneck.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
        )
    layers = [Bottleneck(inplanes, planes, stride, downsample)]
    layers += [Bottleneck(out, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


@register_detector("npr")
class NprDetector(Detector):
    family: ClassVar[str] = "baseline"
    description = "NPR: image minus its 2× nearest down/up-sampling → ResNet-50 stages 1-2, from scratch"
    paper_ref = "Tan et al. CVPR 2024 §3 (Neighboring Pixel Relationships)"
    inputs = frozenset({"image"})

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        self.register_buffer(
            "scale", (2.0 / 3.0) / torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False
        )
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.layer1 = _stage(64, 64, 3, 1)
        self.layer2 = _stage(256, 128, 4, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(128 * Bottleneck.expansion, 2)
        for m in self.modules():  # ResNet's initialisation (He et al.; the authors' code)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        images = self._get(batch, "image")
        x = npr_residual(images) * self.scale.to(images.dtype)
        features = self.pool(self.layer2(self.layer1(self.stem(x)))).flatten(1)
        return output_dict(self.classifier(features), features)

    def gradcam_layer(self) -> nn.Module | None:
        return self.layer2

    @property
    def display_name(self) -> str:
        return self.name
