"""Evaluation figures: ROC curves of several runs on one axis (INFER §4.2 Fig. 4, anonymous NeurIPS-format
submission) and a t-SNE of the fused embeddings coloured by class (INFER Fig. 2; AIRL (Parihar), Fig. 3).

t-SNE uses scikit-learn's ``TSNE`` (PCA initialisation, seeded) on at most ``max_points`` points drawn
class-stratified with a fixed seed; the perplexity is clipped below the point count, as TSNE requires.
Figures are written atomically as PNG.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from fakescope.utils.atomic import atomic_write_bytes  # noqa: E402

__all__ = ["plot_roc_curves", "plot_tsne", "plot_all"]


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def plot_roc_curves(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    path: str | os.PathLike[str],
    title: str = "ROC",
) -> Path:
    """One ROC curve per entry of ``curves`` (name -> (labels, scores)), AUC in the legend."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (labels, scores) in curves.items():
        y = np.asarray(labels)
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, np.asarray(scores))
        ax.plot(fpr, tpr, lw=1.6, label=f"{name} (AUC {roc_auc_score(y, scores):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set(
        xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01)
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_tsne(
    features: np.ndarray,
    labels: Sequence[int],
    path: str | os.PathLike[str],
    title: str = "t-SNE of fused embeddings",
    perplexity: float = 30.0,
    max_points: int = 2000,
    seed: int = 0,
) -> Path:
    """2-D t-SNE of ``features`` ([N, D]) coloured real / fake."""
    x = np.asarray(features, dtype=np.float32)
    y = np.asarray(labels)
    if len(x) > max_points:
        rng = np.random.default_rng(seed)
        keep = np.concatenate([
            rng.choice(np.flatnonzero(y == c), size=min((y == c).sum(), max_points // 2), replace=False) for c in (0, 1)
        ])  # fmt: skip
        x, y = x[keep], y[keep]
    perp = float(min(perplexity, max(2.0, (len(x) - 1) / 3)))
    emb = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(x)
    fig, ax = plt.subplots(figsize=(5, 5))
    for c, name, colour in ((0, "real", "tab:blue"), (1, "fake", "tab:red")):
        m = y == c
        ax.scatter(emb[m, 0], emb[m, 1], s=6, alpha=0.7, c=colour, label=f"{name} ({m.sum()})")
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_all(
    results: Sequence[Any], plots_dir: str | os.PathLike[str], perplexity: float | None = None
) -> list[Path]:
    """ROC figure per dataset (every run on it, clean images) and a t-SNE per run and dataset."""
    plots_dir = Path(plots_dir)
    out: list[Path] = []
    clean = [r for r in results if r.perturbation == "clean"]
    for dataset in dict.fromkeys(r.dataset for r in clean):
        curves = {r.run: (r.labels, r.scores) for r in clean if r.dataset == dataset}
        out.append(plot_roc_curves(curves, plots_dir / f"roc__{dataset}.png", title=f"ROC: {dataset}"))
    for r in clean:
        if r.features is not None and len(r.features) >= 5:
            out.append(
                plot_tsne(
                    r.features,
                    r.labels,
                    plots_dir / f"tsne__{r.run}__{r.dataset}.png",
                    title=f"t-SNE: {r.run} on {r.dataset}",
                    perplexity=perplexity or 30.0,
                )  # fmt: skip
            )
    return out
