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

Every detector, with self-blended training (issue 14): run each detector at ``--sizes all``, and again
with ``--set train.synthetic_fakes=sbi --tag sbi`` (the train split's real faces alone), score each
cross set with ``fakescope evaluate --run RUN --data ffhq-stylegan --data ciplab-photoshop --out RUN/cross``,
then ``--headline`` prints README's table (which detectors lie inside the best one's interval, per
set) and the paired SBI-minus-fakes differences, and ``--update-docs README.md docs/results.md`` writes
them between the files' markers with the figure ``docs/images/detectors.png``.
"""

from __future__ import annotations

import argparse
import csv
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
    with open(manifest, newline="", encoding="utf-8") as fh:
        train_rows = [r for r in csv.DictReader(fh) if r.get("split") == "train"]
    # With synthetic fakes the run trains on the real faces alone (each also yields its blend).
    n_train = sum(1 for r in train_rows if not cfg.train.synthetic_fakes or r["label"] == "real")
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


CURVE_TAGS = ("", "paperlr")


def plot(rows: list[dict], path: Path) -> None:
    """Test AUC with its bootstrap 95% interval against training faces (log x), one line per detector."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    by_det: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        # The recipe's runs, and the AIRL family's curves at the paper's rate (tag ``paperlr``, the CPU
        # recipe until stop 15); other tagged variants (sweeps) are in the table only.
        if r.get("tag", "") in CURVE_TAGS:
            by_det[r["detector"] + (f" [{r['tag']}]" if r.get("tag") else "")].append(r)
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
        if _epoch_capped(r):
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
        cut = " (cut)" if _epoch_capped(r) else ""
        cut += " (time-cut)" if r.get("time_cut") else ""
        wall = f"{r['train_seconds_this_call'] / 60:.0f} min" + (" (+ resumed)" if r["resumed"] else "")
        lines.append(
            f"| {name} | {r['train_faces']} | **{m['auc']:.3f}** [{m['auc_ci_low']:.3f}, {m['auc_ci_high']:.3f}] "
            f"| {m['acc_val_threshold']:.3f} | {cells[0]} | {cells[1]} "
            f"| {r['best_epoch']} / {r['epochs_run']} / {r['epochs_budget']}{cut} | {wall} |"
        )
    return "\n".join(lines)


# Which paper a detector comes from, for the headline table (the rest are issue 14's baselines).
FAMILY = {"infer": "INFER", "heatmaps": "INFER", "clip": "INFER", "airl": "AIRL", "airl_rgb": "AIRL",
          "airl_freq": "AIRL", "airl_nocon": "AIRL", "airl_early": "AIRL", "clip_fft": "variant",
          "clip_rgb_fft": "variant"}  # fmt: skip
SET_NAMES = {"dfdc": "DFDC test", "ffhq-stylegan": "FFHQ-StyleGAN", "ciplab-photoshop": "CIPLAB"}


def _headline_runs(rows: list[dict]) -> tuple[list[str], dict[str, dict], dict[str, dict]]:
    """The DFDC-train-split runs of each detector's recipe (size ``all``, untagged) and its SBI run
    (tag ``sbi``), in the registry's order (papers first, then baselines), for every detector with a
    run under OUT."""
    from fakescope.models.registry import list_detectors

    base = {r["detector"]: r for r in rows if r["size"] == "all" and not r.get("tag")}
    sbi = {r["detector"]: r for r in rows if r["size"] == "all" and r.get("tag") == "sbi"}
    # A detector with any run keeps its row while its recipe's run is retrained ("—" cells).
    anyrun = {r["detector"] for r in rows}
    order = [d for d in list_detectors() if d in anyrun]
    return order, base, sbi


def _set_metrics(row: dict | None, cross: dict[str, list[dict]]) -> dict[str, dict]:
    """One run's AUC records by set: ``dfdc`` (its test split) and each cross set."""
    if row is None:
        return {}
    run = f"{row['detector']}__{row['size']}" + (f"__{row['tag']}" if row.get("tag") else "")
    found = {"dfdc": row["metrics"]}
    found.update({c["dataset"]: c for c in cross.get(run, []) if c["dataset"] in CROSS_SETS})
    return found


def _train_minutes(row: dict, run_dir: Path) -> str:
    """Training wall time. A resumed run, or one with an epoch over 5x the median (a run paused while
    the CPU went to a measurement), is summed from log.csv with such epochs counted at the median, and
    marked "≈"."""
    import csv
    import statistics

    log = run_dir / "log.csv"
    secs = []
    if log.is_file():
        with open(log, newline="") as fh:
            secs = [float(r["seconds"]) for r in csv.DictReader(fh)]
    med = statistics.median(secs) if secs else 0.0
    if not row["resumed"] and all(x <= 5 * med for x in secs):
        return f"{row['train_seconds_this_call'] / 60:.0f} min"
    if not secs:
        return "— (resumed)"
    return f"≈ {sum(min(x, med) if x > 5 * med else x for x in secs) / 60:.0f} min"


