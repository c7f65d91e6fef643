"""AIRL Table IV: the DCT cutoff ``c`` of the frequency stream (AIRL (Parihar), §V-D, Table IV sweeps
c = 2-6; c zeroes the DCT coefficients with u < c and v < c in every 8×8 block), everything else fixed.

    python benchmarks/dct_cutoff_sweep.py --detector airl --cutoffs 2 3 4 5 6 --out runs/dct_cutoff \\
        [--cross ffhq-stylegan ciplab-photoshop] [--reference 4] [--set train.epochs=8 ...]

Protocol (fixed before any result was seen; nothing here is chosen on test):
- One run per cutoff of ``configs/cpu/<detector>.yaml`` on ``dfdc-faces`` with ``model.dct_cutoff=c``
  and the same ``--set`` overrides, seed and split (the default seeded 70/15/15 split by source
  video): the cutoff is the only difference between the runs. The val split picks the epoch and the
  threshold; the test split is the in-domain test. ``--set model.dct_cutoff=...`` is refused.
- Each run is scored by ``fakescope.eval.evaluate.evaluate_runs`` on the DFDC test split and on every
  ``--cross`` set (whole set; cross-dataset), with bootstrap 95 % intervals for AUC (``eval.bootstrap``
  resamples).
- Paired difference: every finished cutoff's DFDC test AUC minus that of the ``--reference`` cutoff
  (default: ``model.dct_cutoff`` of the config, 4 for AIRL) on the same test images, with a paired
  bootstrap over source videos (``fakescope.eval.metrics.paired_bootstrap_auc_difference``,
  ``--bootstrap`` resamples, seed 0) read from the runs' ``eval/predictions`` CSVs. It is computed
  whenever the table is made, so rows finished earlier get it too.
- Resumable: a finished cutoff (``OUT/runs/<detector>__c<c>/sweep_row.json``) is not run again (it must
  have been run with the same ``--set`` overrides); an interrupted one continues from its
  ``checkpoints/last``. A run cut by ``train.max_minutes`` is not evaluated: run again to continue it.
- Results: ``OUT/dct_cutoff_sweep.json`` (one row per finished cutoff, with ``paired_vs_reference``),
  ``OUT/dct_cutoff_sweep.png`` (AUC against c with 95 % intervals, one line per data set) and a
  Markdown table (``--markdown`` prints it for finished runs and exits; ``--update-docs
  docs/results.md`` writes it between that file's ``TABLE_IV`` markers, with the figure). "(cut)" marks
  a run that reached its epoch cap: budget-cut, not the method's result.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IN_DOMAIN = "dfdc-faces"
PLOT_LABELS = {IN_DOMAIN: "DFDC test", "ffhq-stylegan": "FFHQ-StyleGAN", "ciplab-photoshop": "CIPLAB"}


def run_dir(out: Path, detector: str, cutoff: int) -> Path:
    return out / "runs" / f"{detector}__c{cutoff}"


def set_name(spec: str) -> str:
    """The name ``evaluate_runs`` gives a ``--cross`` set (``fakescope.rows.datasets.resolve_dataset``):
    a folder's name, a ``manifest.csv``'s folder, or another CSV's stem."""
    p = Path(spec)
    if p.suffix.lower() == ".csv":
        return p.parent.name if p.name == "manifest.csv" else p.stem
    return p.name


def run_cutoff(
    detector: str, cutoff: int, data: Path, out: Path, overrides: list[str], device: str,
    cross: list[str], max_images: int | None,
) -> dict | None:  # fmt: skip
    """Train (or resume) and evaluate one cutoff; return its row (read back when already finished), or
    None when ``train.max_minutes`` cut the training (run again to continue it)."""
    from fakescope.config import load_config
    from fakescope.eval.evaluate import evaluate_runs
    from fakescope.train.trainer import train
    from fakescope.utils.atomic import atomic_write_json

    run = run_dir(out, detector, cutoff)
    row_file = run / "sweep_row.json"
    if row_file.is_file():
        row = json.loads(row_file.read_text())
        if row.get("overrides") != overrides:
            sys.exit(f"error: {run} was finished with --set {row.get('overrides')}, not {overrides}: use the "
                     "same overrides or another --out")  # fmt: skip
        return row
    manifest = data / IN_DOMAIN / "manifest.csv"
    cfg = load_config(
        REPO / "configs" / "cpu" / f"{detector}.yaml",
        [f"data.manifest={manifest}", f"device={device}", *overrides, f"model.dct_cutoff={cutoff}"],
    )
    resume = (run / "checkpoints" / "last.json").is_file()
    t0 = time.time()
    res = train(cfg, run, resume=resume)
    train_s = time.time() - t0
    if res.time_cut:
        print(f"{run}: train.max_minutes cut it after {res.epochs_run} epoch(s); not evaluated (run again to "
              "continue it)", file=sys.stderr, flush=True)  # fmt: skip
        return None
    specs = [str(manifest), *cross]
    summary = evaluate_runs(
        [run], specs, out_dir=run / "eval", split="auto", plots=False, device=device,
        data_root=data, max_images=max_images, progress=False,
    )  # fmt: skip
    # One run, clean images only: one record per spec, in order. Keyed by the names markdown() and
    # the plot look up (IN_DOMAIN, set_name(spec)), which are also the names evaluate_runs gives.
    recs = summary["cross_dataset"]
    names = [IN_DOMAIN, *(set_name(c) for c in cross)]
    sets = {n: {k: v for k, v in rec.items() if k != "run"} for n, rec in zip(names, recs, strict=True)}
    row = {
        "detector": detector, "dct_cutoff": cutoff, "metrics": sets, "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run, "epochs_budget": cfg.train.epochs, "stopped_early": res.stopped_early,
        "best_val_auc": res.best_val_auc, "train_seconds_this_call": round(train_s, 1), "resumed": resume,
        "overrides": overrides, "max_images": max_images, "eval_bootstrap": cfg.eval.bootstrap,
    }  # fmt: skip
    atomic_write_json(row_file, row)
    return row


