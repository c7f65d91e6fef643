"""Leave-one-source-out transfer: train on all shared sources but one, test on the one left out.

    python benchmarks/transfer.py --detectors airl srm npr --recipe base --out runs/transfer
    python benchmarks/transfer.py --detectors airl srm npr --recipe balanced --set train.balance_sources=true
    python benchmarks/transfer.py --detectors airl srm npr --recipe blur --set train.augment.blur_p=0.5
    python benchmarks/transfer.py --out runs/transfer --baseline base --table-only \
        [--ensemble airl srm npr] [--update-docs docs/results.md]

A detector that has seen a manipulation is tested on its own kind by every in-domain number; what a user
meets is a manipulation it has not seen. Protocol (fixed before any result was seen):

- Each shared source (``dfdc-faces``, ``ffhq-stylegan``, ``ciplab-photoshop``) is split by group with
  the default seeded 70/15/15 split, exactly as ``scripts/train_shipped.py`` (whose ``build_manifests``
  this calls) and ``fakescope train`` split it, so every test split is the one a single-source run is
  tested on. Groups are prefixed by source, so no two sources share one.
- Column ``S`` (one per source): train on the **other** sources' train splits; their pooled val splits
  choose the epoch and the threshold; test on ``S``'s test split. No row of ``S`` is in the run's
  manifest. Each run is also scored on the other sources' test splits (in-domain): the table shows the
  DFDC test AUC of the two runs that trained on DFDC beside the left-out ones.
- Column ``sbi``: the real faces of all three sources' train and val splits alone, with self-blended
  fakes (``train.synthetic_fakes=sbi``, validation on val reals and their blends), tested on all three
  test splits: no real fake takes part in training or selection, so every source is unseen.
- A recipe is a name plus its ``--set`` overrides on ``CONFIG_DIR/<detector>.yaml`` (a lever such as
  ``train.balance_sources=true`` is one recipe); a name keeps its overrides (a second call with other
  overrides under the same name is refused). Paired bootstrap differences (over groups, on the same
  test images) compare each recipe with ``--baseline``.

- Ensembles (``--ensemble DET DET ...``, lever 5): every left-out cell also saves its scores on its own
  pooled val split (``val_predictions.csv``). Per left-out column, each member's temperature is fitted
  and the members are chosen on those val scores alone (:mod:`fakescope.eval.ensemble`: a larger subset
  only when its paired val interval is above zero), and the mean of calibrated log-odds is scored on
  every test split as cell ``ensemble-<dets>__<recipe>__<column>``, compared with its first member on
  the same test images.

Resumable: a finished (detector, recipe, column) cell is ``OUT/runs/<det>__<recipe>__<column>/
transfer_row.json`` and a rerun skips it; an interrupted training resumes from its last checkpoint.
Outputs: ``OUT/transfer.json`` (every finished cell and the paired differences), ``OUT/transfer.md``
(the tables) and ``OUT/transfer.png`` (left-out AUC per source per recipe with 95 % intervals).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("dfdc-faces", "ffhq-stylegan", "ciplab-photoshop")
SBI = "sbi"
COLUMNS = (*SOURCES, SBI)
SHORT = {"dfdc-faces": "DFDC", "ffhq-stylegan": "FFHQ-StyleGAN", "ciplab-photoshop": "CIPLAB"}
VAL_PREDICTIONS = "val_predictions.csv"
#: Speed only, the same for every detector: crops decoded once into the shared cache (the same pixels
#: bit for bit, data.crop_cache), read by one persistent worker. A recipe may override them.
SPEED = ("data.crop_cache=true", f"data.crop_cache_dir={REPO / 'cache' / 'crops'}", "data.num_workers=1",
         "data.persistent_workers=true")  # fmt: skip
METRIC_KEYS = ("n", "auc", "auc_ci_low", "auc_ci_high", "acc_val_threshold")


def _train_shipped():
    """scripts/train_shipped.py as a module (scripts/ is not a package)."""
    path = REPO / "scripts" / "train_shipped.py"
    spec = importlib.util.spec_from_file_location("fakescope_train_shipped", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_of(row) -> str:
    """The source folder of a pooled row (its group is ``<folder>:<group>``)."""
    return row.group.split(":", 1)[0]


def build_manifests(data: Path, out: Path) -> dict[str, dict[str, Path]]:
    """``{"train": {column: manifest}, "test": {source: manifest}}``: one training manifest (train and
    val splits) per column and the per-source test manifests of ``train_shipped.build_manifests``."""
    from fakescope.data.manifest import read_manifest, write_manifest

    folder = out / "manifests"
    shipped = _train_shipped().build_manifests(data, folder)
    pooled = [r for r in read_manifest(shipped["pooled"]) if source_of(r) in SOURCES]
    fit = [r for r in pooled if r.split in ("train", "val")]
    train: dict[str, Path] = {}
    for left_out in SOURCES:
        rows = [r for r in fit if source_of(r) != left_out]
        train[left_out] = write_manifest(rows, folder / f"without_{left_out}.csv", relative_to="/")
    # SBI: real faces only (the trainer would drop the fakes; listing none says what trained).
    train[SBI] = write_manifest([r for r in fit if r.label == 0], folder / "reals_sbi.csv", relative_to="/")
    return {"train": train, "test": {s: shipped[f"test_{s}"] for s in SOURCES}}


def check_recipe(out: Path, recipe: str, overrides: list[str]) -> None:
    """A recipe name stands for one set of overrides: record it, or refuse a different one."""
    from fakescope.utils.atomic import atomic_write_text

    path = out / "recipes" / f"{recipe}.json"
    if path.is_file():
        known = json.loads(path.read_text())["overrides"]
        if known != overrides:
            raise SystemExit(f"error: recipe {recipe!r} was run with --set {' '.join(known) or '(none)'}; "
                             f"give this one another --recipe name")  # fmt: skip
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"recipe": recipe, "overrides": overrides}, indent=2))


def run_cell(det: str, recipe: str, column: str, manifests: dict, args: argparse.Namespace) -> dict:
    """Train (or resume) one cell and score it on every source's test split; skip a finished cell."""
    from fakescope.config import load_config
    from fakescope.eval.evaluate import evaluate_runs
    from fakescope.train.trainer import train
    from fakescope.utils.atomic import atomic_write_text

    run = Path(args.out) / "runs" / f"{det}__{recipe}__{column}"
    row_file = run / "transfer_row.json"
    if row_file.is_file():
        return {**json.loads(row_file.read_text()), "trained_this_call": False}
    sbi = ["train.synthetic_fakes=sbi"] if column == SBI else []
    cfg = load_config(Path(args.config_dir) / f"{det}.yaml",
                      [f"data.manifest={manifests['train'][column]}", f"device={args.device}", *SPEED, *sbi,
                       *args.overrides])  # fmt: skip
    t0 = time.time()
    resume = (run / "checkpoints" / "last.json").is_file()
    res = train(cfg, run, resume=resume)
    train_s = time.time() - t0
    tests = [str(manifests["test"][s]) for s in SOURCES]
    summary = evaluate_runs([run], tests, out_dir=run / "eval", split="test", plots=False, device=args.device,
                            progress=False, bootstrap=args.bootstrap)  # fmt: skip
    per = {
        r["dataset"].removeprefix("test_"): {k: r[k] for k in METRIC_KEYS} for r in summary["cross_dataset"]
    }
    if column != SBI:
        val_predictions(run, manifests["train"][column], args.device)
    row = {"detector": det, "recipe": recipe, "column": column, "overrides": args.overrides + sbi,
           "trained_on": [s for s in SOURCES if s != column] if column != SBI else [f"{s} (reals)" for s in SOURCES],
           "test": per, "best_epoch": res.best_epoch, "epochs_run": res.epochs_run,
           "epochs_budget": cfg.train.epochs, "stopped_early": res.stopped_early, "time_cut": res.time_cut,
           "best_val_auc": res.best_val_auc, "train_seconds_this_call": round(train_s, 1), "resumed": resume,
           "config": str(Path(args.config_dir).resolve())}  # fmt: skip
    atomic_write_text(row_file, json.dumps(row, indent=2))
    return {**row, "trained_this_call": True}


