"""MesoNet baselines (Afchar et al., "MesoNet: a Compact Facial Video Forgery Detection Network",
WIFS 2018, §3.1 "Meso-4" and §3.2 "MesoInception-4", Fig. 4 and 5).

- ``meso4``: four conv blocks (8 3×3, 8 5×5, 16 5×5, 16 5×5 filters; ReLU, BatchNorm, max pooling 2, 2,
  2, 4), then dropout 0.5 → Dense 16 (LeakyReLU 0.1) → dropout 0.5 → the classifier.
- ``mesoinception4``: the first two conv blocks replaced by inception modules (Szegedy et al.) with
  1×1, 3×3, dilated 3×3 (rate 2) and dilated 3×3 (rate 3) branches, widths (1, 4, 4, 2) and (2, 4, 4, 2),
  each followed by BatchNorm and max pooling 2, as in the authors' code.

Both are small (~28k parameters) and trained from scratch on ``[0, 1]`` pixels (the paper's input
scaling). Choices the paper leaves open or that fakescope's contract fixes:

- **Input size.** The paper feeds 256×256 crops, so the last pooling gives 8×8×16 = 1024 features
  before the Dense layer. Other sizes go through an adaptive average pooling to 8×8 first (the
  identity at 256 px), so the architecture and parameter count do not depend on ``data.image_size``.
- **Output.** The paper's single sigmoid unit becomes two logits (the contract's ``[B, 2]``); a softmax
  over two logits is a sigmoid of their difference, so nothing is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from fakescope.models.detector import Detector, output_dict
from fakescope.models.registry import register_detector

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = ["Meso4Detector", "MesoInception4Detector", "InceptionLayer"]


def _conv_block(cin: int, cout: int, k: int, pool: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(cout),
        nn.MaxPool2d(pool),
    )


class InceptionLayer(nn.Module):
    """MesoInception's module: 1×1 (``a``), 1×1→3×3 (``b``), 1×1→3×3 dilated 2 (``c``) and 1×1→3×3
    dilated 3 (``d``) branches, ReLU after every conv, concatenated; then BatchNorm and max pooling 2."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()

        def branch(width: int, dilation: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, width, 1), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True),
            )  # fmt: skip

        self.b1 = nn.Sequential(nn.Conv2d(cin, a, 1), nn.ReLU(inplace=True))
        self.b2, self.b3, self.b4 = branch(b, 1), branch(c, 2), branch(d, 3)
        self.out_channels = a + b + c + d
        self.post = nn.Sequential(nn.BatchNorm2d(self.out_channels), nn.MaxPool2d(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.post(torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1))


class MesoFamily(Detector):
    family: ClassVar[str] = "baseline"
    inputs = frozenset({"image"})
    inception: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        if self.inception:
            first = InceptionLayer(3, 1, 4, 4, 2)
            second = InceptionLayer(first.out_channels, 2, 4, 4, 2)
            stem: list[nn.Module] = [first, second]
            cin = second.out_channels
        else:
            stem = [_conv_block(3, 8, 3, 2), _conv_block(8, 8, 5, 2)]
            cin = 8
        self.features = nn.Sequential(*stem, _conv_block(cin, 16, 5, 2), _conv_block(16, 16, 5, 4))
        self.pool = nn.AdaptiveAvgPool2d(8)
        self.dense = nn.Sequential(nn.Dropout(0.5), nn.Linear(16 * 8 * 8, 16), nn.LeakyReLU(0.1))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(16, 2))

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        x = self.features(self._get(batch, "image"))
        hidden = self.dense(self.pool(x).flatten(1))
        return output_dict(self.classifier(hidden), hidden)

    def gradcam_layer(self) -> nn.Module | None:
        return self.features[-1]

    @property
    def display_name(self) -> str:
        return self.name


@register_detector("meso4")
class Meso4Detector(MesoFamily):
    description = "Meso-4: four small conv blocks, Dense 16, from scratch (baseline)"
    paper_ref = "Afchar et al. WIFS 2018 §3.1 'Meso-4'"


@register_detector("mesoinception4")
class MesoInception4Detector(MesoFamily):
    description = "MesoInception-4: two inception modules + two conv blocks, Dense 16 (baseline)"
    paper_ref = "Afchar et al. WIFS 2018 §3.2 'MesoInception-4'"
    inception = True
