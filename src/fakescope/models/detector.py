"""The detector contract shared by every registered model (docs/CONTRACTS.md "Batches and detectors").

A detector takes a batch dict (``image`` ``[B,3,S,S]`` in ``[0,1]``, optionally ``heatmaps`` and a cached
``clip`` embedding) and returns ``{"logits": [B,2], "prob": [B], "features": [B,D]}`` plus
``"embedding": [B,128]`` (L2-normalised) when it trains with SupCon (``uses_supcon``). The loss is
training's: :func:`fakescope.train.losses.detector_loss` (AIRL (Parihar), Eq. 7; INFER trains with
cross-entropy only, §3.5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from fakescope.errors import InputError
from fakescope.models.backbones.build import build_backbone
from fakescope.models.backbones.specs import ImageBackbone

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = ["Detector", "output_dict"]


def output_dict(logits: Tensor, features: Tensor, embedding: Tensor | None = None) -> dict[str, Tensor]:
    out = {"logits": logits, "prob": torch.softmax(logits.float(), dim=1)[:, 1], "features": features}
    if embedding is not None:
        out["embedding"] = embedding
    return out


class Detector(nn.Module):
    """Base class. Subclasses set ``family``, ``description``, ``inputs``, ``default_backbone`` and
    ``uses_supcon``, build their parts in ``__init__`` from ``config`` (their ``ModelConfig``) and
    ``input_spec`` (the batch shapes, :class:`~fakescope.models.spec.InputSpec`) alone, and implement
    ``forward``."""

    name: ClassVar[str] = "detector"
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    paper_ref: ClassVar[str] = ""
    #: Batch keys the detector reads (``"clip"`` may stand in for ``"image"``, see ``uses_image_embedding``).
    inputs: frozenset[str] = frozenset({"image"})
    default_backbone: ClassVar[str | None] = None
    default_freeze_backbone: ClassVar[bool] = False
    uses_supcon: ClassVar[bool] = False
    #: True when a frozen image embedding is one of the inputs: ``batch["clip"]`` replaces the backbone.
    uses_image_embedding: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__()
        self.config = config
        self.input_spec = input_spec
        self.backbone: ImageBackbone | None = None
        self.freeze_backbone = False

    # ----------------------------------------------------------------------------- building helpers

    @property
    def backbone_name(self) -> str:
        name = self.config.backbone
        return self.default_backbone if name == "auto" and self.default_backbone else name

    def _build_backbone(self, in_chans: int = 3) -> ImageBackbone:
        m = self.config
        backbone = build_backbone(
            self.backbone_name, m.pretrained, m.weights_path, m.hf_cache_dir, in_chans, m.early_fusion_init
        )
        freeze = self.default_freeze_backbone if m.freeze_backbone is None else m.freeze_backbone
        self.freeze_backbone = freeze
        if freeze:
            backbone.requires_grad_(False)
            backbone.eval()
        return backbone

    # ----------------------------------------------------------------------------- contract

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters()) if self.backbone is not None else []

    def param_groups(self, base_lr: float, backbone_lr_mult: float) -> list[dict[str, Any]]:
        """Trainable parameters: the pretrained backbone at ``backbone_lr_mult`` × ``base_lr`` (training
        passes ``train.backbone_lr_mult``; AIRL §III-C, "differential learning rates"), everything
        trained from scratch at ``base_lr``. Frozen parameters are left out."""
        backbone_ids = {id(p) for p in self.backbone_parameters()}
        pretrained = self.backbone is not None and self.backbone.pretrained
        bb = [p for p in self.parameters() if id(p) in backbone_ids and p.requires_grad]
        rest = [p for p in self.parameters() if id(p) not in backbone_ids and p.requires_grad]
        groups = []
        if bb:
            mult = backbone_lr_mult if pretrained else 1.0
            groups.append({"params": bb, "lr": base_lr * mult, "name": "backbone"})
        if rest:
            groups.append({"params": rest, "lr": base_lr, "name": "head"})
        return groups

    def gradcam_layer(self) -> nn.Module | None:
        return self.backbone.gradcam_layer() if self.backbone is not None else None

    def train(self, mode: bool = True) -> Detector:
        super().train(mode)
        # A frozen backbone keeps its BatchNorm statistics (and no dropout) while the rest trains.
        if self.backbone is not None and self.freeze_backbone:
            self.backbone.eval()
        return self

    # ----------------------------------------------------------------------------- inputs

    def image_embedding(self, batch: dict[str, Any]) -> Tensor:
        """The image embedding: ``batch["clip"]`` when the batch carries it and the backbone is frozen (a
        cache of this backbone's outputs), else the backbone run on ``batch["image"]``."""
        assert self.backbone is not None
        cached = batch.get("clip") if self.freeze_backbone else None
        if cached is not None:
            if cached.dim() != 2 or cached.shape[1] != self.backbone.out_dim:
                raise InputError(
                    f"batch['clip'] has shape {tuple(cached.shape)}, but backbone "
                    f"{self.backbone.spec.name} gives [B,{self.backbone.out_dim}] embeddings"
                )
            return cached.to(self._device_dtype())
        return self.backbone(self._get(batch, "image"))

    def _get(self, batch: dict[str, Any], key: str) -> Tensor:
        value = batch.get(key)
        if value is None:
            raise InputError(f"detector {self.name} needs batch[{key!r}] (its inputs: {sorted(self.inputs)})")
        return value.to(self._device_dtype())

    def _device_dtype(self) -> torch.device:
        return next(self.parameters()).device