def val_predictions(run: Path, train_manifest: Path, device: str) -> Path:
    """The run's scores on its own pooled val split, ``run/val_predictions.csv`` (the predictions format
    of :mod:`fakescope.eval.predictions`, each row with its video), written once: what an ensemble of
    left-out cells calibrates and chooses its members on (never the left-out source's faces). A file in
    the older four-column format (path, label, score, group: no video) is scored again."""
    from fakescope.eval.calibrate import score_split
    from fakescope.eval.predictions import PREDICTION_COLUMNS, PredictionWriter

    path = run / VAL_PREDICTIONS
    if path.is_file():
        with path.open(newline="") as f:
            if tuple(next(csv.reader(f), ())) == PREDICTION_COLUMNS:
                return path
        print(f"{path}: older format without videos; scoring the val split again", flush=True)
    rows, scores = score_split(run, train_manifest, "val", device=device)
    with PredictionWriter(path) as w:
        w.write_many(rows, scores.scores)
    return path


def finished_rows(out: Path) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted(out.glob("runs/*/transfer_row.json"))]


def _key(rows: list[dict]) -> dict[tuple[str, str, str], dict]:
    return {(r["detector"], r["recipe"], r["column"]): r for r in rows}


def _predictions(out: Path, det: str, recipe: str, column: str, source: str) -> Path | None:
    run = f"{det}__{recipe}__{column}"
    found = sorted((out / "runs" / run / "eval" / "predictions").glob(f"*__test_{source}.csv"))
    return found[0] if found else None