def paired_difference(run: Path, ref_run: Path, reference: int, n: int) -> dict:
    """DFDC test AUC(run) - AUC(ref_run) on the same images, paired bootstrap over source videos."""
    from fakescope.eval.metrics import paired_bootstrap_auc_difference
    from fakescope.eval.predictions import paired_clean_scores

    labels, sa, sb, groups = paired_clean_scores(
        run / "eval" / "predictions" / f"{run.name}__{IN_DOMAIN}.csv",
        ref_run / "eval" / "predictions" / f"{ref_run.name}__{IN_DOMAIN}.csv",
    )
    res = paired_bootstrap_auc_difference(labels, sa, sb, groups=groups, n=n, seed=0)
    return {"reference": reference, "dataset": IN_DOMAIN, "n_images": len(labels),
            "n_groups": len(set(groups)), **res}  # fmt: skip


def with_differences(rows: list[dict], out: Path, reference: int, n: int) -> list[dict]:
    """``rows``, each with ``paired_vs_reference`` (None when its detector has no finished reference
    cutoff or the two runs' test images differ)."""
    from fakescope.errors import FakescopeError

    refs = {r["detector"]: r for r in rows if r["dct_cutoff"] == reference}
    done = []
    for r in rows:
        diff = None
        if r["detector"] in refs:
            try:
                diff = paired_difference(
                    run_dir(out, r["detector"], r["dct_cutoff"]),
                    run_dir(out, r["detector"], reference),
                    reference,
                    n,
                )
            except (OSError, ValueError, FakescopeError) as e:
                print(f"warning: no paired difference for {r['detector']} c={r['dct_cutoff']}: {e}",
                      file=sys.stderr)  # fmt: skip
        done.append({**r, "paired_vs_reference": diff})
    return done


def _auc_cell(m: dict | None) -> str:
    if not m:
        return "—"
    return f"{m['auc']:.3f} [{m['auc_ci_low']:.3f}, {m['auc_ci_high']:.3f}]"


def _diff_cell(d: dict | None) -> str:
    if not d:
        return "—"
    return f"{d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"


def markdown(rows: list[dict], cross: list[str], reference: int) -> str:
    """Table IV: one row per (detector, cutoff): DFDC test AUC and each cross set's AUC, with intervals,
    the paired DFDC test AUC difference against the reference cutoff, and "(cut)" where a run reached
    its epoch cap (budget-cut)."""
    from fakescope.train.trainer import budget_cut

    sets = [IN_DOMAIN, *[set_name(c) for c in cross]]
    lines = ["| detector | cutoff c | " + " | ".join(f"{s} AUC [95% CI]" for s in sets)
             + f" | Δ vs c={reference} (paired 95% CI) | best val AUC | epochs (best / run / budget) |",
             "| --- | --- | " + " | ".join("---" for _ in sets) + " | --- | --- | --- |"]  # fmt: skip
    for r in sorted(rows, key=lambda r: (r["detector"], r["dct_cutoff"])):
        cells = [_auc_cell(r["metrics"].get(s)) for s in sets]
        cut = budget_cut(
            epochs_run=r["epochs_run"], epochs_budget=r["epochs_budget"], stopped_early=r["stopped_early"]
        )
        lines.append(
            f"| `{r['detector']}` | {r['dct_cutoff']} | " + " | ".join(cells)
            + f" | {_diff_cell(r.get('paired_vs_reference'))}"
            + f" | {r['best_val_auc']:.3f} | {r['best_epoch']} / {r['epochs_run']} / {r['epochs_budget']}"
            + (" (cut)" if cut else "") + " |"
        )  # fmt: skip
    return "\n".join(lines)


def _half_widths(ms: list[dict]) -> list[list[float]]:
    """Error-bar lengths below and above each AUC (0 where the interval is missing, e.g. eval.bootstrap=0)."""

    def gap(a: float | None, b: float | None) -> float:
        return 0.0 if a is None or b is None or math.isnan(a) or math.isnan(b) else max(0.0, a - b)

    return [[gap(m["auc"], m["auc_ci_low"]) for m in ms], [gap(m["auc_ci_high"], m["auc"]) for m in ms]]


