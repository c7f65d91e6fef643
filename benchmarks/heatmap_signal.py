"""Is there real-vs-fake signal in a run's INR heatmaps at all? Linear probes on the cached maps
(issue 11: why `heatmaps` and `infer` do not beat `clip` here).

    python benchmarks/heatmap_signal.py runs/learning_curve/runs/infer__all   # -> RUN/heatmap_signal.json

For the run's train / val / test splits (its own config: manifest, split, INR settings; heatmaps come
from the INR cache the run filled, so nothing is refitted when it is warm), it reports the test AUC
(bootstrap 95 % interval) of:

- the INR fit effort itself (steps to ``inr.target_psnr``; INFER's premise is that fakes fit
  differently);
- an L2-regularised logistic regression on each heatmap layer, flattened, and on all layers together,
  its C chosen on val AUC;
- the same probe on the grey crop at the INR's resolution, the reference for "more than pixels".

A probe near 0.5 while the grey-pixel probe is clear of it says the maps at this resolution carry no
linear signal beyond the image; a probe clear of 0.5 with a learned encoder at chance says the encoder
is the fault.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from fakescope.data.dataset import FaceDataset
from fakescope.data.splits import load_splits
from fakescope.eval.metrics import auc as roc_auc
from fakescope.eval.metrics import bootstrap_auc_ci
from fakescope.inference.checkpoint import load_detector
from fakescope.inference.inputs import compute_inputs, feature_cache_dir
from fakescope.inr.engine import resize_for_inr
from fakescope.utils.atomic import atomic_write_json

C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def split_inputs(rows, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heatmaps [n, L, R, R], fit steps [n], grey crops at the INR resolution [n, R*R], labels [n]."""
    ds = FaceDataset(rows, cfg.data.image_size)
    crops = [ds.load_crop(i) for i in range(len(ds))]
    built = compute_inputs({"heatmaps"}, crops, cfg, "cpu", cache_dir=feature_cache_dir(cfg))
    maps = np.stack(built.stores["heatmaps"])
    steps = np.array([r.steps for r in built.fit_records], dtype=float)
    r = cfg.inr.resolution
    grey = np.stack([resize_for_inr(c, r).astype(np.float32).mean(axis=2).ravel() / 255 for c in crops])
    labels = np.array([row.label for row in rows], dtype=int)
    return maps, steps, grey, labels


def probe(train: tuple, val: tuple, test: tuple) -> dict:
    """Logistic regression, C chosen on val AUC; test AUC with its interval."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best = None
    for c in C_GRID:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        model.fit(*train)
        auc = roc_auc_score(val[1], model.predict_proba(val[0])[:, 1])
        if best is None or auc > best[0]:
            best = (auc, c, model)
    val_auc, c, model = best
    lo, auc, hi = _auc_interval(test[1], model.predict_proba(test[0])[:, 1])
    return {"C": c, "val_auc": round(val_auc, 3), "test_auc": auc, "test_auc_ci": [lo, hi]}


def _auc_interval(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float, float]:
    lo, hi = bootstrap_auc_ci(labels, scores, n=1000, seed=0)
    return round(lo, 3), round(roc_auc(labels, scores), 3), round(hi, 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a trained heatmaps or infer run (its config and INR cache are used)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    _, cfg, _ = load_detector(args.run)
    splits = load_splits(cfg.data)
    data = {name: split_inputs(rows, cfg) for name, rows in splits.items()}
    result: dict = {"run": args.run, "inr_resolution": cfg.inr.resolution,
                    "first_layer_map": cfg.inr.first_layer_map,
                    "n": {k: len(v[3]) for k, v in data.items()}}  # fmt: skip
    lo, auc, hi = _auc_interval(data["test"][3], data["test"][1])
    result["fit_steps"] = {"test_auc": auc, "test_auc_ci": [lo, hi],
                           "mean_steps_real": round(float(data["test"][1][data["test"][3] == 0].mean()), 1),
                           "mean_steps_fake": round(float(data["test"][1][data["test"][3] == 1].mean()), 1)}  # fmt: skip
    n_layers = data["train"][0].shape[1]
    feature_sets = {f"layer{k + 1}": (lambda m, k=k: m[:, k].reshape(len(m), -1)) for k in range(n_layers)}
    feature_sets["all_layers"] = lambda m: m.reshape(len(m), -1)
    for name, take in feature_sets.items():
        result[f"probe_{name}"] = probe(*((take(data[s][0]), data[s][3]) for s in ("train", "val", "test")))
        print(name, result[f"probe_{name}"], flush=True)
    result["probe_grey_pixels"] = probe(*((data[s][2], data[s][3]) for s in ("train", "val", "test")))
    print("grey", result["probe_grey_pixels"])
    out = Path(args.run) / "heatmap_signal.json"
    atomic_write_json(out, result)
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
