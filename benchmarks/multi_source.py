"""One detector trained on several sources at once, scored per source (issue 11 part 3): users meet a
mix of manipulations (face swaps, whole-face GAN images, hand-made composites), not one.

    python benchmarks/multi_source.py --detectors clip airl --out runs/multi_source [--set KEY=VALUE ...]

Protocol: each source (``dfdc-faces``, ``ffhq-stylegan``, ``ciplab-photoshop``) is split by group with
the default seeded 70/15/15 split, exactly as ``train`` splits it alone, so each source's test split is
the one a single-source run is tested on. The train splits are pooled for training and the val splits
pooled for model selection and the threshold (groups are prefixed by source, so no two sources share a
group). Each run is ``configs/cpu/<detector>.yaml`` with ``--set`` overrides (resumable). Results:
test AUC with its bootstrap 95 % interval per source and on the pooled test splits,
``OUT/multi_source.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["dfdc-faces", "ffhq-stylegan", "ciplab-photoshop"]


def build_manifests(data: Path, out: Path) -> dict[str, Path]:
    from fakescope.data.config import SplitConfig
    from fakescope.data.manifest import read_manifest, split_by_group

    out.mkdir(parents=True, exist_ok=True)
    pooled = ["path,label,group,split"]
    paths: dict[str, Path] = {}
    for src in SOURCES:
        parts = split_by_group(read_manifest(data / src / "manifest.csv"), SplitConfig())
        lines = ["path,label,group,split"]
        for split, rows in parts.items():
            body = [f"{r.path},{'fake' if r.label else 'real'},{src}:{r.group},{split}" for r in rows]
            pooled += body
            if split == "test":
                lines += body
        paths[src] = out / f"test_{src}.csv"
        paths[src].write_text("\n".join(lines) + "\n")
    paths["pooled"] = out / "manifest_pooled.csv"
    paths["pooled"].write_text("\n".join(pooled) + "\n")
    return paths


def main(argv: list[str] | None = None) -> int:
    from fakescope.config import load_config
    from fakescope.eval.evaluate import evaluate_runs
    from fakescope.train.trainer import train

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--detectors", nargs="+", default=["clip", "airl"])
    p.add_argument("--out", default=str(REPO / "runs" / "multi_source"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    out = Path(args.out)
    manifests = build_manifests(Path(args.data), out)
    results = []
    for det in args.detectors:
        run = out / "runs" / det
        row_file = run / "multi_source_row.json"
        if row_file.is_file():
            results.append(json.loads(row_file.read_text()))
            continue
        cfg = load_config(REPO / "configs" / "cpu" / f"{det}.yaml",
                          [f"data.manifest={manifests['pooled']}", f"device={args.device}", *args.overrides])  # fmt: skip
        t0 = time.time()
        res = train(cfg, run, resume=(run / "checkpoints" / "last.json").is_file())
        train_s = time.time() - t0
        datasets = [str(manifests[s]) for s in SOURCES] + [str(manifests["pooled"])]
        summary = evaluate_runs([run], datasets, out_dir=run / "eval", split="test", plots=False,
                                device=args.device, progress=False)  # fmt: skip
        per = {r["dataset"]: {k: r[k] for k in ("n", "auc", "auc_ci_low", "auc_ci_high", "acc_val_threshold")}
               for r in summary["cross_dataset"]}  # fmt: skip
        row = {"detector": det, "per_source_test": per, "best_epoch": res.best_epoch,
               "epochs_run": res.epochs_run, "epochs_budget": cfg.train.epochs, "stopped_early": res.stopped_early,
               "best_val_auc": res.best_val_auc, "train_seconds_this_call": round(train_s, 1),
               "overrides": args.overrides}  # fmt: skip
        row_file.write_text(json.dumps(row, indent=2))
        results.append(row)
        # Every finished detector under OUT, from this call or earlier ones (a call may train only one).
        every = [json.loads(f.read_text()) for f in sorted(out.glob("runs/*/multi_source_row.json"))]
        (out / "multi_source.json").write_text(json.dumps(every, indent=2))
        print(json.dumps(row, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