def _inside(a: dict, b: dict) -> bool:
    """Each point lies within the other's interval (the README's meaning of "inside")."""
    return b["auc_ci_low"] <= a["auc"] <= b["auc_ci_high"] and a["auc_ci_low"] <= b["auc"] <= a["auc_ci_high"]


def _epoch_capped(row: dict) -> bool:
    """The run reached its epoch cap, not early stopping (a time cut is marked on its own)."""
    from fakescope.train.trainer import budget_cut

    return budget_cut(epochs_run=row["epochs_run"], epochs_budget=row["epochs_budget"],
                      stopped_early=row["stopped_early"])  # fmt: skip


def _budget_cut(row: dict | None) -> bool:
    """The run stopped at its epoch cap (or its time cap), not by early stopping."""
    from fakescope.train.trainer import budget_cut

    return bool(row) and budget_cut(epochs_run=row["epochs_run"], epochs_budget=row["epochs_budget"],
                                    stopped_early=row["stopped_early"], time_cut=row.get("time_cut", False))  # fmt: skip


def headline_table(rows: list[dict], cross: dict[str, list[dict]], out: Path, readme: bool = False) -> str:
    """Every detector's CPU recipe trained on the DFDC train split, and again on its real faces with
    SBI blends as the fakes, each scored on DFDC test and the two cross sets; "†" marks a budget-cut
    run's DFDC cell. For docs/results.md (not ``readme``) each row says which paper it comes from, and
    lines follow saying, per set, which detectors are inside the best one's interval."""
    order, base, sbi = _headline_runs(rows)
    sets = ["dfdc", *CROSS_SETS]

    def cell(m: dict | None) -> str:
        if not m:
            return "—"
        sub = f", n {m['n']}" if m.get("dataset") in CROSS_SETS and m["n"] < 1600 else ""
        return f"{m['auc']:.3f} [{m['auc_ci_low']:.2f}, {m['auc_ci_high']:.2f}]{sub}"

    def cells(row: dict | None) -> str:
        m = _set_metrics(row, cross)
        first = cell(m.get("dfdc")) + (" †" if _budget_cut(row) else "")
        return " | ".join([first, *(cell(m.get(s)) for s in CROSS_SETS)])

    src = "" if readme else " from |"
    lines = [f"| detector |{src} " + " | ".join(SET_NAMES[s] for s in sets) + " | train wall | SBI: "
             + " | SBI: ".join(SET_NAMES[s] for s in sets) + " |",
             "| --- |" + ("" if readme else " --- |") + " " + " | ".join("---" for _ in range(2 * len(sets) + 1))
             + " |"]  # fmt: skip
    for det in order:
        wall = _train_minutes(base[det], out / "runs" / f"{det}__all") if det in base else "—"
        family = "" if readme else f" {FAMILY.get(det, 'baseline')} |"
        lines.append(f"| `{det}` |{family} {cells(base.get(det))} | {wall} | {cells(sbi.get(det))} |")
    if readme:
        return "\n".join(lines)
    lines.append("")
    for label, runs in (("DFDC fakes", base), ("SBI", sbi)):
        for s in sets:
            scored = {d: _set_metrics(runs.get(d), cross).get(s) for d in order}
            scored = {d: m for d, m in scored.items() if m}
            if len(scored) < 2:
                continue
            best = max(scored, key=lambda d: scored[d]["auc"])
            inside = [d for d in scored if d != best and _inside(scored[d], scored[best])]
            outside = [d for d in scored if d != best and d not in inside]
            lines.append(
                f"- {SET_NAMES[s]}, {label}: best `{best}` {scored[best]['auc']:.3f}; inside its interval: "
                + (", ".join(f"`{d}`" for d in inside) or "none")
                + (f"; the other {len(outside)} {'is' if len(outside) == 1 else 'are'} not." if outside else ".")
            )  # fmt: skip
    return "\n".join(lines)


def _predictions(run_dir: Path, s: str) -> Path | None:
    """The per-image prediction CSV ``fakescope evaluate`` wrote for set ``s`` of a learning-curve run."""
    found = sorted((run_dir / "eval" / "predictions").glob("*.csv")) if s == "dfdc" else sorted(
        (run_dir / "cross" / "predictions").glob(f"*__{s}.csv")
    )  # fmt: skip
    return found[0] if found else None