def paired_differences(out: Path, rows: list[dict], baseline: str, n: int) -> list[dict]:
    """Each recipe minus ``baseline`` on the same test images, per detector, column and unseen source
    (the left-out source; every source for ``sbi``), with a paired bootstrap 95 % interval over groups."""
    from fakescope.errors import InputError
    from fakescope.eval.metrics import paired_bootstrap_auc_difference
    from fakescope.eval.predictions import paired_clean_scores

    cells = _key(rows)
    diffs = []
    for det, recipe, column in sorted(cells):
        if recipe == baseline or (det, baseline, column) not in cells:
            continue
        for source in SOURCES if column == SBI else (column,):
            pa = _predictions(out, det, recipe, column, source)
            pb = _predictions(out, det, baseline, column, source)
            if pa is None or pb is None:
                continue
            rec = {
                "detector": det,
                "recipe": recipe,
                "baseline": baseline,
                "column": column,
                "source": source,
            }
            try:
                labels, sa, sb, groups = paired_clean_scores(pa, pb)
            except InputError as err:
                diffs.append({**rec, "error": str(err)})
                continue
            d = paired_bootstrap_auc_difference(labels, sa, sb, groups=groups, n=n)
            diffs.append({**rec, **{k: float(v) for k, v in d.items()}})
    return diffs


def _joined(
    files: dict[str, Path],
) -> tuple[np.ndarray, dict[str, np.ndarray], list[str], list[str], list[str]]:
    """Labels, each member's scores, and the groups, paths and video keys (the first member's) of the
    images every member scored, in one order."""
    from fakescope.errors import InputError
    from fakescope.eval.predictions import clean_by_image

    tables = {m: clean_by_image(f) for m, f in files.items()}
    keys = sorted(set.intersection(*(set(t) for t in tables.values())))
    first = next(iter(tables.values()))
    if not keys or any(len(t) != len(keys) for t in tables.values()):
        raise InputError(
            f"the runs scored different images ({', '.join(f'{m}: {len(t)}' for m, t in tables.items())})"
        )
    if any(t[k].label != first[k].label for t in tables.values() for k in keys):
        raise InputError("the runs disagree on labels: not the same data")
    labels = np.array([first[k].label for k in keys], dtype=np.int64)
    scores = {m: np.array([t[k].score for k in keys]) for m, t in tables.items()}
    rows = [first[k] for k in keys]
    return labels, scores, [p.group for p in rows], [p.path for p in rows], [p.video_key for p in rows]


