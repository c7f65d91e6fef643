"""Learning curves: DFDC test AUC (bootstrap 95% interval) against the number of training faces, per
detector (issue 11 part 3). This tells whether a paper's claim fails at this scale or fails outright.

    python benchmarks/learning_curve.py --detectors clip airl_rgb airl --sizes 500 1000 2000 all all+more \
        --out runs/learning_curve [--set train.epochs=6 ...]

Protocol (fixed before any result was seen; nothing here is chosen on test):
- ``dfdc-faces`` is split by group (source video) with the default seeded 70/15/15 split, exactly as
  ``train`` splits it. Its **val** split selects the epoch and the threshold; its **test** split is
  the only test, for every size.
- Training sets are nested: the faces of a size-n set are a subset of every larger set. They are drawn
  as whole (real, fake) groups in a seeded order from the train split, so both classes stay balanced.
  ``all`` is the whole train split (about 4200 faces); ``all+more`` adds every face of
  ``dfdc-faces-more`` (6000 pairs from source videos in neither ``dfdc-faces`` nor any test set).
- Each (detector, size) is one run of ``configs/cpu/<detector>.yaml`` with ``--set`` overrides, trained
  by ``fakescope.train`` (resumable: rerun the same command after a crash and it continues), then
  scored by ``fakescope.eval.evaluate`` on the test split.
- Results: ``OUT/learning_curve.json`` (one row per run: faces, AUC and interval, wall time, epochs
  run, and whether the run's budget was cut) and ``OUT/learning_curve.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_manifests(data: Path, sizes: list[str], out: Path, seed: int = 0) -> dict[str, Path]:
    """One manifest per size with an explicit ``split`` column (train subset, dfdc val, dfdc test)."""
    from fakescope.data.config import SplitConfig
    from fakescope.data.manifest import read_manifest, split_by_group

    base = split_by_group(read_manifest(data / "dfdc-faces" / "manifest.csv"), SplitConfig())
    by_group: dict[str, list] = defaultdict(list)
    for r in base["train"]:
        by_group[r.group].append(r)
    order = sorted(by_group)
    random.Random(seed).shuffle(order)
    more = read_manifest(data / "dfdc-faces-more" / "manifest.csv") if "all+more" in sizes else []
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for size in sizes:
        if size in ("all", "all+more"):
            train = list(base["train"]) + (list(more) if size == "all+more" else [])
        else:
            train, n = [], int(size)
            for g in order:
                if len(train) >= n:
                    break
                train += by_group[g]
        lines = ["path,label,group,split"]
        for split, rows in (("train", train), ("val", base["val"]), ("test", base["test"])):
            lines += [f"{r.path},{'fake' if r.label else 'real'},{r.group},{split}" for r in rows]
        p = out / f"manifest_{size}.csv"
        p.write_text("\n".join(lines) + "\n")
        paths[size] = p
    return paths


def run_one(
    detector: str,
    size: str,
    manifest: Path,
    out: Path,
    overrides: list[str],
    device: str,
    tag: str = "",
    config_dir: Path = REPO / "configs" / "cpu",
) -> dict:
    from fakescope.config import load_config
    from fakescope.eval.evaluate import evaluate_runs
    from fakescope.train.trainer import train

    run = out / "runs" / (f"{detector}__{size}" + (f"__{tag}" if tag else ""))
    result_file = run / "learning_curve_row.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    cfg = load_config(config_dir / f"{detector}.yaml",
                      [f"data.manifest={manifest}", f"device={device}", *overrides])  # fmt: skip
    t0 = time.time()
    resume = (run / "checkpoints" / "last.json").is_file()
    res = train(cfg, run, resume=resume)
    train_s = time.time() - t0
    summary = evaluate_runs([run], [str(manifest)], out_dir=run / "eval", split="test", plots=False,
                            device=device, progress=False)  # fmt: skip
    rec = {k: v for k, v in summary["cross_dataset"][0].items() if k != "run"}
    n_train = sum(1 for line in manifest.read_text().splitlines()[1:] if line.endswith(",train"))
    row = {
        "detector": detector, "size": size, "train_faces": n_train, "metrics": rec,
        "best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "epochs_budget": cfg.train.epochs,
        "stopped_early": res.stopped_early, "time_cut": res.time_cut, "best_val_auc": res.best_val_auc,
        "config": str(config_dir.relative_to(REPO) if config_dir.is_relative_to(REPO) else config_dir),
        "device_name": _device_name(device),
        "train_seconds_this_call": round(train_s, 1), "resumed": resume, "overrides": overrides, "tag": tag,
    }  # fmt: skip
    result_file.write_text(json.dumps(row, indent=2))
    return row


def _device_name(device: str) -> str:
    """What the run trained on, for the wall-time column (a GPU's name, or the CPU's core count)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({os.cpu_count()} cores)"


