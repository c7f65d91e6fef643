"""SPSL, spatial-phase shallow learning (Liu et al., "Spatial-Phase Shallow Learning: Rethinking Face
Forgery Detection in Frequency Domain", CVPR 2021, §3.2-3.3).

The phase spectrum carries the up-sampling artefacts that face forgeries leave, and a *shallow*
network (few layers, small receptive field) learns them better than a deep one. The input is the RGB
crop plus one channel: the image rebuilt from its phase alone, ``real(IFFT2(exp(i · angle(FFT2(gray)))))``
(amplitude set to 1), standardised per image; the four channels go through a shallow CNN (the paper
cuts Xception down to its first blocks; here the 3×3 stride-2 conv-BN-ReLU blocks of INFER's Table 2
"shallow CNN", widths ``model.shallow_channels``, then ``model.shallow_embed_dim`` features and a
linear classifier). Choices: the phase of the BT.601 grey image (the paper does not say which
channel; DeepfakeBench's SPSL also uses grey), and the shallow CNN in place of a truncated Xception so
that the network is the same shallow family the project's other frequency ablations use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from fakescope.models.backbones.timm_cnn import standardize_per_image
from fakescope.models.dct import rgb_to_gray_bt601
from fakescope.models.detector import Detector, output_dict
from fakescope.models.registry import register_detector
from fakescope.models.streams import ShallowCnn, full_precision

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = ["SpslDetector", "phase_only_image"]


def phase_only_image(images: Tensor) -> Tensor:
    """``[B,1,H,W]``: the BT.601 grey image rebuilt from its 2-D Fourier phase alone (unit amplitude),
    standardised per image. Computed in float32 whatever the autocast state."""
    with full_precision(images.device):
        spec = torch.fft.fft2(rgb_to_gray_bt601(images.float()))
        phase_only = torch.fft.ifft2(spec / spec.abs().clamp_min(1e-8)).real
        return standardize_per_image(phase_only)


@register_detector("spsl")
class SpslDetector(Detector):
    family: ClassVar[str] = "baseline"
    description = "RGB ⊕ phase-only image → shallow CNN (SPSL)"
    paper_ref = "Liu et al. CVPR 2021 §3.2-3.3 (SPSL)"
    inputs = frozenset({"image"})

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        m = config
        self.cnn = ShallowCnn(4, m.shallow_channels, m.shallow_embed_dim)
        self.classifier = nn.Linear(self.cnn.out_dim, 2)

    @property
    def display_name(self) -> str:
        return self.name

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        images = self._get(batch, "image")
        x = torch.cat([images * 2.0 - 1.0, phase_only_image(images).to(images.dtype)], dim=1)
        features = self.cnn(x)
        return output_dict(self.classifier(features), features)

    def gradcam_layer(self) -> nn.Module | None:
        return self.cnn.last_conv()