def ensemble_cells(out: Path, members: list[str], recipe: str, n: int, device: str = "cpu") -> list[str]:
    """Lever 5: for each left-out column whose cells ``members`` (under ``recipe``) have all finished, an
    ensemble cell ``ensemble-<members>__<recipe>__<column>``: each member's temperature fitted and the
    subset chosen on the cell's own pooled val split (:mod:`fakescope.eval.ensemble`), then the mean of
    calibrated log-odds scored on every test split, written as a run's predictions and
    ``transfer_row.json`` so the tables read it like any cell. The threshold is the val EER's. Returns
    the columns written."""
    from fakescope.eval.ensemble import choose_members, combine
    from fakescope.eval.metrics import accuracy, auc, bootstrap_auc_ci, choose_threshold
    from fakescope.eval.predictions import PredictionWriter
    from fakescope.utils.atomic import atomic_write_text

    det = "ensemble-" + "-".join(members)
    written = []
    for column in SOURCES:
        runs = {m: out / "runs" / f"{m}__{recipe}__{column}" for m in members}
        if not all((r / "transfer_row.json").is_file() for r in runs.values()):
            continue
        manifest = out / "manifests" / f"without_{column}.csv"
        val_files = {m: val_predictions(r, manifest, device) for m, r in runs.items()}
        labels, val, groups, *_ = _joined(val_files)
        choice = choose_members(val, labels, groups, bootstrap=n)
        threshold = choose_threshold(labels, choice.predict(val))
        run = out / "runs" / f"{det}__{recipe}__{column}"
        per, every = {}, {}
        for source in SOURCES:
            files = {m: _predictions(out, m, recipe, column, source) for m in members}
            if any(f is None for f in files.values()):
                continue
            y, test, g, paths, videos = _joined(files)  # type: ignore[arg-type]
            p = choice.predict(test)
            every[source] = auc(y, combine(test, choice.temperatures))
            lo, hi = bootstrap_auc_ci(y, p, groups=videos, n=n)  # over videos, as evaluate's frame-level CI
            per[source] = {"n": int(y.size), "auc": auc(y, p), "auc_ci_low": lo, "auc_ci_high": hi,
                           "acc_val_threshold": accuracy(y, p, threshold)}  # fmt: skip
            with PredictionWriter(run / "eval" / "predictions" / f"{det}__test_{source}.csv") as w:
                for path, label, score, group, video in zip(paths, y, p, g, videos, strict=True):
                    w.write(
                        path,
                        int(label),
                        float(score),
                        group=group,
                        video=video,
                        dataset=source,
                        perturbation="clean",
                    )
        row = {"detector": det, "recipe": recipe, "column": column, "kind": "ensemble", "members": members,
               "trained_on": [s for s in SOURCES if s != column], "test": per, "ensemble": choice.as_dict(),
               "every_member": {"val_auc": choice.val_auc["+".join(members)], "test_auc": every},
               "val_threshold": threshold}  # fmt: skip
        atomic_write_text(run / "transfer_row.json", json.dumps(row, indent=2))
        written.append(column)
    return written