def sbi_paired_table(rows: list[dict], out: Path, bootstrap: int = 2000) -> str:
    """SBI-trained minus DFDC-fake-trained AUC for each detector and set, from the same images, with a
    paired bootstrap 95 % interval over groups (source videos; one image each in the cross sets)."""
    from fakescope.errors import InputError
    from fakescope.eval.metrics import paired_bootstrap_auc_difference
    from fakescope.eval.predictions import paired_clean_scores

    order, base, sbi = _headline_runs(rows)
    sets = ["dfdc", *CROSS_SETS]
    lines = ["| detector | " + " | ".join(f"SBI − fakes, {SET_NAMES[s]} (paired 95% CI)" for s in sets) + " |",
             "| --- | " + " | ".join("---" for _ in sets) + " |"]  # fmt: skip
    for det in order:
        if det not in base or det not in sbi:
            continue
        cells = []
        for s in sets:
            pa = _predictions(out / "runs" / f"{det}__all__sbi", s)
            pb = _predictions(out / "runs" / f"{det}__all", s)
            if pa is None or pb is None:
                cells.append("—")
                continue
            try:
                labels, sa, sb, groups = paired_clean_scores(pa, pb)
            except InputError as err:
                cells.append(f"— ({err})")
                continue
            d = paired_bootstrap_auc_difference(labels, sa, sb, groups=groups, n=bootstrap)
            verdict = "SBI better" if d["ci_low"] > 0 else "SBI worse" if d["ci_high"] < 0 else "inside"
            cells.append(f"{d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] {verdict}")
        lines.append(f"| `{det}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detector_figure(rows: list[dict], cross: dict[str, list[dict]], path: Path) -> None:
    """Every detector's AUC with its 95 % interval on each test set (one panel per set), trained on
    DFDC fakes (circles) and with SBI fakes (squares): the headline table as a picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order, base, sbi = _headline_runs(rows)
    sets = ["dfdc", *CROSS_SETS]
    fig, axes = plt.subplots(1, len(sets), figsize=(11, 0.38 * len(order) + 1.4), sharey=True)
    for ax, s in zip(axes, sets, strict=True):
        for off, runs, marker, label in ((-0.15, base, "o", "DFDC fakes"), (0.15, sbi, "s", "SBI fakes")):
            for i, det in enumerate(order):
                m = _set_metrics(runs.get(det), cross).get(s)
                if not m:
                    continue
                ax.errorbar(m["auc"], i + off, xerr=[[m["auc"] - m["auc_ci_low"]], [m["auc_ci_high"] - m["auc"]]],
                            fmt=marker, color="C0" if marker == "o" else "C1", capsize=2, ms=4,
                            label=label if i == 0 or not ax.get_legend_handles_labels()[1].count(label) else None)  # fmt: skip
        ax.axvline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_title(SET_NAMES[s])
        ax.set_xlabel("AUC (95% bootstrap CI)")
    axes[0].set_yticks(range(len(order)), [f"{d} ({FAMILY.get(d, 'baseline')})" for d in order])
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    fig.legend(uniq.values(), uniq.keys(), loc="lower center", ncol=2, frameon=False)
    fig.suptitle("Every detector's CPU recipe, trained on the DFDC train split (configs/cpu)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    plt.close(fig)


def update_docs(out: Path, readme: Path, results: Path) -> None:
    """Write the generated tables into README (HEADLINE) and docs/results.md (HEADLINE, FULL_TABLE,
    SBI_PAIRED), and the figure to docs/images/detectors.png."""
    from fakescope.utils.docblocks import write_blocks

    rows = [json.loads(f.read_text()) for f in sorted(out.glob("runs/*/learning_curve_row.json"))]
    cross = cross_results(out)
    # README: the table; docs: the table with who is inside whom, the full table and the paired SBI table.
    write_blocks(readme, {"HEADLINE": headline_table(rows, cross, out, readme=True)})
    write_blocks(results, {"HEADLINE": headline_table(rows, cross, out),
                           "FULL_TABLE": full_table(rows, cross, variants=True),
                           "SBI_PAIRED": sbi_paired_table(rows, out)})  # fmt: skip
    detector_figure(rows, cross, results.parent / "images" / "detectors.png")


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
    p.add_argument("--headline", action="store_true",
                   help="print README's table (every detector trained on DFDC fakes and with SBI fakes, with "
                   "what is inside which interval) and the SBI-minus-fakes paired table, draw "
                   "OUT/detectors.png, and exit")  # fmt: skip
    p.add_argument("--update-docs", nargs=2, type=Path, metavar=("README", "RESULTS"),
                   help="write the generated tables between the markers of README.md and docs/results.md "
                   "and the figure to docs/images/detectors.png, and exit")  # fmt: skip
    p.add_argument("--no-variants", action="store_true",
                   help="with --full-table: the recipes' runs only, no tagged variants (README's table)")  # fmt: skip
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.update_docs:
        update_docs(out, *args.update_docs)
        return 0
    if args.headline:
        rows = [json.loads(f.read_text()) for f in sorted(out.glob("runs/*/learning_curve_row.json"))]
        cross = cross_results(out)
        print(headline_table(rows, cross, out))
        print()
        print(sbi_paired_table(rows, out))
        detector_figure(rows, cross, out / "detectors.png")
        return 0
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
