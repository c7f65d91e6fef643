"""CE and supervised contrastive loss (AIRL (Parihar), §III-E/F, Eq. 6-7; Khosla et al. 2020)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fakescope.train.losses import ce_loss, detection_loss, supcon_loss


def _supcon_by_hand(z: torch.Tensor, labels: list[int], tau: float) -> float:
    """Eq. 6 written out with loops: mean over anchors of -1/|P(i)| sum_p log softmax_{k != i}."""
    n = len(labels)
    total, anchors = 0.0, 0
    for i in range(n):
        denom = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(n) if k != i)
        pos = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not pos:
            continue
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / tau) / denom) for p in pos) / len(pos)
        anchors += 1
    return total / anchors


def test_supcon_closed_form_on_four_samples():
    # Two reals at e1, two fakes at e2 (orthogonal): each anchor sees one positive at similarity 1 and
    # two negatives at 0, so every anchor's loss is log(1 + 2 exp(-1/tau)).
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert math.isclose(float(supcon_loss(z, labels, 0.5)), math.log(1 + 2 * math.exp(-2)), rel_tol=1e-6)
    assert math.isclose(
        float(supcon_loss(z, labels, 0.07)), math.log(1 + 2 * math.exp(-1 / 0.07)), abs_tol=1e-5
    )
    # All four embeddings equal: the positive is one of three equal terms, log 3 at any temperature.
    same = torch.tensor([[0.6, 0.8]] * 4)
    assert math.isclose(float(supcon_loss(same, labels, 0.07)), math.log(3), rel_tol=1e-6)


def test_supcon_matches_hand_loop_on_random_batch():
    g = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    labels = [0, 1, 1, 1]  # anchor 0 has no positive and is left out, as in Khosla et al.'s code
    got = float(supcon_loss(z, torch.tensor(labels), 0.07))
    assert math.isclose(got, _supcon_by_hand(z, labels, 0.07), rel_tol=1e-5)


def test_supcon_lower_for_clustered_than_shuffled():
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([0] * 8 + [1] * 8)
    centres = F.normalize(torch.randn(2, 16, generator=g), dim=1)
    clustered = F.normalize(centres[labels] + 0.1 * torch.randn(16, 16, generator=g), dim=1)
    shuffled_labels = labels[torch.randperm(16, generator=g)]
    assert supcon_loss(clustered, labels) < supcon_loss(clustered, shuffled_labels) - 1.0


def test_supcon_without_positives_is_zero_and_backpropagates():
    z = F.normalize(torch.randn(2, 4), dim=1).requires_grad_(True)
    loss = supcon_loss(z, torch.tensor([0, 1]))
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_detection_loss_combines_ce_and_weighted_supcon():
    logits = torch.tensor([[2.0, -1.0], [0.0, 1.0], [0.5, 0.5], [-1.0, 3.0]])
    labels = torch.tensor([0, 1, 0, 1])
    z = F.normalize(torch.randn(4, 8), dim=1)
    out = detection_loss(logits, labels, z, supcon_weight=0.5, temperature=0.07)
    assert set(out) == {"total", "ce", "supcon"}
    assert torch.isclose(out["ce"], F.cross_entropy(logits, labels))
    assert torch.isclose(out["total"], out["ce"] + 0.5 * out["supcon"])
    only_ce = detection_loss(logits, labels)
    assert set(only_ce) == {"total", "ce"}
    assert torch.isclose(only_ce["total"], ce_loss(logits, labels))


def test_supcon_warmup_ramps_the_weight_then_holds_it():
    from types import SimpleNamespace

    from fakescope.train.config import TrainConfig
    from fakescope.train.losses import detector_loss, supcon_weight_at

    tc = TrainConfig(supcon_weight=0.5, supcon_warmup_epochs=2)
    assert [supcon_weight_at(tc, p) for p in (0.0, 1.0, 2.0, 5.5)] == [0.0, 0.25, 0.5, 0.5]
    assert supcon_weight_at(tc, None) == 0.5  # validation losses use the full weight
    assert supcon_weight_at(TrainConfig(supcon_weight=0.5), 0.0) == 0.5  # off by default (AIRL's recipe)
    torch.manual_seed(0)
    out = {"logits": torch.randn(8, 2), "embedding": F.normalize(torch.randn(8, 16), dim=1)}
    batch = {"label": torch.tensor([0, 1] * 4)}
    detector = SimpleNamespace(uses_supcon=True)
    start = detector_loss(detector, batch, out, tc, epoch_progress=0.0)
    later = detector_loss(detector, batch, out, tc, epoch_progress=3.0)
    assert torch.isclose(start["total"], start["ce"])  # epoch 0: cross-entropy only
    assert torch.isclose(later["total"], later["ce"] + 0.5 * later["supcon"])
