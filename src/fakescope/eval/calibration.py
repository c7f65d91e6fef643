"""Fitting a calibration on validation scores: temperature scaling or isotonic regression, chosen by
cross-fitting, its expected calibration error with a bootstrap interval, a reliability diagram, and the
operating threshold at a stated false-positive rate on the validation reals.

- Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, §4.2): one
  scalar ``T > 0`` minimising the negative log-likelihood of the validation labels under
  ``sigmoid(logit(p) / T)``; for a two-class detector ``logit(p) = z_fake - z_real``, so this is
  exactly their ``softmax(z / T)`` (:func:`fakescope.inference.calibration.apply_temperature`).
- Isotonic regression (Guo et al., ICML 2017, §4.1; scikit-learn ``IsotonicRegression``), stored as its
  breakpoints.
- Expected calibration error (Guo et al., ICML 2017, §2, "Expected Calibration Error"; Naeini et al.,
  AAAI 2015): ``sum_b |B_b| / n * |mean(y in B_b) - mean(p in B_b)|`` over ``bins`` equal-width bins of
  P(fake) (the binary form: P(fake) is what a user reads), with a seeded percentile bootstrap interval.
- The choice between the two: ``folds``-fold cross-fitting on the validation set (each calibrator fitted
  on the other folds, scored on the held-out fold), by the pooled held-out NLL (ties to the simpler
  temperature); the chosen one is then refitted on the whole validation set. Both figures are recorded.
- The operating threshold: the smallest raw-score threshold at which at most ``fpr`` of the validation
  reals score ``>= threshold`` (:func:`threshold_at_fpr`), at frame level and, from the mean frame score of
  each validation video, at video level.

:func:`fit_calibration` returns a :class:`~fakescope.inference.calibration.Calibration`, which
``RUN/calibration.json`` stores (JSON, no pickle) and inference applies.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.errors import InputError
from fakescope.inference.calibration import Calibration, score_logit
from fakescope.utils.atomic import atomic_write_bytes

__all__ = [
    "CALIBRATION_METHODS",
    "cross_fit",
    "ece",
    "ece_interval",
    "fit_calibration",
    "fit_isotonic",
    "fit_temperature",
    "nll",
    "reliability_diagram",
    "threshold_at_fpr",
]

#: ``auto`` chooses between the two by cross-fitted NLL
CALIBRATION_METHODS = ("auto", "temperature", "isotonic")
#: probabilities are clipped to [NLL_EPS, 1 - NLL_EPS] in the NLL (an isotonic step can output 0 or 1)
NLL_EPS = 1e-6


def _check(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.int64).ravel()
    if s.shape != y.shape or s.size == 0:
        raise InputError(f"calibration: need as many labels as scores, and some (got {s.size}, {y.size})")
    if not np.isfinite(s).all():
        raise InputError(f"calibration: {int((~np.isfinite(s)).sum())} non-finite score(s)")
    return s, y


def nll(probs: Any, labels: Any) -> float:
    """Mean negative log-likelihood of binary ``labels`` under P(fake) = ``probs``."""
    p, y = _check(probs, labels)
    p = np.clip(p, NLL_EPS, 1.0 - NLL_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_temperature(scores: Any, labels: Any) -> float:
    """The temperature minimising the validation NLL of ``sigmoid(logit(score) / T)`` (Guo et al., ICML
    2017, §4.2), searched over ``log T`` in [-7, 7] (bounded Brent; the NLL is convex in ``1 / T``)."""
    from scipy.optimize import minimize_scalar

    s, y = _check(scores, labels)
    z = score_logit(s)

    def loss(log_t: float) -> float:
        a = z / np.exp(log_t)
        # -log sigmoid(a) for fakes, -log sigmoid(-a) for reals, via logaddexp (no overflow)
        return float(np.mean(np.logaddexp(0.0, np.where(y == 1, -a, a))))

    res = minimize_scalar(loss, bounds=(-7.0, 7.0), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x))


def fit_isotonic(scores: Any, labels: Any) -> tuple[list[float], list[float]]:
    """Isotonic regression of the labels on the raw score: its breakpoints ``(x, y)``; apply with
    ``np.interp(score, x, y)`` (what ``IsotonicRegression(out_of_bounds="clip").predict`` does)."""
    from sklearn.isotonic import IsotonicRegression

    s, y = _check(scores, labels)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    return [float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_]


def ece(probs: Any, labels: Any, bins: int = 15) -> float:
    """Expected calibration error of P(fake) over ``bins`` equal-width bins of [0, 1]."""
    p, y = _check(probs, labels)
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(idx, minlength=bins)
    gap = np.abs(np.bincount(idx, weights=y, minlength=bins) - np.bincount(idx, weights=p, minlength=bins))
    return float(gap.sum() / len(p)) if count.sum() else 0.0


def ece_interval(
    probs: Any, labels: Any, bins: int = 15, bootstrap: int = 200, seed: int = 0
) -> dict[str, float | None]:
    """ECE with a percentile bootstrap 95 % interval (rows resampled with replacement, seeded);
    ``low``/``high`` are ``None`` when ``bootstrap`` is 0. ECE is biased upward on a resample (its
    empty and thin bins add noise it cannot cancel), so on a few dozen faces the point estimate can lie
    below the interval: read a wide or high interval as "too few faces to tell"."""
    p, y = _check(probs, labels)
    out: dict[str, float | None] = {"ece": ece(p, y, bins), "low": None, "high": None}
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws = [ece(p[i], y[i], bins) for i in (rng.integers(0, len(p), len(p)) for _ in range(bootstrap))]
        out["low"], out["high"] = float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))
    return out


def threshold_at_fpr(real_scores: Any, fpr: float = 0.05) -> float:
    """The smallest threshold ``t`` with ``mean(real_scores >= t) <= fpr``: just above the
    ``floor(fpr * n) + 1``-th highest real score (ties stay below it, so the rate is never exceeded)."""
    s = np.sort(np.asarray(real_scores, dtype=np.float64).ravel())[::-1]
    if s.size == 0:
        raise InputError("calibration: no real face in the validation rows to set the operating threshold on")
    if not 0.0 <= fpr < 1.0:
        raise InputError(f"calibration: the false-positive rate must be in [0, 1), got {fpr}")
    k = int(np.floor(fpr * s.size + 1e-9))
    return float(np.nextafter(s[k], np.inf)) if k < s.size else float(s[-1])


def _fit(method: str, s: np.ndarray, y: np.ndarray) -> Calibration:
    cal = Calibration(method, threshold=0.5, video_threshold=0.5, target_fpr=0.0)
    if method == "temperature":
        cal.temperature = fit_temperature(s, y)
    else:
        cal.x, cal.y = fit_isotonic(s, y)
    return cal


def _folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold index per row, stratified by class (seeded)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % folds
    return fold


def cross_fit(scores: Any, labels: Any, folds: int = 2, seed: int = 0, bins: int = 15) -> dict[str, Any]:
    """Held-out NLL and ECE of each calibrator (and of the raw scores), pooled over ``folds``
    class-stratified folds of the validation set."""
    s, y = _check(scores, labels)
    fold = _folds(y, folds, seed)
    held: dict[str, np.ndarray] = {m: np.empty(len(s)) for m in ("temperature", "isotonic")}
    for k in range(folds):
        fit_rows, test_rows = fold != k, fold == k
        if len(set(y[fit_rows].tolist())) < 2 or not test_rows.any():
            raise InputError(f"calibration: too few faces of each class for {folds}-fold cross-fitting")
        for method in held:
            held[method][test_rows] = _fit(method, s[fit_rows], y[fit_rows]).apply(s[test_rows])
    out: dict[str, Any] = {"folds": folds, "seed": seed, "raw": {"nll": nll(s, y), "ece": ece(s, y, bins)}}
    for method, p in held.items():
        out[method] = {"nll": nll(p, y), "ece": ece(p, y, bins)}
    return out


def _video_scores(
    scores: np.ndarray, labels: np.ndarray, videos: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The mean frame score and the label of each video."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, v in enumerate(videos):
        by[v].append(i)
    mean = np.array([scores[i].mean() for i in by.values()])
    label = np.array([int(labels[i].max()) for i in by.values()])
    return mean, label


def fit_calibration(
    scores: Any,
    labels: Any,
    videos: Sequence[str] | None = None,
    *,
    fpr: float = 0.05,
    method: str = "auto",
    folds: int = 2,
    bins: int = 15,
    bootstrap: int = 200,
    seed: int = 0,
) -> Calibration:
    """Fit a calibration on validation ``scores`` (raw P(fake)) and ``labels`` (1 = fake): the method
    (``auto``: by cross-fitted NLL), the operating thresholds at ``fpr`` on the reals (frame level, and
    video level from ``videos`` when given), and in ``info`` the selection's figures and ECE before and
    after with bootstrap intervals."""
    if method not in CALIBRATION_METHODS:
        raise InputError(f"calibration: method {method!r}; choose {', '.join(CALIBRATION_METHODS)}")
    s, y = _check(scores, labels)
    if set(y.tolist()) != {0, 1}:
        raise InputError(f"calibration: the validation rows hold one class only ({s.size} faces); need both")
    selection = cross_fit(s, y, folds, seed, bins)
    chosen = method
    if method == "auto":
        chosen = (
            "isotonic" if selection["isotonic"]["nll"] < selection["temperature"]["nll"] else "temperature"
        )
    cal = _fit(chosen, s, y)
    cal.target_fpr = float(fpr)
    cal.threshold = threshold_at_fpr(s[y == 0], fpr)
    if videos is not None:
        v_scores, v_labels = _video_scores(s, y, videos)
        cal.video_threshold = threshold_at_fpr(v_scores[v_labels == 0], fpr)
    else:
        cal.video_threshold = cal.threshold
    after = cal.apply(s)
    cal.info = {
        "selection": {
            **selection,
            "rule": "lowest cross-fitted NLL" if method == "auto" else "given",
            "chosen": chosen,
        },  # fmt: skip
        "ece_bins": bins,
        "ece_before": ece_interval(s, y, bins, bootstrap, seed),
        "ece_after": ece_interval(after, y, bins, bootstrap, seed),
        "nll_before": nll(s, y),
        "nll_after": nll(after, y),
        "val_fpr": float(np.mean(s[y == 0] >= cal.threshold)),
        "val_tpr": float(np.mean(s[y == 1] >= cal.threshold)),
        "n_val": int(s.size),
        "n_val_real": int((y == 0).sum()),
        "n_val_fake": int((y == 1).sum()),
    }
    return cal


def reliability_diagram(
    labels: Any, curves: dict[str, Any], path: str | os.PathLike[str], bins: int = 15, title: str = ""
) -> Path:
    """A reliability diagram (Guo et al., ICML 2017, §2, Fig. 1): per equal-width bin of P(fake), the
    share of fakes against the mean predicted P(fake), one line per entry of ``curves`` (name →
    probabilities, e.g. raw and calibrated) with its ECE in the legend, and the bin counts below.
    Written atomically as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    y = np.asarray(labels, dtype=np.float64)
    fig = Figure(figsize=(5.0, 6.0))
    FigureCanvasAgg(fig)
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfect calibration")
    edges = np.linspace(0.0, 1.0, bins + 1)
    for name, probs in curves.items():
        p = np.asarray(probs, dtype=np.float64)
        idx = np.minimum((p * bins).astype(np.int64), bins - 1)
        count = np.bincount(idx, minlength=bins)
        keep = count > 0
        conf = np.bincount(idx, weights=p, minlength=bins)[keep] / count[keep]
        acc = np.bincount(idx, weights=y, minlength=bins)[keep] / count[keep]
        ax.plot(conf, acc, marker="o", ms=4, label=f"{name} (ECE {ece(p, y, bins):.3f})")
        hist.stairs(count, edges, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="share of fakes", title=title or "reliability diagram")
    ax.legend(loc="upper left", fontsize=8)
    hist.set(xlabel="predicted P(fake)", ylabel="faces")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
