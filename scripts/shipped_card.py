"""The shipped detector's measured tables, written into docs/model-card.md (and the copy inside the package).

    python scripts/shipped_card.py [--out runs/shipped] [--model src/fakescope/resources/detector]

Reads only what ``scripts/train_shipped.py`` wrote under OUT (the per-source test manifests) and the
exported detector. Every figure is on the sources' **test** splits, which nothing in training,
calibration or thresholding read; they are reported here, never used to choose anything.

- Per source and pooled: AUC with a bootstrap 95 % interval over groups (source videos / people),
  accuracy and the false-positive rate on reals at the shipped operating threshold (Wilson 95 %
  intervals), ECE of the calibrated probability (bootstrap interval), the share of faces flagged
  "unfamiliar" and the AUC on the faces that are not.
- Robustness on DFDC test: ``fakescope evaluate --robustness`` (blur, JPEG, both).

Every face is scored the way a user's file is: ``fakescope.load()`` then ``predict(path, aligned=True)``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from fakescope.utils.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "docs" / "model-card.md"
SOURCES = ("dfdc-faces", "ffhq-stylegan", "ciplab-photoshop")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def score_rows(detector, rows) -> dict[str, np.ndarray]:
    """Score each test face as a user's aligned crop; arrays of label, raw score, calibrated
    probability, verdict, familiarity score and flag, and group."""
    from tqdm import tqdm

    cols: dict[str, list] = {k: [] for k in ("y", "score", "prob", "fake", "fam", "unfamiliar", "group")}
    for r in tqdm(rows, desc="score test faces", mininterval=5):
        face = detector.predict(r.path, aligned=True).faces[0]
        cols["y"].append(r.label)
        cols["score"].append(face.score)
        cols["prob"].append(face.probability if face.probability is not None else face.score)
        cols["fake"].append(face.label == "fake")
        fam = face.familiarity or {}
        cols["fam"].append(fam.get("score", math.nan))
        cols["unfamiliar"].append(bool(fam.get("unfamiliar", False)))
        cols["group"].append(r.group)
    return {k: np.asarray(v) for k, v in cols.items()}


def source_metrics(s: dict[str, np.ndarray]) -> dict[str, float]:
    from fakescope.eval.calibration import ece, ece_interval
    from fakescope.eval.metrics import auc, bootstrap_auc_ci

    y, n = s["y"], len(s["y"])
    lo, hi = bootstrap_auc_ci(y, s["score"], groups=s["group"], n=1000)
    reals = y == 0
    fp = int((s["fake"] & reals).sum())
    correct = int(((s["fake"]).astype(int) == y).sum())
    familiar = ~s["unfamiliar"]
    ece_ci = ece_interval(s["prob"], y, bootstrap=1000)
    both = familiar.sum() > 0 and len(set(y[familiar].tolist())) == 2
    return {
        "n": n,
        "auc": auc(y, s["score"]),
        "auc_lo": lo,
        "auc_hi": hi,
        "acc": correct / n,
        "acc_ci": wilson(correct, n),
        "fpr": fp / max(1, int(reals.sum())),
        "fpr_ci": wilson(fp, int(reals.sum())),
        "ece": ece(s["prob"], y),
        "ece_ci": (ece_ci["low"], ece_ci["high"]),
        "unfamiliar": float(s["unfamiliar"].mean()),
        "auc_familiar": auc(y[familiar], s["score"][familiar]) if both else math.nan,
    }


def _f(x: float, d: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def test_table(results: dict[str, dict[str, float]]) -> str:
    head = (
        "| test split | n | AUC [95 % CI] | accuracy [CI] | false positives on reals [CI] | ECE [CI] "
        "| flagged unfamiliar | AUC on familiar faces |\n| --- | ---: | --- | --- | --- | --- | ---: | ---: |"
    )
    rows = [
        f"| {name} | {m['n']} | {_f(m['auc'])} [{_f(m['auc_lo'])}, {_f(m['auc_hi'])}] "
        f"| {_f(m['acc'])} [{_f(m['acc_ci'][0])}, {_f(m['acc_ci'][1])}] "
        f"| {_f(m['fpr'])} [{_f(m['fpr_ci'][0])}, {_f(m['fpr_ci'][1])}] "
        f"| {_f(m['ece'])} [{_f(m['ece_ci'][0])}, {_f(m['ece_ci'][1])}] "
        f"| {100 * m['unfamiliar']:.1f} % | {_f(m['auc_familiar'])} |"
        for name, m in results.items()
    ]
    return "\n".join([head, *rows])


def readme_block(results: dict[str, dict[str, float]]) -> str:
    names = {"dfdc-faces": "DFDC", "ffhq-stylegan": "FFHQ-StyleGAN", "ciplab-photoshop": "CIPLAB"}
    aucs = ", ".join(f"{names[k]} {results[k]['auc']:.3f}" for k in SOURCES)
    fprs = [results[k]["fpr"] for k in SOURCES]
    return (
        "The shipped detector ([model card](docs/model-card.md)) is the AIRL family trained on DFDC face swaps, "
        f"FFHQ vs StyleGAN and CIPLAB Photoshop composites. Test AUC: {aucs}; at its threshold it calls "
        f"{100 * min(fprs):.0f}–{100 * max(fprs):.0f} % of real test faces fake. It gives a calibrated "
        'probability, and marks faces unlike its training data "unfamiliar": it has never seen diffusion '
        "faces or reenactment. Research, non-commercial use only (its data's licences)."
    )


def robustness_table(model: Path, manifest: Path, out: Path) -> str:
    from fakescope.eval.evaluate import evaluate_runs

    summary = evaluate_runs([str(model)], [str(manifest)], out_dir=out, robustness=True, plots=False,
                            device="cpu", progress=False, split="test")  # fmt: skip
    atomic_write_text(out / "robustness_summary.json", json.dumps(summary, indent=2, default=str))
    rows = summary.get("robustness") or []
    clean = next((r["auc"] for r in rows if r.get("perturbation") == "clean"), math.nan)
    lines = ["| perturbation (DFDC test) | AUC [95 % CI] | change |", "| --- | --- | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['perturbation']} | {_f(r['auc'])} [{_f(r.get('auc_ci_low'))}, {_f(r.get('auc_ci_high'))}] "
            f"| {_f(r['auc'] - clean) if r.get('perturbation') != 'clean' else ''} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from fakescope.api import load
    from fakescope.data.manifest import read_manifest
    from fakescope.utils.docblocks import write_blocks

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "runs" / "shipped"))
    p.add_argument("--model", default=str(REPO / "src" / "fakescope" / "resources" / "detector"))
    p.add_argument("--card", default=str(CARD))
    p.add_argument("--no-robustness", action="store_true")
    args = p.parse_args(argv)
    out, model = Path(args.out), Path(args.model)
    detector = load(model)
    t0 = time.time()
    results: dict[str, dict[str, float]] = {}
    pooled: dict[str, list[np.ndarray]] = {}
    for src in SOURCES:
        scored = score_rows(detector, read_manifest(out / f"test_{src}.csv"))
        results[src] = source_metrics(scored)
        for k, v in scored.items():
            pooled.setdefault(k, []).append(v)
    results["pooled"] = source_metrics({k: np.concatenate(v) for k, v in pooled.items()})
    atomic_write_text(out / "card_test.json", json.dumps(results, indent=2, default=float))
    blocks = {"CARD_TEST": test_table(results)}
    if not args.no_robustness:
        blocks["CARD_ROBUSTNESS"] = robustness_table(model, out / "test_dfdc-faces.csv", out / "robustness")
    write_blocks(Path(args.card), blocks)
    write_blocks(REPO / "README.md", {"SHIPPED": readme_block(results)})
    if (model / "MODEL_CARD.md").is_file() or model.name == "detector":
        shutil.copy2(args.card, model / "MODEL_CARD.md")
    print(blocks["CARD_TEST"], f"\n({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
