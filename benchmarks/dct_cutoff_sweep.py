"""AIRL Table IV: the DCT cutoff ``c`` of the frequency stream (papers/AIRL.txt §V-D, Table IV sweeps
c = 2-6; c zeroes the DCT coefficients with u < c and v < c in every 8×8 block), everything else fixed.

    python benchmarks/dct_cutoff_sweep.py --detector airl --cutoffs 2 3 4 5 6 --out runs/dct_cutoff \
        [--cross ffhq-stylegan ciplab-photoshop] [--set train.epochs=8 ...]

Protocol (fixed before any result was seen; nothing here is chosen on test):
- One run per cutoff of ``configs/cpu/<detector>.yaml`` on ``dfdc-faces`` with ``model.dct_cutoff=c``
  and the same ``--set`` overrides, seed and split (the default seeded 70/15/15 split by source
  video): the cutoff is the only difference between the runs. The val split picks the epoch and the
  threshold; the test split is the in-domain test.
- Each run is scored by ``fakescope.eval.evaluate.evaluate_runs`` on the DFDC test split and on every
  ``--cross`` set (whole set; cross-dataset), with bootstrap 95 % intervals for AUC.
- Resumable: a finished cutoff (``OUT/runs/<detector>__c<c>/sweep_row.json``) is not run again; an
  interrupted one continues from its ``checkpoints/last``.
- Results: ``OUT/dct_cutoff_sweep.json`` (one row per cutoff) and a Markdown table (``--markdown``
  prints it for finished runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_cutoff(
    detector: str, cutoff: int, data: Path, out: Path, overrides: list[str], device: str,
    cross: list[str], max_images: int | None,
) -> dict:  # fmt: skip
    """Train (or resume) and evaluate one cutoff; return its row (read back when already finished)."""
    from fakescope.config import load_config
    from fakescope.eval.evaluate import evaluate_runs
    from fakescope.train.trainer import train

    run = out / "runs" / f"{detector}__c{cutoff}"
    row_file = run / "sweep_row.json"
    if row_file.is_file():
        return json.loads(row_file.read_text())
    manifest = data / "dfdc-faces" / "manifest.csv"
    cfg = load_config(
        REPO / "configs" / "cpu" / f"{detector}.yaml",
        [f"data.manifest={manifest}", f"device={device}", *overrides, f"model.dct_cutoff={cutoff}"],
    )
    resume = (run / "checkpoints" / "last.json").is_file()
    t0 = time.time()
    res = train(cfg, run, resume=resume)
    train_s = time.time() - t0
    summary = evaluate_runs(
        [run], [str(manifest), *cross], out_dir=run / "eval", split="auto", plots=False, device=device,
        data_root=data, max_images=max_images, progress=False,
    )  # fmt: skip
    sets = {rec["dataset"]: {k: v for k, v in rec.items() if k != "run"} for rec in summary["cross_dataset"]}
    row = {
        "detector": detector, "dct_cutoff": cutoff, "metrics": sets, "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run, "epochs_budget": cfg.train.epochs, "stopped_early": res.stopped_early,
        "best_val_auc": res.best_val_auc, "train_seconds_this_call": round(train_s, 1), "resumed": resume,
        "overrides": overrides,
    }  # fmt: skip
    row_file.write_text(json.dumps(row, indent=2))
    return row


def _auc_cell(m: dict | None) -> str:
    if not m:
        return "—"
    return f"{m['auc']:.3f} [{m['auc_ci_low']:.3f}, {m['auc_ci_high']:.3f}]"


def markdown(rows: list[dict], cross: list[str]) -> str:
    """Table IV: one row per (detector, cutoff): DFDC test AUC and each cross set's AUC, with intervals."""
    sets = ["dfdc-faces", *[Path(c).name for c in cross]]
    lines = ["| detector | cutoff c | " + " | ".join(f"{s} AUC [95% CI]" for s in sets)
             + " | best val AUC | epochs (best / run / budget) |",
             "| --- | --- | " + " | ".join("---" for _ in sets) + " | --- | --- |"]  # fmt: skip
    for r in sorted(rows, key=lambda r: (r["detector"], r["dct_cutoff"])):
        cells = [_auc_cell(r["metrics"].get(s)) for s in sets]
        lines.append(
            f"| `{r['detector']}` | {r['dct_cutoff']} | " + " | ".join(cells)
            + f" | {r['best_val_auc']:.3f} | {r['best_epoch']} / {r['epochs_run']} / {r['epochs_budget']} |"
        )  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    p.add_argument("--detector", default="airl", help="an AIRL-family detector with a DCT stream")
    p.add_argument("--cutoffs", nargs="+", type=int, default=[2, 3, 4, 5, 6])
    p.add_argument("--cross", nargs="*", default=["ffhq-stylegan", "ciplab-photoshop"],
                   help="cross-dataset sets scored whole (names under --data, folders or manifests)")  # fmt: skip
    p.add_argument("--out", default=str(REPO / "runs" / "dct_cutoff"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-images", type=int, default=None, help="cap on images scored per set (smoke runs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--markdown", action="store_true", help="print the table of finished cutoffs and exit")
    args = p.parse_args(argv)
    out = Path(args.out)
    if any(o.startswith("model.dct_cutoff=") for o in args.overrides):
        p.error("model.dct_cutoff is what the sweep sets: use --cutoffs")

    def finished() -> list[dict]:
        return [json.loads(f.read_text()) for f in sorted(out.glob("runs/*/sweep_row.json"))]

    if args.markdown:
        print(markdown(finished(), args.cross))
        return 0
    for c in args.cutoffs:
        print(f"== {args.detector} dct_cutoff={c}", flush=True)
        run_cutoff(
            args.detector, c, Path(args.data), out, args.overrides, args.device, args.cross, args.max_images
        )
        out.mkdir(parents=True, exist_ok=True)
        (out / "dct_cutoff_sweep.json").write_text(json.dumps(finished(), indent=2))
    print(markdown(finished(), args.cross))
    return 0


if __name__ == "__main__":
    sys.exit(main())