def plot(rows: list[dict], detector: str, cross: list[str], path: Path) -> None:
    """AUC against the cutoff, 95 % intervals as error bars, one line per data set; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fakescope.utils.atomic import atomic_open

    rows = sorted((r for r in rows if r["detector"] == detector), key=lambda r: r["dct_cutoff"])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, s in enumerate([IN_DOMAIN, *[set_name(c) for c in cross]]):
        have = [r for r in rows if r["metrics"].get(s)]
        if not have:
            continue
        ms = [r["metrics"][s] for r in have]
        x = [r["dct_cutoff"] + 0.06 * (k - 1) for r in have]  # dodge: intervals at one c stay readable
        ax.errorbar(x, [m["auc"] for m in ms], yerr=_half_widths(ms), marker="o", capsize=3,
                    label=PLOT_LABELS.get(s, s))  # fmt: skip
    ax.axhline(0.5, color="grey", lw=0.8, ls="--", label="chance")
    ax.set_xticks(sorted({r["dct_cutoff"] for r in rows}))
    ax.set_xlabel("DCT cutoff c (coefficients with u < c and v < c zeroed)")
    ax.set_ylabel("AUC (95% bootstrap CI)")
    budgets = "/".join(str(b) for b in sorted({r["epochs_budget"] for r in rows}))
    ax.set_ylim(0.0, 1.02)
    ax.set_title(f"{detector}: AUC vs DCT cutoff (AIRL Table IV), training budget {budgets} epoch(s)")
    ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    p.add_argument("--detector", default="airl", help="an AIRL-family detector with a DCT stream")
    p.add_argument("--cutoffs", nargs="+", type=int, default=[2, 3, 4, 5, 6])
    p.add_argument(
        "--cross", nargs="*", default=["ffhq-stylegan", "ciplab-photoshop"],
        help="cross-dataset sets scored whole (names under --data, folders or manifests)",
    )  # fmt: skip
    p.add_argument(
        "--reference", type=int, default=None,
        help="cutoff the paired differences are against (default: the config's model.dct_cutoff)",
    )  # fmt: skip
    p.add_argument(
        "--bootstrap", type=int, default=2000, help="paired bootstrap resamples (over source videos)"
    )
    p.add_argument("--out", default=str(REPO / "runs" / "dct_cutoff"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-images", type=int, default=None, help="cap on images scored per set (smoke runs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--markdown", action="store_true", help="print the table of finished cutoffs and exit")
    p.add_argument("--update-docs", type=Path, metavar="RESULTS",
                   help="write the table of finished cutoffs between the TABLE_IV markers of RESULTS "
                   "(docs/results.md) and the figure to its images/dct_cutoff_sweep.png, and exit")  # fmt: skip
    args = p.parse_args(argv)
    out = Path(args.out)
    if any(o.split("=", 1)[0].strip() == "model.dct_cutoff" for o in args.overrides):
        p.error("model.dct_cutoff is what the sweep sets: use --cutoffs")
    reference = args.reference
    if reference is None:
        from fakescope.config import load_config

        reference = load_config(REPO / "configs" / "cpu" / f"{args.detector}.yaml").model.dct_cutoff

    def finished() -> list[dict]:
        rows = [json.loads(f.read_text()) for f in sorted(out.glob("runs/*/sweep_row.json"))]
        return with_differences(rows, out, reference, args.bootstrap)

    if args.markdown:
        print(markdown(finished(), args.cross, reference))
        return 0
    if args.update_docs:
        from fakescope.utils.docblocks import write_blocks

        rows = finished()
        if not rows:
            sys.exit(f"error: no finished cutoff under {out}/runs: nothing to write")
        plot(rows, args.detector, args.cross, args.update_docs.parent / "images" / "dct_cutoff_sweep.png")
        figure = "![AUC against the DCT cutoff](images/dct_cutoff_sweep.png)"
        write_blocks(args.update_docs, {"TABLE_IV": markdown(rows, args.cross, reference) + "\n\n" + figure})
        return 0
    if (
        reference not in args.cutoffs
        and not run_dir(out, args.detector, reference).joinpath("sweep_row.json").is_file()
    ):
        print(f"note: the reference c={reference} is not swept: no paired differences", file=sys.stderr)
    from fakescope.utils.atomic import atomic_write_json

    rows: list[dict] = []
    for c in args.cutoffs:
        print(f"== {args.detector} dct_cutoff={c}", flush=True)
        run_cutoff(
            args.detector, c, Path(args.data), out, args.overrides, args.device, args.cross, args.max_images
        )
        rows = finished()
        atomic_write_json(out / "dct_cutoff_sweep.json", rows)
        if rows:
            plot(rows, args.detector, args.cross, out / "dct_cutoff_sweep.png")
    print(markdown(rows, args.cross, reference))
    return 0


if __name__ == "__main__":
    sys.exit(main())
