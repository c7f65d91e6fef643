"""Parity of the ONNX engine with PyTorch on real DFDC test faces, and the AUC change of dynamic int8
(issue 15: "scores within 1e-3 of PyTorch on 100 real DFDC faces (fp32), with the int8 AUC change").

    python benchmarks/onnx_parity.py runs/learning_curve/runs/airl__all -n 100   # -> results/onnx_parity.json

RUN is a trained AIRL-family run; the faces are the first N/2 real and N/2 fake rows of the test split
of its manifest (never its training faces), scored as aligned crops by FaceForgeryDetector.score_crops
with the torch engine, the fp32 export and the int8 export. The AUC interval is a bootstrap over faces.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from fakescope.api import load
from fakescope.data.images import load_image_rgb
from fakescope.inference.checkpoint import read_checkpoint_meta, resolve_checkpoint
from fakescope.inference.onnx_engine import export_onnx
from fakescope.utils.atomic import atomic_write_json

REPO = Path(__file__).resolve().parents[1]


def _test_faces(run: Path, n: int) -> tuple[list[str], np.ndarray]:
    meta = read_checkpoint_meta(resolve_checkpoint(run))
    manifest = Path(meta["config"]["data"]["manifest"])
    if not manifest.is_absolute():
        manifest = REPO / manifest
    with open(manifest, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("split", "test") == "test"]
    picked = [r for r in rows if r["label"] == "real"][: n // 2] + [r for r in rows if r["label"] == "fake"][
        : n // 2
    ]
    paths = [r["path"] if Path(r["path"]).is_absolute() else str(manifest.parent / r["path"]) for r in picked]
    return paths, np.array([int(r["label"] == "fake") for r in picked])


def _auc_change_interval(y: np.ndarray, a: np.ndarray, b: np.ndarray, reps: int = 2000) -> list[float]:
    """95% bootstrap interval over faces of AUC(b) - AUC(a), paired (the same resample for both)."""
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(reps):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        diffs.append(roc_auc_score(y[idx], b[idx]) - roc_auc_score(y[idx], a[idx]))
    return [round(float(np.percentile(diffs, 2.5)), 4), round(float(np.percentile(diffs, 97.5)), 4)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "onnx_parity.json"))
    args = ap.parse_args(argv)

    run = Path(args.run)
    paths, y = _test_faces(run, args.n)
    crops = [load_image_rgb(p) for p in paths]
    torch_det = load(run)
    threshold = torch_det.threshold
    scores = {"torch": torch_det.score_crops(crops)[0]}
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="onnx-parity-") as tmp:
        for name, quantize in (("onnx_fp32", None), ("onnx_int8", "int8")):
            file = Path(tmp) / f"{name}.onnx"
            export_onnx(run, file, quantize=quantize)
            sizes[name] = round(file.stat().st_size / 1e6, 2)
            scores[name] = load(file, engine="onnx").score_crops(crops)[0]
    auc = {k: round(float(roc_auc_score(y, v)), 4) for k, v in scores.items()}
    doc = {
        "command": "python benchmarks/onnx_parity.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "run": str(run),
        "faces": len(crops),
        "faces_from": "test split of the run's manifest: first half real, first half fake",
        "max_abs_diff_vs_torch": {k: float(np.abs(v - scores["torch"]).max()) for k, v in scores.items()},
        "mean_abs_diff_vs_torch": {k: float(np.abs(v - scores["torch"]).mean()) for k, v in scores.items()},
        "auc": auc,
        "threshold": threshold,
        "labels_as_torch": {
            k: float(np.mean((v >= threshold) == (scores["torch"] >= threshold))) for k, v in scores.items()
        },
        "auc_change_int8_vs_fp32": round(auc["onnx_int8"] - auc["onnx_fp32"], 4),
        "auc_change_int8_vs_fp32_95ci": _auc_change_interval(y, scores["onnx_fp32"], scores["onnx_int8"]),
        "file_mb": sizes,
    }
    atomic_write_json(args.out, doc)
    for key in ("max_abs_diff_vs_torch", "auc", "auc_change_int8_vs_fp32", "auc_change_int8_vs_fp32_95ci"):
        print(f"{key}: {doc[key]}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