def ensemble_differences(out: Path, rows: list[dict], n: int) -> list[dict]:
    """Each ensemble cell minus its first member (the detector it would replace) on the same test
    images of the left-out source and of DFDC in domain, paired over groups."""
    from fakescope.eval.metrics import paired_bootstrap_auc_difference

    diffs = []
    for r in rows:
        if r.get("kind") != "ensemble":
            continue
        first = r["members"][0]
        for source in dict.fromkeys((r["column"], "dfdc-faces")):  # in a fixed order
            pa = _predictions(out, r["detector"], r["recipe"], r["column"], source)
            pb = _predictions(out, first, r["recipe"], r["column"], source)
            if pa is None or pb is None:
                continue
            y, sc, g, *_ = _joined({"a": pa, "b": pb})
            d = paired_bootstrap_auc_difference(y, sc["a"], sc["b"], groups=g, n=n)
            diffs.append({"detector": r["detector"], "baseline": first, "recipe": r["recipe"],
                          "column": r["column"], "source": source, "chosen": "+".join(r["ensemble"]["members"]),
                          **{k: float(v) for k, v in d.items()}})  # fmt: skip
    return diffs


def _cell(m: dict | None) -> str:
    if not m:
        return "—"
    return f"{m['auc']:.3f} [{m['auc_ci_low']:.2f}, {m['auc_ci_high']:.2f}]"


def summarise(rows: list[dict]) -> list[dict]:
    """One record per (detector, recipe): left-out AUCs, their mean (over the sources finished), the
    in-domain DFDC AUCs and the SBI column's AUCs."""
    cells = _key(rows)
    pairs = sorted({(d, r) for d, r, _ in cells})
    out = []
    for det, recipe in pairs:
        left_out = {s: cells[(det, recipe, s)]["test"].get(s) for s in SOURCES if (det, recipe, s) in cells}
        in_domain = {f"without {s}": cells[(det, recipe, s)]["test"].get("dfdc-faces")
                     for s in SOURCES[1:] if (det, recipe, s) in cells}  # fmt: skip
        sbi = cells.get((det, recipe, SBI))
        aucs = [m["auc"] for m in left_out.values() if m]
        out.append({"detector": det, "recipe": recipe, "left_out": left_out,
                    "mean_left_out_auc": sum(aucs) / len(aucs) if aucs else None,
                    "mean_over": len(aucs), "in_domain_dfdc": in_domain,
                    "sbi": sbi["test"] if sbi else {}})  # fmt: skip
    return out


