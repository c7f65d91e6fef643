"""Metrics against scikit-learn on random data and against hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from fakescope.errors import InputError
from fakescope.eval.metrics import (
    accuracy,
    auc,
    average_precision,
    bootstrap_auc_ci,
    choose_threshold,
    choose_thresholds,
    compute_metrics,
    eer,
    video_level,
    weighted_auc,
)


@pytest.fixture
def random_scores():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    return y, s


def test_auc_and_ap_match_sklearn(random_scores):
    y, s = random_scores
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_eer_matches_root_of_interpolated_roc(random_scores):
    y, s = random_scores
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    expected = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    rate, thr = eer(y, s)
    assert rate == pytest.approx(expected, abs=1e-9)
    # At the EER threshold, the two error rates are close to each other and to the EER.
    far = np.mean(s[y == 0] >= thr)
    frr = np.mean(s[y == 1] < thr)
    assert abs(far - rate) < 0.02 and abs(frr - rate) < 0.02


def test_eer_hand_worked():
    # Real scores 0.1, 0.2, 0.7; fake 0.3, 0.8, 0.9. At threshold 0.7: FPR = 1/3 (0.7), FNR = 1/3 (0.3).
    y = [0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.7, 0.3, 0.8, 0.9]
    rate, thr = eer(y, s)
    assert rate == pytest.approx(1 / 3) and thr == pytest.approx(0.7)
    # A tie (real 0.5, fake 0.5) makes the ROC segment from (0, 1/2) to (1/2, 1); it meets
    # FPR = 1 - TPR at FPR = 1/4, halfway between thresholds 0.9 and 0.5.
    rate, thr = eer([0, 0, 1, 1], [0.5, 0.1, 0.5, 0.9])
    assert rate == pytest.approx(0.25) and thr == pytest.approx(0.7)
    # Perfect separation: EER 0.
    assert eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])[0] == 0.0
    # Inverted scores: EER 1.
    assert eer([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])[0] == pytest.approx(1.0)


def test_accuracy_and_thresholds():
    y = [0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.7, 0.3, 0.8, 0.9]
    assert accuracy(y, s, 0.5) == pytest.approx(4 / 6)
    assert accuracy(y, s, 0.7) == pytest.approx(4 / 6)
    assert accuracy(y, s, 0.25) == pytest.approx(5 / 6)  # >= threshold is fake
    # Youden: J = TPR - FPR is largest at threshold 0.3 (TPR 1, FPR 1/3).
    assert choose_threshold(y, s, "youden") == pytest.approx(0.3)
    assert choose_threshold(y, s, "eer") == pytest.approx(0.7)
    with pytest.raises(InputError, match="unknown threshold rule"):
        choose_threshold(y, s, "best")


def test_one_class_gives_nan_not_a_crash():
    m = compute_metrics([1, 1, 1], [0.2, 0.5, 0.9], bootstrap=50)["frame"]
    assert math.isnan(m["auc"]) and math.isnan(m["eer"]) and math.isnan(m["auc_ci_low"])
    assert m["acc_0.5"] == pytest.approx(2 / 3)


def test_bad_inputs():
    with pytest.raises(InputError, match="differ in length"):
        auc([0, 1], [0.1])
    with pytest.raises(InputError, match="0 \\(real\\) or 1 \\(fake\\)"):
        auc([0, 2], [0.1, 0.2])
    with pytest.raises(InputError, match="NaN"):
        auc([0, 1], [0.1, float("nan")])


def test_video_level_groups_by_full_id_and_averages():
    labels = [0, 0, 1, 1, 1, 0]
    scores = [0.2, 0.4, 0.9, 0.7, 0.1, 0.5]
    videos = ["ds/real/a", "ds/real/a", "ds/DF/a", "ds/DF/a", "ds/F2F/a", "ds/real/b"]
    vy, vs, ids = video_level(labels, scores, videos)
    assert ids.tolist() == ["ds/DF/a", "ds/F2F/a", "ds/real/a", "ds/real/b"]
    assert vy.tolist() == [1, 1, 0, 0]
    assert vs.tolist() == pytest.approx([0.8, 0.1, 0.3, 0.5])
    with pytest.raises(InputError, match="both real and fake"):
        video_level(labels, scores, ["a", "a", "a", "b", "c", "d"])


def test_compute_metrics_both_levels_and_thresholds(random_scores):
    y, s = random_scores
    videos = np.array([f"v{i // 5}_{y[i]}" for i in range(y.size)])
    val = choose_thresholds(y, s, videos)
    m = compute_metrics(y, s, videos, threshold=val, bootstrap=200, seed=1)
    assert set(m) == {"frame", "video"}
    assert m["frame"]["n"] == 500 and m["video"]["n"] == len(set(videos))
    assert m["frame"]["auc"] == pytest.approx(roc_auc_score(y, s))
    vy, vs, _ = video_level(y, s, videos)
    assert m["video"]["auc"] == pytest.approx(roc_auc_score(vy, vs))
    assert m["frame"]["threshold"] == val["frame"] and m["video"]["threshold"] == val["video"]
    assert m["frame"]["auc_ci_low"] < m["frame"]["auc"] < m["frame"]["auc_ci_high"]
    assert m["video"]["auc_ci_low"] < m["video"]["auc"] <= m["video"]["auc_ci_high"]
    assert m["frame"]["bootstrap"] == 200
    # One number applies to both levels.
    both = compute_metrics(y, s, videos, threshold=0.6, bootstrap=0)
    assert both["frame"]["acc_threshold"] == pytest.approx(accuracy(y, s, 0.6))
    assert both["video"]["threshold"] == 0.6 and math.isnan(both["video"]["auc_ci_low"])


def test_bootstrap_is_seeded_and_covers_the_truth():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = rng.normal(y * 0.8, 1.0)
    a = bootstrap_auc_ci(y, s, n=300, seed=5)
    assert a == bootstrap_auc_ci(y, s, n=300, seed=5)
    assert a != bootstrap_auc_ci(y, s, n=300, seed=6)
    lo, hi = a
    a_hat = roc_auc_score(y, s)
    assert lo < a_hat < hi
    # Width close to 2 x 1.96 x the Hanley-McNeil (1982) standard error of the AUC.
    n1, n2 = int(y.sum()), int((1 - y).sum())
    q1, q2 = a_hat / (2 - a_hat), 2 * a_hat**2 / (1 + a_hat)
    se = math.sqrt(
        (a_hat * (1 - a_hat) + (n1 - 1) * (q1 - a_hat**2) + (n2 - 1) * (q2 - a_hat**2)) / (n1 * n2)
    )
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.25)


def test_weighted_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.normal(y * 0.5, 1.0), 1)  # many ties
    w = rng.integers(0, 4, 400).astype(float)
    assert weighted_auc(y, s, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    assert weighted_auc(y, s, np.ones(400)) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_video_clustered_bootstrap_is_wider_than_frame_bootstrap():
    # 40 videos x 10 near-identical frames: frames are not independent evidence.
    rng = np.random.default_rng(1)
    vy = rng.integers(0, 2, 40)
    vs = rng.normal(vy * 1.0, 1.0)
    y = np.repeat(vy, 10)
    s = np.repeat(vs, 10) + rng.normal(0, 0.01, 400)
    vids = np.repeat(np.arange(40), 10)
    naive = bootstrap_auc_ci(y, s, n=300, seed=0)
    clustered = bootstrap_auc_ci(y, s, groups=vids, n=300, seed=0)
    assert (clustered[1] - clustered[0]) > 2 * (naive[1] - naive[0])


def test_paired_bootstrap_difference_is_zero_for_the_same_scores_and_sees_a_small_real_gain():
    from fakescope.eval.metrics import paired_bootstrap_auc_difference

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 400)
    groups = np.tile(np.arange(400), 2)  # a real and a fake face per source video, as in DFDC
    base = rng.normal(size=800) + 0.8 * y
    same = paired_bootstrap_auc_difference(y, base, base, groups, n=300)
    assert same["difference"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0
    # b is a with extra noise: a small gain that two overlapping unpaired intervals would hide.
    noisy = base + 0.8 * np.random.default_rng(1).normal(size=800)
    res = paired_bootstrap_auc_difference(y, base, noisy, groups, n=500)
    lo_a, hi_a = bootstrap_auc_ci(y, base, groups, n=500)
    lo_b, hi_b = bootstrap_auc_ci(y, noisy, groups, n=500)
    assert lo_a < hi_b and lo_b < hi_a  # the separate intervals overlap...
    assert 0 < res["ci_low"] < res["difference"] < res["ci_high"]  # ...the paired one excludes 0
    assert res["p_not_better"] < 0.025
    with pytest.raises(InputError, match="differ in length"):
        paired_bootstrap_auc_difference(y, base, base[:-1], groups)
