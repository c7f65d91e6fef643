"""Detection metrics (docs/design.md, "Metrics"; INFER Table 1 and AIRL Tables I-II
report AUC, AIRL also accuracy).

- **AUC** (headline) and **AP**: scikit-learn's ``roc_auc_score`` / ``average_precision_score``,
  with fake = positive class and the score = P(fake).
- **EER**: the point of the ROC curve where the false-positive rate equals the false-negative rate,
  found by linear interpolation between the two ROC vertices around the crossing (exact for the
  straight segments that tied scores produce), with the matching interpolated threshold.
- **Accuracy** at 0.5 and at a threshold chosen on *validation* data (:func:`choose_threshold`;
  rule ``eer`` by default, ``youden`` = argmax TPR - FPR, or ``max_accuracy`` = the accuracy-maximising
  threshold, AIRL's "optimal threshold from validation", AIRL (Parihar), §IV). A score ``>= threshold``
  is called fake.
- **Video level**: a video's score is the mean of its frames' scores, frames grouped by the full
  video identity (``ManifestRow.video_id``), never by a folder name alone.
- **Bootstrap 95% interval for AUC**: seeded percentile bootstrap. Whole videos are resampled
  (at frame level too, with all their frames, because frames of one video are not independent);
  without video ids, single items are resampled. Resamples holding one class only are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from fakescope.errors import InputError

ThresholdRule = Literal["eer", "youden", "max_accuracy"]
THRESHOLD_RULES: tuple[str, ...] = ("eer", "youden", "max_accuracy")


def _arrays(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64, copy=False).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise InputError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if y.size and not np.isin(y, (0, 1)).all():
        raise InputError(
            f"labels must be 0 (real) or 1 (fake); got {sorted(set(np.unique(y).tolist()) - {0, 1})}"
        )
    if not np.isfinite(s).all():
        raise InputError(f"{int((~np.isfinite(s)).sum())} score(s) are NaN or infinite")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return y.size > 0 and 0 < int(y.sum()) < y.size


def auc(labels, scores, sample_weight: np.ndarray | None = None) -> float:
    """ROC AUC with fake as the positive class; NaN when only one class is present."""
    y, s = _arrays(labels, scores)
    if not _both_classes(y):
        return math.nan
    return float(roc_auc_score(y, s, sample_weight=sample_weight))


def average_precision(labels, scores) -> float:
    """Average precision (area under precision-recall, fake = positive); NaN with one class."""
    y, s = _arrays(labels, scores)
    if not _both_classes(y):
        return math.nan
    return float(average_precision_score(y, s))


def eer(labels, scores) -> tuple[float, float]:
    """Equal error rate and its threshold, interpolated on the ROC curve. NaNs with one class."""
    y, s = _arrays(labels, scores)
    if not _both_classes(y):
        return math.nan, math.nan
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    # sklearn's first threshold is +inf (nothing called fake); use the top score there instead.
    thr = thr.copy()
    thr[0] = max(thr[1], float(s.max())) if thr.size > 1 else float(s.max())
    fnr = 1.0 - tpr
    diff = fnr - fpr  # decreasing from 1 to -1 along the curve
    k = int(np.argmax(diff <= 0))
    if diff[k] == 0 or k == 0:
        return float(fpr[k]), float(thr[k])
    # Cross between vertex k-1 (diff > 0) and k (diff < 0): interpolate linearly.
    t = diff[k - 1] / (diff[k - 1] - diff[k])
    rate = fpr[k - 1] + t * (fpr[k] - fpr[k - 1])
    threshold = thr[k - 1] + t * (thr[k] - thr[k - 1])
    return float(rate), float(threshold)


def youden_threshold(labels, scores) -> float:
    """The threshold maximising TPR - FPR (Youden's J); NaN with one class."""
    y, s = _arrays(labels, scores)
    if not _both_classes(y):
        return math.nan
    fpr, tpr, thr = roc_curve(y, s)
    j = tpr - fpr
    k = int(np.argmax(j[1:]) + 1) if thr.size > 1 else 0
    return float(thr[k])


def max_accuracy_threshold(labels, scores) -> float:
    """The threshold with the highest accuracy on ``labels``/``scores`` (``score >= t`` is fake); NaN
    with one class. AIRL reports accuracy "at the optimal threshold from validation" (AIRL §IV).

    Accuracy only changes where the threshold passes a score, so the candidates are the cuts between
    consecutive distinct scores. Each cut is placed **midway** between the two scores (the largest
    margin to both, as a decision stump does), the "everything fake" cut at the lowest score, and the
    "nothing fake" cut just above the highest score (the next float). **Ties** between equally accurate
    cuts go to the **lowest** threshold (the one that calls the most items fake), so the result depends
    on the data only, not on its order.
    """
    y, s = _arrays(labels, scores)
    if not _both_classes(y):
        return math.nan
    u, inv = np.unique(s, return_inverse=True)
    fakes = np.bincount(inv, weights=y, minlength=u.size)
    reals = np.bincount(inv, weights=1 - y, minlength=u.size)
    # Cut k calls the k lowest distinct scores real: correct = reals below the cut + fakes at/above it.
    reals_below = np.concatenate([[0.0], np.cumsum(reals)])
    fakes_above = fakes.sum() - np.concatenate([[0.0], np.cumsum(fakes)])
    k = int(np.argmax(reals_below + fakes_above))  # argmax takes the first maximum: the lowest cut
    if k == 0:
        return float(u[0])
    if k == u.size:
        return float(np.nextafter(u[-1], np.inf))
    return float((u[k - 1] + u[k]) / 2)


def choose_threshold(labels, scores, rule: ThresholdRule = "eer") -> float:
    """Pick a decision threshold on validation data (never on the test set).

    ``eer``: the threshold where false positives and false negatives are equally likely, a rule that
    does not depend on the class balance of the validation set. ``youden``: argmax TPR - FPR.
    ``max_accuracy``: the threshold with the highest validation accuracy (AIRL §IV's "optimal threshold
    from validation"; it follows the validation set's class balance), see :func:`max_accuracy_threshold`.
    """
    if rule == "eer":
        return eer(labels, scores)[1]
    if rule == "youden":
        return youden_threshold(labels, scores)
    if rule == "max_accuracy":
        return max_accuracy_threshold(labels, scores)
    raise InputError(f"unknown threshold rule {rule!r}; use one of {', '.join(THRESHOLD_RULES)}")


def accuracy(labels, scores, threshold: float) -> float:
    """Share of items classified right when ``score >= threshold`` means fake."""
    y, s = _arrays(labels, scores)
    if y.size == 0 or not math.isfinite(threshold):
        return math.nan
    return float(np.mean((s >= threshold).astype(np.int64) == y))


def video_level(
    labels, scores, videos: Sequence[str] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean frame score per video → ``(video_labels, video_scores, video_ids)``, videos sorted by id.

    Every frame of a video must carry the same label; a mixed video means the ids are not the full
    video identity (e.g. a folder name shared by a real and a fake video) and is an error.
    """
    y, s = _arrays(labels, scores)
    ids = np.asarray(videos).ravel()
    if ids.shape != y.shape:
        raise InputError(f"videos ({ids.size}) and labels ({y.size}) differ in length")
    uniq, inv = np.unique(ids, return_inverse=True)
    counts = np.bincount(inv, minlength=uniq.size)
    vs = np.bincount(inv, weights=s, minlength=uniq.size) / counts
    fake_frames = np.bincount(inv, weights=y, minlength=uniq.size)
    mixed = np.flatnonzero((fake_frames > 0) & (fake_frames < counts))
    if mixed.size:
        shown = ", ".join(str(uniq[i]) for i in mixed[:5])
        raise InputError(
            f"{mixed.size} video id(s) hold both real and fake frames ({shown}); video ids must name the full video"
        )
    return (fake_frames > 0).astype(np.int64), vs, uniq


class _RankedScores:
    """Scores sorted once, so that a weighted AUC (Mann-Whitney, ties counted half) is a cumulative
    sum and two gathers: a 1000-resample bootstrap over 100k frames takes seconds, not minutes."""

    def __init__(self, y: np.ndarray, s: np.ndarray) -> None:
        self.order = np.argsort(s, kind="mergesort")
        ss = s[self.order]
        n = ss.size
        new_group = np.concatenate([[True], ss[1:] != ss[:-1]]) if n else np.zeros(0, bool)
        starts = np.flatnonzero(new_group)
        ends = np.concatenate([starts[1:], [n]])
        group_of = np.cumsum(new_group) - 1
        fake_sorted = y[self.order] == 1
        self.neg_mask = (~fake_sorted).astype(np.float64)
        self.pos_idx = np.flatnonzero(fake_sorted)
        # For each fake item: where its tie group starts and ends in the sorted order.
        self.pos_start = starts[group_of[self.pos_idx]]
        self.pos_end = ends[group_of[self.pos_idx]]

    def auc(self, weights: np.ndarray) -> float:
        w = weights[self.order]
        cum_neg = np.concatenate([[0.0], np.cumsum(w * self.neg_mask)])
        w_pos = w[self.pos_idx]
        total_pos, total_neg = w_pos.sum(), cum_neg[-1]
        if total_pos <= 0 or total_neg <= 0:
            return math.nan
        # Negatives strictly below plus half the tied ones = mean of the counts at the group's two ends.
        below_plus_half_tied = 0.5 * (cum_neg[self.pos_start] + cum_neg[self.pos_end])
        # An elementwise product and sum, not np.dot: BLAS threads stall on a busy shared CPU.
        return float((w_pos * below_plus_half_tied).sum() / (total_pos * total_neg))


def weighted_auc(labels, scores, weights) -> float:
    """ROC AUC with per-item weights (equal to sklearn's ``roc_auc_score(..., sample_weight=w)``)."""
    y, s = _arrays(labels, scores)
    return _RankedScores(y, s).auc(np.asarray(weights, dtype=np.float64).ravel())


def _weighted_auc_bootstrap(
    y: np.ndarray, s: np.ndarray, clusters: np.ndarray | None, n: int, seed: int, level: float
) -> tuple[float, float, int]:
    rng = np.random.default_rng(seed)
    if clusters is None:
        clusters = np.arange(y.size)
    uniq, inv = np.unique(clusters, return_inverse=True)
    m = uniq.size
    ranked = _RankedScores(y, s)
    values: list[float] = []
    for _ in range(n):
        picks = np.bincount(rng.integers(0, m, m), minlength=m)
        value = ranked.auc(picks[inv].astype(np.float64))
        if not math.isnan(value):  # a resample with one class only has no AUC
            values.append(value)
    if not values:
        return math.nan, math.nan, 0
    lo, hi = np.percentile(values, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi), len(values)


def bootstrap_auc_ci(
    labels,
    scores,
    groups: Sequence[str] | np.ndarray | None = None,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval for AUC, resampling ``groups`` (e.g. video ids) as units when
    given, else single items. NaNs when ``n`` is 0 or only one class is present."""
    y, s = _arrays(labels, scores)
    if n <= 0 or not _both_classes(y):
        return math.nan, math.nan
    g = None if groups is None else np.asarray(groups).ravel()
    lo, hi, _ = _weighted_auc_bootstrap(y, s, g, n, seed, level)
    return lo, hi


def paired_bootstrap_auc_difference(
    labels,
    scores_a,
    scores_b,
    groups: Sequence[str] | np.ndarray | None = None,
    n: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float | int]:
    """AUC(a) - AUC(b) of two detectors scored on the same items, with a paired percentile bootstrap:
    each resample draws the same ``groups`` (e.g. source videos) for both, so the interval is that of
    the difference itself. Two separate intervals that overlap say little; this one says whether ``a``
    beats ``b`` and by how much. ``p_not_better`` is the share of resamples with a difference <= 0."""
    y, sa = _arrays(labels, scores_a)
    _, sb = _arrays(labels, scores_b)  # raises InputError unless both score every item
    diff = auc(y, sa) - auc(y, sb)
    out: dict[str, float | int] = {"auc_a": auc(y, sa), "auc_b": auc(y, sb), "difference": diff}
    if n <= 0 or not _both_classes(y):
        return {**out, "ci_low": math.nan, "ci_high": math.nan, "p_not_better": math.nan, "bootstrap": 0}
    clusters = np.arange(y.size) if groups is None else np.asarray(groups).ravel()
    _, inv = np.unique(clusters, return_inverse=True)
    m = int(inv.max()) + 1
    ranked_a, ranked_b = _RankedScores(y, sa), _RankedScores(y, sb)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        w = np.bincount(rng.integers(0, m, m), minlength=m)[inv].astype(np.float64)
        d = ranked_a.auc(w) - ranked_b.auc(w)
        if not math.isnan(d):
            values.append(d)
    vals = np.asarray(values)
    lo, hi = np.percentile(vals, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return {**out, "ci_low": float(lo), "ci_high": float(hi), "p_not_better": float((vals <= 0).mean()),
            "bootstrap": int(vals.size)}  # fmt: skip


def level_metrics(
    labels,
    scores,
    threshold: float | None = None,
    clusters: Sequence[str] | np.ndarray | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, float | int | None]:
    """Every metric for one level (frames or videos)."""
    y, s = _arrays(labels, scores)
    rate, eer_thr = eer(y, s)
    lo, hi, used = (math.nan, math.nan, 0)
    if bootstrap > 0 and _both_classes(y):
        lo, hi, used = _weighted_auc_bootstrap(
            y, s, None if clusters is None else np.asarray(clusters).ravel(), bootstrap, seed, 0.95
        )
    return {
        "n": int(y.size),
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "auc": auc(y, s),
        "auc_ci_low": lo,
        "auc_ci_high": hi,
        "bootstrap": used,
        "ap": average_precision(y, s),
        "eer": rate,
        "eer_threshold": eer_thr,
        "acc_0.5": accuracy(y, s, 0.5),
        "threshold": None if threshold is None else float(threshold),
        "acc_threshold": None if threshold is None else accuracy(y, s, float(threshold)),
    }


def _threshold_for(threshold: float | Mapping[str, float] | None, level: str) -> float | None:
    if threshold is None or isinstance(threshold, (int, float)):
        return threshold
    return threshold.get(level)


def choose_thresholds(
    labels, scores, videos: Sequence[str] | np.ndarray | None = None, rule: ThresholdRule = "eer"
) -> dict[str, float]:
    """Validation thresholds for each level: ``{"frame": t}`` plus ``"video"`` when ids are given."""
    out = {"frame": choose_threshold(labels, scores, rule)}
    if videos is not None:
        vy, vs, _ = video_level(labels, scores, videos)
        out["video"] = choose_threshold(vy, vs, rule)
    return out


def compute_metrics(
    labels,
    scores,
    videos: Sequence[str] | np.ndarray | None = None,
    threshold: float | Mapping[str, float] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, float | int | None]]:
    """Frame-level metrics, plus video-level ones when ``videos`` (full video ids) are given.

    ``threshold`` is the validation-chosen threshold: one number for both levels, or
    ``{"frame": t, "video": t}`` as returned by :func:`choose_thresholds`.
    """
    y, s = _arrays(labels, scores)
    out = {"frame": level_metrics(y, s, _threshold_for(threshold, "frame"), videos, bootstrap, seed)}
    if videos is not None:
        vy, vs, _ = video_level(y, s, videos)
        out["video"] = level_metrics(vy, vs, _threshold_for(threshold, "video"), None, bootstrap, seed)
    return out
