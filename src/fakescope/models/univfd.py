"""UnivFD, the CLIP linear probe (Ojha, Li and Lee, "Towards Universal Fake Image Detectors that
Generalize Across Generative Models", CVPR 2023, §3.2 "Linear probing" and §4.1).

A frozen CLIP ViT-L/14 image encoder maps each image to its 768-d embedding, and one linear layer
classifies it: nothing else trains. ``univfd`` shares the frozen-embedding path of INFER's ``clip``
detector (``model.backbone``, ``auto`` = ``clip_vit_l14``; the embedding is computed once per crop and
cached, see :mod:`fakescope.models.features`), but where ``clip`` standardises the embedding and uses
INFER's 3-layer head, UnivFD feeds the raw embedding to a single ``Linear(D, 2)`` (the paper's one
output unit with a sigmoid; two logits under softmax are equivalent). With the offline ``lite0``
stand-in the embedding is Lite0's 1280-d pooled feature, and runs are named ``univfd[clip→lite0]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor, nn

from fakescope.models.detector import Detector, output_dict
from fakescope.models.registry import register_detector

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = ["UnivFdDetector"]


@register_detector("univfd")
class UnivFdDetector(Detector):
    family: ClassVar[str] = "baseline"
    description = "frozen CLIP ViT-L/14 embedding → one linear layer (UnivFD linear probe)"
    paper_ref = "Ojha et al. CVPR 2023 §3.2 'linear probing'"
    default_backbone: ClassVar[str | None] = "clip_vit_l14"
    default_freeze_backbone: ClassVar[bool] = True
    inputs = frozenset({"clip"})
    uses_image_embedding: ClassVar[bool] = True

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        self.backbone = self._build_backbone()
        if not self.freeze_backbone:
            # A backbone that trains cannot be served from a cache of its outputs.
            self.inputs = frozenset({"image"})
        self.classifier = nn.Linear(self.backbone.out_dim, 2)

    @property
    def display_name(self) -> str:
        if self.backbone_name != "clip_vit_l14":
            return f"{self.name}[clip→{self.backbone_name}]"
        return self.name

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        features = self.image_embedding(batch).float()
        return output_dict(self.classifier(features), features)
