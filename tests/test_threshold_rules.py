"""Threshold rules chosen on validation data: ``eer``, ``youden`` and ``max_accuracy`` (AIRL reports
accuracy "at the optimal threshold from validation", AIRL (Parihar), §IV; docs/design.md, "Metrics")."""

from __future__ import annotations

import math
import typing

import numpy as np
import pytest

from fakescope.eval.metrics import (
    THRESHOLD_RULES,
    ThresholdRule,
    accuracy,
    choose_threshold,
    choose_thresholds,
)

# Imbalanced on purpose (6 real, 3 fake): max accuracy depends on the class balance, Youden's J and the
# equal-error point do not, so the three rules land on three different thresholds.
Y = [0, 0, 0, 0, 0, 0, 1, 1, 1]
S = [0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.4, 0.7, 0.8]


def _best_accuracy(y, s) -> float:
    # Brute force: every cut between sorted distinct scores, plus "all fake" and "none fake".
    u = np.unique(s)
    cuts = [u[0] - 1.0, *((u[:-1] + u[1:]) / 2), u[-1] + 1.0]
    return max(accuracy(y, s, float(t)) for t in cuts)


def test_three_rules_give_three_thresholds():
    eer_t = choose_threshold(Y, S, "eer")
    youden_t = choose_threshold(Y, S, "youden")
    acc_t = choose_threshold(Y, S, "max_accuracy")
    assert youden_t == pytest.approx(0.4)  # TPR 1, FPR 2/6: J = 2/3
    assert acc_t == pytest.approx(0.65)  # midway between the top real (0.6) and the next fake (0.7)
    assert len({round(eer_t, 6), round(youden_t, 6), round(acc_t, 6)}) == 3
    # max_accuracy reaches the best accuracy on the data it was chosen on; the other rules do not here.
    best = _best_accuracy(Y, S)
    assert accuracy(Y, S, acc_t) == pytest.approx(best) == pytest.approx(8 / 9)
    assert accuracy(Y, S, youden_t) < best and accuracy(Y, S, eer_t) < best


def test_max_accuracy_is_optimal_on_random_validation_sets():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(4, 40))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = np.round(rng.random(n) + 0.3 * y, 1)  # rounding makes ties
        t = choose_threshold(y, s, "max_accuracy")
        assert accuracy(y, s, t) == pytest.approx(_best_accuracy(y, s))


def test_max_accuracy_ties_are_deterministic():
    # Two cuts give 3/4: between 0.2 and 0.4 (one fake missed) and between 0.6 and 0.8 (one real
    # called fake). The documented rule takes the lowest threshold among equally accurate cuts.
    y = [0, 1, 0, 1]
    s = [0.2, 0.4, 0.6, 0.8]
    assert choose_threshold(y, s, "max_accuracy") == pytest.approx(0.3)
    assert choose_threshold(y[::-1], s[::-1], "max_accuracy") == pytest.approx(0.3)
    # Perfect separation: midway between the top real and the lowest fake.
    assert choose_threshold([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9], "max_accuracy") == pytest.approx(0.5)
    # All fakes below every real: the best is calling nothing fake, a threshold above every score.
    t = choose_threshold([1, 0, 0], [0.1, 0.5, 0.9], "max_accuracy")
    assert t > 0.9 and math.isfinite(t) and accuracy([1, 0, 0], [0.1, 0.5, 0.9], t) == pytest.approx(2 / 3)
    # One class only: NaN, like the other rules.
    assert math.isnan(choose_threshold([1, 1], [0.2, 0.9], "max_accuracy"))


def test_rule_is_listed_everywhere():
    from fakescope.train.config import TrainConfig

    assert set(typing.get_args(ThresholdRule)) == set(THRESHOLD_RULES) == {"eer", "youden", "max_accuracy"}
    assert TrainConfig(threshold_rule="max_accuracy").threshold_rule == "max_accuracy"
    videos = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
    th = choose_thresholds(Y, S, videos, "max_accuracy")
    assert th["frame"] == th["video"] == pytest.approx(0.65)
