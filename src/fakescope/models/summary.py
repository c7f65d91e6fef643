"""Parameter counts and FLOPs of registered detectors (AIRL (Parihar), §V-F, Table VI).

Detectors are built on PyTorch's ``meta`` device with ``pretrained=False``: the architecture is real
(EfficientNet-B4 from ``timm``, CLIP ViT-L/14 from its ``transformers`` config) but no weights are
downloaded or even allocated, so the whole table takes seconds. FLOPs come from
``torch.utils.flop_counter.FlopCounterMode`` for one image in eval mode; it counts a multiply-add as
2 FLOPs (halve them for the "MACs" that many papers call FLOPs) and counts matmuls and convolutions
only (no activations, norms or pooling).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from fakescope.models.config import ModelConfig
from fakescope.models.registry import build_detector, list_detectors
from fakescope.models.spec import InputSpec

if TYPE_CHECKING:
    from fakescope.models.detector import Detector

__all__ = ["DetectorSummary", "dummy_batch", "summarize_detector", "summarize_detectors", "format_table"]


@dataclass
class DetectorSummary:
    name: str
    family: str
    backbone: str
    inputs: str
    params: int
    trainable: int
    backbone_params: int
    flops: int
    image_size: int
    description: str
    paper_ref: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def dummy_batch(
    detector: Detector,
    spec: InputSpec,
    batch_size: int = 1,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """A batch of ``spec``'s shapes with every input the detector reads, computed from the image where it
    can be (no ``clip`` key: the image embedding is computed, so its cost is counted)."""
    size = spec.image_size
    batch: dict[str, Any] = {
        "image": torch.rand(batch_size, 3, size, size, device=device),
        "label": torch.zeros(batch_size, dtype=torch.long, device=device),
    }
    if "heatmaps" in detector.inputs:
        r = spec.heatmap_size
        batch["heatmaps"] = torch.randn(batch_size, spec.heatmap_count, r, r, device=device)
    return batch


def summarize_detector(model: ModelConfig, spec: InputSpec) -> DetectorSummary:
    """Build ``model.name`` (random weights, meta device) for ``spec``'s inputs and count its parameters
    and FLOPs."""
    model = model.model_copy(update={"pretrained": False})
    with torch.device("meta"):
        detector = build_detector(model, spec)
        detector.eval()
        batch = dummy_batch(detector, spec, device="meta")
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            detector(batch)
    params = sum(p.numel() for p in detector.parameters())
    backbone_params = sum(p.numel() for p in detector.backbone_parameters())
    # Trainable as the detector will train: a frozen backbone does not count.
    trainable = sum(p.numel() for p in detector.parameters() if p.requires_grad)
    backbone = detector.backbone.spec.name if detector.backbone is not None else "-"
    return DetectorSummary(
        name=detector.name,
        family=detector.family,
        backbone=backbone,
        inputs=",".join(sorted(detector.inputs)),
        params=params,
        trainable=trainable,
        backbone_params=backbone_params,
        flops=int(counter.get_total_flops()),
        image_size=spec.image_size,
        description=detector.description,
        paper_ref=detector.paper_ref,
    )


def summarize_detectors(
    base: ModelConfig | None = None,
    spec: InputSpec | None = None,
    names: list[str] | None = None,
    backbone: str | None = None,
) -> list[DetectorSummary]:
    """:func:`summarize_detector` for every registered detector (or ``names``), each built from ``base``
    (default: the default ``model`` section) with its name, and with its family's paper backbone unless
    ``backbone`` is given. ``spec`` (default :class:`InputSpec`'s 224 px) sizes every input, so
    detectors with size-bound parts (F3-Net's DCT filters) follow ``spec.image_size``."""
    spec = spec or InputSpec()
    rows = []
    for name in names or list_detectors():
        model = (base or ModelConfig()).model_copy(deep=True)
        model.name = name  # assignments are validated: a misspelt backbone fails here, by its field name
        model.backbone = backbone or "auto"
        rows.append(summarize_detector(model, spec))
    return rows


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def format_table(rows: list[DetectorSummary], markdown: bool = True) -> str:
    """A table of ``rows``: Markdown (for the docs) or aligned plain text."""
    header = ["detector", "family", "backbone", "inputs", "params", "trainable", "GFLOPs", "GMACs", "paper"]
    body = [
        [
            r.name,
            r.family,
            r.backbone,
            r.inputs,
            _millions(r.params),
            _millions(r.trainable),
            f"{r.flops / 1e9:.2f}",
            f"{r.flops / 2e9:.2f}",
            r.paper_ref,
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*row) for row in [header, *body])
