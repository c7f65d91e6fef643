"""Batches → scores: the forward pass that training-time validation, ``evaluate`` and ``detect`` share.

Every caller runs the detector in eval mode under ``torch.no_grad`` with the run's autocast setting
(``train.amp`` / ``train.amp_dtype``), so a crop gets the same P(fake) from each of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = ["Scores", "autocast_context", "collect_scores", "iter_predictions", "predict_batch", "to_device"]


def autocast_context(device: torch.device, enabled: bool, dtype_name: str = "bfloat16") -> Any:
    """Autocast on ``device`` when ``enabled`` (float16 only on CUDA; bfloat16 otherwise)."""
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if dtype_name == "float16" and device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move a batch dict's tensors to ``device``; bookkeeping fields (paths, ids) stay as they are."""
    return {
        k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()
    }


def predict_batch(
    detector: torch.nn.Module,
    batch: dict[str, Any],
    device: torch.device,
    amp: bool = False,
    amp_dtype: str = "bfloat16",
) -> dict[str, torch.Tensor]:
    """One batch through the detector in eval mode: its outputs detached on the CPU in float32."""
    was_training = detector.training
    detector.eval()
    try:
        with torch.no_grad(), autocast_context(device, amp, amp_dtype):
            out = detector(to_device(batch, device))
    finally:
        detector.train(was_training)
    return {k: v.detach().float().cpu() for k, v in out.items() if isinstance(v, torch.Tensor)}


def iter_predictions(
    detector: torch.nn.Module,
    loader: Iterable[dict[str, Any]],
    device: torch.device,
    amp: bool = False,
    amp_dtype: str = "bfloat16",
    progress: bool = False,
    desc: str = "predict",
) -> Iterator[tuple[dict[str, Any], dict[str, torch.Tensor]]]:
    """Yield ``(batch, outputs)`` per batch of ``loader`` (see :func:`predict_batch`)."""
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, unit="batch"):
        yield batch, predict_batch(detector, batch, device, amp, amp_dtype)


@dataclass
class Scores:
    """Per item, in loader order: the label, P(fake) and the video id; ``kept`` holds the detector
    outputs :func:`collect_scores` was asked to keep (``logits``, ``features``), one array per batch."""

    labels: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    kept: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def output(self, name: str) -> np.ndarray | None:
        """A kept output of every item, in loader order (``None`` when the detector gave none)."""
        parts = self.kept.get(name)
        return np.concatenate(parts) if parts else None


def collect_scores(
    detector: torch.nn.Module,
    loader: Iterable[dict[str, Any]],
    device: torch.device,
    amp: bool = False,
    amp_dtype: str = "bfloat16",
    *,
    progress: bool = False,
    desc: str = "predict",
    on_batch: Callable[[dict[str, Any], dict[str, torch.Tensor]], None] | None = None,
    keep: tuple[str, ...] = (),
) -> Scores:
    """The label, score and video of every item of ``loader`` (training's validation and
    ``evaluate`` both score through here); ``on_batch(batch, outputs)`` also sees each batch, to
    stream rows out or keep embeddings. ``keep`` names detector outputs (``logits``, ``features``)
    to keep as float32 arrays (``calibrate`` fits on them)."""
    out = Scores(kept={name: [] for name in keep})
    for batch, outputs in iter_predictions(detector, loader, device, amp, amp_dtype, progress, desc):
        out.labels.extend(batch["label"].tolist())
        out.scores.extend(outputs["prob"].tolist())
        out.videos.extend(batch["video"])
        for name in keep:
            if name in outputs:
                out.kept[name].append(outputs[name].numpy().astype(np.float32))
        if on_batch is not None:
            on_batch(batch, outputs)
    return out
