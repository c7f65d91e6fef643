"""Detector losses: cross-entropy and the supervised contrastive loss (AIRL (Parihar), §III-E/F, Eq. 6-7;
Khosla et al., NeurIPS 2020, ``L^sup_out``). Every fake is one class, whatever made it (AIRL §III-E)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ce_loss", "supcon_loss", "detection_loss", "detector_loss"]


def ce_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of ``[B,2]`` logits against ``0 = real`` / ``1 = fake`` labels."""
    return F.cross_entropy(logits.float(), labels.long())


def supcon_loss(embeddings: Tensor, labels: Tensor, temperature: float = 0.07) -> Tensor:
    """Supervised contrastive loss of L2-normalised ``[B,D]`` embeddings (AIRL Eq. 6).

    For anchor ``i`` with positives ``P(i)`` (same label, ``i`` itself excluded), the loss is
    ``-1/|P(i)| Σ_{p∈P(i)} log( exp(z_i·z_p/τ) / Σ_{k≠i} exp(z_i·z_k/τ) )``. As in Khosla et al.'s
    reference code it is averaged over the anchors that have at least one positive (Eq. 6 writes a sum;
    the mean keeps λ independent of the batch size). A batch where no anchor has a positive gives 0,
    connected to the graph so that ``backward`` still works.
    """
    if embeddings.dim() != 2 or embeddings.shape[0] != labels.shape[0]:
        raise ValueError(f"supcon_loss: embeddings {tuple(embeddings.shape)} vs labels {tuple(labels.shape)}")
    z = embeddings.float()
    n = z.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    # Excluding self from the denominator: -inf on the diagonal drops it from the log-sum-exp.
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    labels = labels.view(-1)
    positives = (labels.unsqueeze(0) == labels.unsqueeze(1)) & ~self_mask
    n_pos = positives.sum(dim=1)
    has_pos = n_pos > 0
    if not has_pos.any():
        return z.sum() * 0.0
    pos_log_prob = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    per_anchor = -pos_log_prob[has_pos] / n_pos[has_pos]
    return per_anchor.mean()


def detection_loss(
    logits: Tensor,
    labels: Tensor,
    embeddings: Tensor | None = None,
    supcon_weight: float = 0.5,
    temperature: float = 0.07,
) -> dict[str, Tensor]:
    """``{"total", "ce"}`` and, when ``embeddings`` are given, ``"supcon"`` with
    ``total = CE + λ·SupCon`` (AIRL Eq. 7, λ = ``train.supcon_weight`` = 0.5)."""
    ce = ce_loss(logits, labels)
    out = {"total": ce, "ce": ce.detach()}
    if embeddings is not None:
        con = supcon_loss(embeddings, labels, temperature)
        out["total"] = ce + supcon_weight * con
        out["supcon"] = con.detach()
    return out


def supcon_weight_at(train_cfg: Any, epoch_progress: float | None) -> float:
    """``train.supcon_weight``, ramped linearly over ``train.supcon_warmup_epochs`` (fractional epochs
    done so far; ``None`` = fully ramped, e.g. for validation losses)."""
    warmup = train_cfg.supcon_warmup_epochs
    if warmup <= 0 or epoch_progress is None:
        return train_cfg.supcon_weight
    return train_cfg.supcon_weight * min(1.0, max(0.0, epoch_progress) / warmup)


def detector_loss(
    detector: nn.Module,
    batch: dict[str, Any],
    out: dict[str, Tensor],
    train_cfg: Any,
    epoch_progress: float | None = None,
) -> dict[str, Tensor]:
    """The training loss of a detector's outputs: CE, plus ``train.supcon_weight`` × SupCon on
    ``out["embedding"]`` when the detector trains with SupCon (``uses_supcon``: AIRL Eq. 7; INFER
    trains with cross-entropy only, §3.5), the weight ramped over ``train.supcon_warmup_epochs``.
    Models return logits and embeddings; the loss is training's."""
    labels = batch["label"].to(out["logits"].device)
    embedding = out.get("embedding") if getattr(detector, "uses_supcon", False) else None
    return detection_loss(
        out["logits"], labels, embedding, supcon_weight_at(train_cfg, epoch_progress),
        train_cfg.supcon_temperature,
    )  # fmt: skip
