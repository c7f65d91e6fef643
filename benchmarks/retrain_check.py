"""Does a retrain of the shipped detector give the shipped weights? (docs/model-card.md, Reproduce)

    python scripts/train_shipped.py --threads 1 --until train --out runs/retrain
    python benchmarks/retrain_check.py runs/retrain/run --manifest runs/retrain/manifest_pooled.csv
        # -> benchmarks/results/retrain_check.json

Compares the retrain's best checkpoint with the shipped one (``src/fakescope/resources/detector`` unless
``--shipped``) tensor by tensor: how many are bit-identical, the largest absolute difference, both
SHA-256 and both runs' best epoch and validation AUC. When any tensor differs it also scores both on
the val split of ``--manifest`` (the pooled manifest the retrain wrote) and gives the paired AUC
difference (retrain − shipped) with its bootstrap interval over source videos, and how far the two
models' scores for the same face lie apart (median and largest). Bit-identity is promised only for the
same thread count on the same CPU (``train_summary.json`` records the CPU since 2026-12-05), so on
another CPU the question is whether the retrain is as good, not whether it is the same.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "src" / "fakescope" / "resources" / "detector"


def compare_weights(retrain: Path, shipped: Path) -> dict:
    """Tensor-by-tensor comparison of two runs' ``checkpoints/best``."""
    import torch
    from safetensors.torch import load_file

    from fakescope.utils.hashing import file_sha256

    paths = [Path(r) / "checkpoints" / "best.safetensors" for r in (retrain, shipped)]
    a, b = (load_file(p) for p in paths)
    metas = [json.loads(p.with_suffix(".json").read_text()) for p in paths]
    common = [k for k in a if k in b and a[k].shape == b[k].shape]
    identical = [k for k in common if a[k].dtype == b[k].dtype and torch.equal(a[k], b[k])]
    gaps = [float((a[k].double() - b[k].double()).abs().max()) for k in common if a[k].is_floating_point()]
    return {
        "same_keys": sorted(a) == sorted(b), "tensors": len(a), "identical_tensors": len(identical),
        "max_abs_difference": max(gaps, default=0.0),
        "sha256": {"retrain": file_sha256(paths[0]), "shipped": file_sha256(paths[1])},
        "best_epoch": {"retrain": metas[0]["epoch"], "shipped": metas[1]["epoch"]},
        "val_auc": {"retrain": metas[0]["val_metrics"]["auc"], "shipped": metas[1]["val_metrics"]["auc"]},
    }  # fmt: skip


def compare_scores(retrain: Path, shipped: Path, manifest: Path, bootstrap: int) -> dict:
    """Both detectors on the val split of ``manifest``: paired AUC difference and per-face score gaps."""
    import numpy as np

    from fakescope.eval.calibrate import score_split
    from fakescope.eval.metrics import paired_bootstrap_auc_difference

    rows_a, a = score_split(retrain, manifest, "val", device="cpu")
    rows_b, b = score_split(shipped, manifest, "val", device="cpu")
    if [r.path for r in rows_a] != [r.path for r in rows_b]:
        raise SystemExit(
            "retrain_check: the two runs scored different val faces; pass the retrain's manifest"
        )
    diff = paired_bootstrap_auc_difference(a.labels, a.scores, b.scores, groups=a.videos, n=bootstrap)
    gap = np.abs(np.asarray(a.scores) - np.asarray(b.scores))
    return {"val_faces": len(rows_a), "retrain_minus_shipped": diff,
            "score_gap_median": float(np.median(gap)), "score_gap_max": float(gap.max())}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from fakescope.utils.atomic import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("retrain", type=Path, help="the retrained run (OUT/run of train_shipped.py)")
    p.add_argument("--shipped", type=Path, default=SHIPPED, help="the shipped detector folder")
    p.add_argument("--manifest", type=Path, help="the pooled manifest, for the score comparison")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "retrain_check.json")
    args = p.parse_args(argv)
    result = {"command": "python benchmarks/retrain_check.py " + " ".join(sys.argv[1:] if argv is None else argv),
              **compare_weights(args.retrain, args.shipped)}  # fmt: skip
    if result["identical_tensors"] < result["tensors"] and args.manifest is not None:
        result.update(compare_scores(args.retrain, args.shipped, args.manifest, args.bootstrap))
    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