def plot(rows: list[dict], path: Path) -> None:
    """Test AUC with its bootstrap 95% interval against training faces (log x), one line per detector."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    by_det: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if not r.get("tag"):  # the recipe's runs only; tagged variants (sweeps) are in the table
            by_det[r["detector"]].append(r)
    curves = {det: rs for det, rs in by_det.items() if len(rs) > 1}  # one-size runs: the full table
    for k, (det, rs) in enumerate(sorted(curves.items())):
        rs = sorted(rs, key=lambda r: r["train_faces"])
        x = [r["train_faces"] * (1 + 0.04 * k) for r in rs]  # dodge: intervals at one size stay readable
        y = [r["metrics"]["auc"] for r in rs]
        lo = [r["metrics"]["auc"] - r["metrics"]["auc_ci_low"] for r in rs]
        hi = [r["metrics"]["auc_ci_high"] - r["metrics"]["auc"] for r in rs]
        ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=det)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("training faces (DFDC)")
    ax.set_ylabel("DFDC test AUC (95% bootstrap CI)")
    configs = sorted({r.get("config", "configs/cpu") for r in rows})
    ax.set_title(f"Learning curves ({', '.join(configs)})")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)
    plt.close(fig)


def markdown(rows: list[dict]) -> str:
    """The learning-curve table for docs/results.md: one row per run, sorted by detector and size."""
    lines = [
        "| detector | training faces | DFDC test AUC [95% CI] | Acc (val threshold) | best val AUC "
        "| best epoch / run / budget | train wall |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(rows, key=lambda r: (r["detector"], r["train_faces"], r.get("tag", ""))):
        m = r["metrics"]
        budget = f"{r['best_epoch']} / {r['epochs_run']} / {r['epochs_budget']}"
        if not r["stopped_early"] and r["epochs_run"] >= r["epochs_budget"]:
            budget += " (budget reached)"
        if r.get("time_cut"):
            budget += " (time-cut)"
        changed = [o for o in r.get("overrides", []) if not o.startswith("train.progress")]
        name = f"`{r['detector']}`" + (f" ({', '.join(changed)})" if changed else "")
        if r.get("tag"):
            name += f" [{r['tag']}]"
        lines.append(
            f"| {name} | {r['train_faces']} | {m['auc']:.3f} [{m['auc_ci_low']:.3f}, {m['auc_ci_high']:.3f}] "
            f"| {m['acc_val_threshold']:.3f} | {r['best_val_auc']:.3f} | {budget} | {r['train_seconds_this_call'] / 60:.1f} min"
            f"{' (resumed)' if r['resumed'] else ''} |"
        )
    return "\n".join(lines)


# Stand-in labels: the recipes' backbones are Lite0, not the papers' models (README, "Results").
STANDIN = {"airl": "[b4→lite0]", "airl_rgb": "[b4→lite0]", "airl_nocon": "[b4→lite0]", "airl_early": "[b4→lite0]",
           "clip": "[clip→lite0]", "clip_fft": "[clip→lite0]", "clip_rgb_fft": "[clip→lite0]",
           "infer": "[clip→lite0]", "univfd": "[clip→lite0]", "wavelet_clip": "[clip→lite0]",
           "xception": "[xception→lite0]", "srm": "[xception→lite0]", "f3net": "[xception→lite0]"}  # fmt: skip
CROSS_SETS = ("ffhq-stylegan", "ciplab-photoshop")


def cross_results(out: Path) -> dict[str, list[dict]]:
    """Each run's cross-dataset rows (``RUN/cross/metrics/cross_dataset.json``, written by
    ``fakescope evaluate --run RUN --data ffhq-stylegan --data ciplab-photoshop --out RUN/cross``)."""
    found = {}
    for f in sorted(out.glob("runs/*/cross/metrics/cross_dataset.json")):
        found[f.parents[2].name] = json.loads(f.read_text())["cross_dataset"]
    return found


def full_table(rows: list[dict], cross: dict[str, list[dict]], variants: bool = True) -> str:
    """README's headline table: the largest-size run of each detector (and every tagged variant at
    that size), with DFDC test, the cross-dataset AUCs and the wall time."""
    head = ("| detector | training faces | DFDC test AUC [95% CI] | Acc | FFHQ-StyleGAN AUC [95% CI] "
            "| CIPLAB AUC [95% CI] | epochs (best / run / budget) | train wall |")  # fmt: skip
    lines = [head, "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    full = [r for r in rows if r["size"] in ("all", "all+more") and (variants or not r.get("tag"))]
    for r in sorted(full, key=lambda r: (r["detector"], r["train_faces"], r.get("tag", ""))):
        m = r["metrics"]
        run = f"{r['detector']}__{r['size']}" + (f"__{r['tag']}" if r.get("tag") else "")
        changed = [o for o in r.get("overrides", []) if not o.startswith("train.progress")]
        name = f"`{r['detector']}{STANDIN.get(r['detector'], '')}`" + (
            " (frozen)" if r["detector"] == "clip" else ""
        )
        name += (f" ({', '.join(changed)})" if changed else "") + (f" [{r['tag']}]" if r.get("tag") else "")
        by_set = {c["dataset"]: c for c in cross.get(run, [])}
        cells = []
        for ds in CROSS_SETS:
            c = by_set.get(ds)
            sub = f", n {c['n']}" if c and c["n"] < 1600 else ""
            cells.append(f"{c['auc']:.3f} [{c['auc_ci_low']:.2f}, {c['auc_ci_high']:.2f}]{sub}" if c else "—")
        cut = " (cut)" if not r["stopped_early"] and r["epochs_run"] >= r["epochs_budget"] else ""
        cut += " (time-cut)" if r.get("time_cut") else ""
        wall = f"{r['train_seconds_this_call'] / 60:.0f} min" + (" (+ resumed)" if r["resumed"] else "")
        lines.append(
            f"| {name} | {r['train_faces']} | **{m['auc']:.3f}** [{m['auc_ci_low']:.3f}, {m['auc_ci_high']:.3f}] "
            f"| {m['acc_val_threshold']:.3f} | {cells[0]} | {cells[1]} "
            f"| {r['best_epoch']} / {r['epochs_run']} / {r['epochs_budget']}{cut} | {wall} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--detectors", nargs="+", default=["clip", "airl_rgb", "airl"])
    p.add_argument("--sizes", nargs="+", default=["500", "1000", "2000", "all"])
    p.add_argument("--out", default=str(REPO / "runs" / "learning_curve"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--config-dir", default=str(REPO / "configs" / "cpu"),
                   help="folder of <detector>.yaml recipes (configs/gpu for the full-size GPU recipes)")  # fmt: skip
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--tag", default="", help="suffix of the run folder (<detector>__<size>__<tag>), for a "
                   "variant of a finished run, e.g. a learning-rate sweep point")  # fmt: skip
    p.add_argument("--markdown", action="store_true", help="print the table of finished runs and exit")
    p.add_argument("--full-table", action="store_true",
                   help="print README's table (largest sizes, with cross-dataset AUCs), write "
                   "OUT/learning_curve_cross.json, and exit")  # fmt: skip
    p.add_argument("--no-variants", action="store_true",
                   help="with --full-table: the recipes' runs only, no tagged variants (README's table)")  # fmt: skip
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.full_table:
        rows = [json.loads(f.read_text()) for f in sorted(out.glob("runs/*/learning_curve_row.json"))]
        cross = cross_results(out)
        (out / "learning_curve_cross.json").write_text(json.dumps(cross, indent=2))
        print(full_table(rows, cross, variants=not args.no_variants))
        return 0
    if args.markdown:
        print(
            markdown([json.loads(f.read_text()) for f in sorted(out.glob("runs/*/learning_curve_row.json"))])
        )
        return 0
    manifests = build_manifests(Path(args.data), args.sizes, out)
    rows = []
    for det in args.detectors:
        for size in args.sizes:
            print(f"== {det} @ {size}", flush=True)
            rows.append(
                run_one(
                    det,
                    size,
                    manifests[size],
                    out,
                    args.overrides,
                    args.device,
                    args.tag,
                    Path(args.config_dir).resolve(),
                )
            )
            # Every finished run under OUT, from this call or earlier ones (the table grows across calls).
            every = [json.loads(f.read_text()) for f in sorted(out.glob("runs/*/learning_curve_row.json"))]
            (out / "learning_curve.json").write_text(json.dumps(every, indent=2))
            plot(every, out / "learning_curve.png")
    print(json.dumps(rows, indent=2)[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