def markdown(summary: list[dict], diffs: list[dict], baseline: str) -> str:
    """The transfer table (AUC [95 % CI] per left-out source, their mean, in-domain DFDC, SBI per source)
    and the paired table against ``baseline``."""
    head = ["detector", "recipe", *(f"left out: {SHORT[s]}" for s in SOURCES), "mean left-out",
            "in-domain DFDC (runs w/o FFHQ / w/o CIPLAB)", *(f"SBI: {SHORT[s]}" for s in SOURCES)]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for rec in summary:
        mean = rec["mean_left_out_auc"]
        mean_cell = (
            "—"
            if mean is None
            else f"{mean:.3f}" + ("" if rec["mean_over"] == 3 else f" (of {rec['mean_over']})")
        )
        dom = " / ".join(f"{m['auc']:.3f}" if m else "—" for m in (rec["in_domain_dfdc"].get(f"without {s}")
                                                                   for s in SOURCES[1:]))  # fmt: skip
        cells = [f"`{rec['detector']}`", rec["recipe"], *(_cell(rec["left_out"].get(s)) for s in SOURCES),
                 mean_cell, dom, *(_cell(rec["sbi"].get(s)) for s in SOURCES)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    paired = [d for d in diffs if "error" not in d]
    if paired:
        lines += ["", f"Paired differences, recipe − `{baseline}` on the same test images (AUC, 95 % bootstrap "
                  "interval over groups):", "", "| detector | recipe | column | test source | difference | verdict |",
                  "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for d in paired:
            verdict = "better" if d["ci_low"] > 0 else "worse" if d["ci_high"] < 0 else "inside"
            column = "SBI" if d["column"] == SBI else f"left out {SHORT[d['column']]}"
            lines.append(f"| `{d['detector']}` | {d['recipe']} | {column} | {SHORT[d['source']]} | "
                         f"{d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] | {verdict} |")  # fmt: skip
    return "\n".join(lines)


def ensemble_markdown(rows: list[dict], diffs: list[dict]) -> str:
    """The ensembles' table: per left-out source, the members chosen on val, the val evidence for them,
    and the chosen ensemble minus its first member on the same test images."""
    ens = [r for r in rows if r.get("kind") == "ensemble"]
    if not ens:
        return ""
    lines = ["", "Ensembles (mean of calibrated log-odds; members and temperatures chosen on each run's pooled val "
             "split), minus their first member on the same test images:", "",
             "| ensemble | recipe | left out | chosen on val | val AUC: chosen / best single (paired) | "
             "left-out AUC − first member | DFDC in domain − first member | every member, not chosen: val / left-out AUC |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in ens:
        e = r["ensemble"]
        v = e["vs_best_single"]
        val = (f"{e['val_auc']['+'.join(e['members'])]:.3f} / {e['val_auc'][e['best_single']]:.3f} "
               f"({e['best_single']}; {v['difference']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}])")  # fmt: skip
        em = r.get("every_member", {})
        left = em.get("test_auc", {}).get(r["column"])
        every = "—" if left is None else f"{em['val_auc']:.3f} / {left:.3f}"
        cells = []
        for i, source in enumerate((r["column"], "dfdc-faces")):
            d = next((d for d in diffs if d["detector"] == r["detector"] and d["recipe"] == r["recipe"]
                      and d["column"] == r["column"] and d["source"] == source), None)  # fmt: skip
            cells.append("—" if d is None or (i == 1 and r["column"] == "dfdc-faces") else
                         f"{d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]")  # fmt: skip
        lines.append(f"| `{r['detector']}` | {r['recipe']} | {SHORT[r['column']]} | {'+'.join(e['members'])} | "
                     f"{val} | {cells[0]} | {cells[1]} | {every} |")  # fmt: skip
    return "\n" + "\n".join(lines)


def figure(summary: list[dict], path: Path) -> None:
    """Two panels, AUC with its 95 % interval per test source (x) and per detector and recipe (colour):
    the left-out columns (trained on the other two sources) and the SBI column (trained on reals only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("left_out", "left out (trained on the other two sources)"),
              ("sbi", "SBI column (trained on reals and their self-blends)")]  # fmt: skip
    panels = [(k, t) for k, t in panels if any(r[k] for r in summary)]
    series = [r for r in summary if any(r[k] for k, _ in panels)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.0), sharey=True, squeeze=False)
    for ax, (key, title) in zip(axes[0], panels, strict=True):
        here = [(k, rec) for k, rec in enumerate(series) if rec[key]]  # colours stay the same in both panels
        for j, (k, rec) in enumerate(here):
            pts = [(i, rec[key][s]) for i, s in enumerate(SOURCES) if rec[key].get(s)]
            x = [i + (j - (len(here) - 1) / 2) * 0.8 / len(here) for i, _ in pts]
            y = [m["auc"] for _, m in pts]
            err = [
                [m["auc"] - m["auc_ci_low"] for _, m in pts],
                [m["auc_ci_high"] - m["auc"] for _, m in pts],
            ]
            ax.errorbar(
                x,
                y,
                yerr=err,
                fmt="o",
                capsize=3,
                color=f"C{k}",
                label=f"{rec['detector']} · {rec['recipe']}",
            )
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_xticks(range(len(SOURCES)), [SHORT[s] for s in SOURCES])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("test source (never trained on)")
    axes[0][0].set_ylabel("test AUC (95% bootstrap CI)")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), frameon=False, fontsize=8)
    rows = -(-len(labels) // 3) if labels else 0
    fig.tight_layout(rect=(0, 0.05 + 0.045 * rows, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def write_outputs(out: Path, baseline: str, bootstrap: int, trained: list[str]) -> dict:
    """transfer.json, transfer.md and transfer.png from every finished cell under ``out``."""
    from fakescope.utils.atomic import atomic_write_text

    rows = finished_rows(out)
    summary = summarise(rows)
    diffs = paired_differences(out, rows, baseline, bootstrap)
    ens = ensemble_differences(out, rows, bootstrap)
    result = {"protocol": "leave-one-source-out", "sources": list(SOURCES), "baseline": baseline,
              "summary": summary, "paired": diffs, "ensembles": ens, "cells": rows,
              "trained_this_call": trained}  # fmt: skip
    atomic_write_text(out / "transfer.json", json.dumps(result, indent=2))
    atomic_write_text(
        out / "transfer.md", markdown(summary, diffs, baseline) + ensemble_markdown(rows, ens) + "\n"
    )
    if summary:
        figure(summary, out / "transfer.png")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--detectors", nargs="+", default=["airl"])
    p.add_argument("--recipe", default="base", help="name of this set of --set overrides (a run-folder part)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--baseline", default="base", help="recipe the paired differences are taken against")
    p.add_argument("--columns", nargs="+", choices=COLUMNS, default=list(COLUMNS),
                   help="which cells to train this call (default: all four)")  # fmt: skip
    p.add_argument("--out", default=str(REPO / "runs" / "transfer"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--config-dir", default=str(REPO / "configs" / "cpu"))
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of each interval")
    p.add_argument("--ensemble", nargs="+", metavar="DETECTOR",
                   help="lever 5: also an ensemble of these detectors' finished left-out cells (under "
                        "--ensemble-recipe), members chosen on val")  # fmt: skip
    p.add_argument("--ensemble-recipe", help="the members' recipe (default: --baseline)")
    p.add_argument(
        "--table-only", action="store_true", help="write the outputs from finished cells; train nothing"
    )
    p.add_argument("--update-docs", type=Path, metavar="RESULTS_MD",
                   help="write the table between the <!-- TRANSFER --> markers of this file")  # fmt: skip
    args = p.parse_args(argv)
    out = Path(args.out)
    trained: list[str] = []
    if not args.table_only:
        unknown = [d for d in args.detectors if not (Path(args.config_dir) / f"{d}.yaml").is_file()]
        if unknown:
            raise SystemExit(
                f"error: no recipe {Path(args.config_dir) / (unknown[0] + '.yaml')} for detector {unknown[0]!r}"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*(_[A-Za-z0-9.-]+)*", args.recipe):
            raise SystemExit(f"error: --recipe {args.recipe!r}: use letters, digits, '.', '-' and single '_'")
        check_recipe(out, args.recipe, args.overrides)
        manifests = build_manifests(Path(args.data), out)
        for det in args.detectors:
            for column in args.columns:
                print(f"== {det} [{args.recipe}] {column}", flush=True)
                row = run_cell(det, args.recipe, column, manifests, args)
                if row["trained_this_call"]:
                    trained.append(f"{det}__{args.recipe}__{column}")
                write_outputs(out, args.baseline, args.bootstrap, trained)
    if args.ensemble:
        if len(args.ensemble) < 2:
            raise SystemExit("error: --ensemble needs at least two detectors")
        recipe = args.ensemble_recipe or args.baseline
        from fakescope.errors import InputError

        try:
            done = ensemble_cells(out, args.ensemble, recipe, args.bootstrap, args.device)
        except InputError as err:
            raise SystemExit(f"error: ensemble {'+'.join(args.ensemble)} [{recipe}]: {err}") from None
        print(
            f"ensemble {'+'.join(args.ensemble)} [{recipe}]: left-out cells {', '.join(done) or 'none (members unfinished)'}"
        )
    result = write_outputs(out, args.baseline, args.bootstrap, trained)
    print(markdown(result["summary"], result["paired"], args.baseline))
    if args.update_docs:
        from fakescope.utils.docblocks import write_blocks

        write_blocks(args.update_docs, {"TRANSFER": (out / "transfer.md").read_text()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
