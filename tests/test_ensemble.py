"""fakescope.eval.ensemble: the mean of calibrated log-odds, members chosen on validation."""

from __future__ import annotations

import numpy as np
import pytest

from fakescope.errors import InputError
from fakescope.eval.ensemble import choose_members, combine, fit_temperatures
from fakescope.eval.metrics import auc


def _views(n: int, noise: list[float], seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Labels and one P(fake) per detector: each sees the label through its own independent noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    views = {}
    for k, sd in enumerate(noise):
        z = (2 * y - 1) + rng.normal(0, sd, n)
        views[f"d{k}"] = 1 / (1 + np.exp(-z))
    return y, views


def test_two_independent_detectors_beat_either_and_are_both_chosen():
    y, s = _views(3000, [1.5, 1.5])
    choice = choose_members(s, y, bootstrap=300)
    assert choice.members == ("d0", "d1")
    both = auc(y, choice.predict(s))
    assert both > max(auc(y, s["d0"]), auc(y, s["d1"])) + 0.02
    assert choice.vs_best_single["ci_low"] > 0  # the gain is clear of noise on 3000 images
    assert choice.val_auc["d0+d1"] == pytest.approx(both)


def test_a_member_with_no_signal_is_left_out():
    y, s = _views(3000, [1.0])
    s["noise"] = np.random.default_rng(1).uniform(0, 1, y.size)
    choice = choose_members(s, y, bootstrap=300)
    # Noise can nudge the validation AUC up by chance, but not clear of its paired interval.
    assert choice.members == ("d0",) and choice.best_single == "d0"
    assert choice.vs_best_single["difference"] == 0.0


def test_an_overconfident_member_does_not_outvote_the_others():
    """Raw log-odds would let a member that says 0.99999 drown one that says 0.7; after each member's own
    temperature the ensemble ranks the same whatever scale a member's scores come on."""
    y, s = _views(2000, [1.2, 1.2])
    loud = dict(s)
    z = np.log(s["d1"] / (1 - s["d1"]))
    loud["d1"] = 1 / (1 + np.exp(-4 * z))  # the same ranking, four times as sure of itself
    t_plain, t_loud = fit_temperatures(s, y), fit_temperatures(loud, y)
    assert t_loud["d1"] == pytest.approx(4 * t_plain["d1"], rel=0.02)
    assert auc(y, combine(loud, t_loud)) == pytest.approx(auc(y, combine(s, t_plain)), abs=2e-3)
    raw = {m: 1.0 for m in loud}
    assert auc(y, combine(loud, raw)) < auc(y, combine(loud, t_loud)) - 0.01


def test_the_choice_reads_validation_only():
    y, s = _views(1500, [1.0, 1.6, 2.5], seed=3)
    choice = choose_members(s, y, bootstrap=200)
    again = choose_members({m: v.copy() for m, v in s.items()}, y.copy(), bootstrap=200)
    assert choice.members == again.members and choice.temperatures == again.temperatures
    # Applied to new images, the chosen ensemble is a fixed function of their scores.
    y_test, test = _views(500, [1.0, 1.6, 2.5], seed=4)
    expected = combine({m: test[m] for m in choice.members}, choice.temperatures)
    np.testing.assert_allclose(choice.predict(test), expected)
    # Every non-empty subset was tried.
    assert len(choice.val_auc) == 2**3 - 1


def test_bad_input_is_one_clear_error():
    y, s = _views(100, [1.0, 1.0])
    s["d1"] = s["d1"][:-1]
    with pytest.raises(InputError, match="'d1' scores 99 images, the labels 100"):
        choose_members(s, y)
    with pytest.raises(InputError, match="no fitted temperature"):
        combine({"d0": s["d0"]}, {})
    with pytest.raises(InputError, match="at least one member"):
        fit_temperatures({}, y)
