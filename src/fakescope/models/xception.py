"""Xception, the FaceForensics++ baseline (Rössler et al., "FaceForensics++: Learning to Detect
Manipulated Facial Images", ICCV 2019, §5 "Forgery detection" and supplementary "Xception").

ImageNet-pretrained Xception (Chollet, CVPR 2017; ``model.backbone``, ``auto`` = ``xception``: timm's
``legacy_xception``, the port of the Keras weights the paper used) with its 1000-class layer replaced
by one linear layer to two classes, the whole network fine-tuned. Offline, ``pretrained: true`` stops
with the same one-line error as EfficientNet-B4 (``model.weights_path`` takes a local timm state
dict); the CPU recipe uses the real pretrained ``lite0`` instead (``xception[xception→lite0]``).
Choice: dropout 0.5 before the classifier (the paper's code replaces ``last_linear`` with
``Dropout(0.5)`` + ``Linear``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor, nn

from fakescope.models.detector import Detector, output_dict
from fakescope.models.registry import register_detector

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = ["XceptionDetector"]


@register_detector("xception")
class XceptionDetector(Detector):
    family: ClassVar[str] = "baseline"
    description = "ImageNet Xception fine-tuned, linear classifier (FaceForensics++ baseline)"
    paper_ref = "Rössler et al. ICCV 2019 §5 (Xception)"
    default_backbone: ClassVar[str | None] = "xception"
    inputs = frozenset({"image"})

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        self.backbone = self._build_backbone()
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(self.backbone.out_dim, 2))

    @property
    def display_name(self) -> str:
        if self.backbone_name != "xception":
            return f"{self.name}[xception→{self.backbone_name}]"
        return self.name

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        features = self.backbone(self._get(batch, "image"))
        return output_dict(self.head(features), features)
