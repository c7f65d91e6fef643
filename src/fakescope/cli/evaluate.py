"""`fakescope evaluate`: metrics from a predictions CSV (``--predictions``), or a trained run scored on
datasets (``--run`` + ``--data``, optionally ``--robustness``).

Each mode is one function (``run_predictions``, ...); ``run`` picks the mode from the arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fakescope.cli.common import add_shard_argument, nonneg_int, positive_int, probability, shard_done
from fakescope.errors import InputError

DESCRIPTION = """Evaluate detector scores.

  fakescope evaluate --predictions run/predictions/test.csv --val-predictions run/predictions/val.csv

reads a predictions CSV (one row per frame: path,label,score,group,video,dataset,method,perturbation),
and prints and saves AUC (with a bootstrap 95% interval), AP, EER and accuracy, at frame level and at
video level (mean frame score per full video id), per dataset and perturbation. Accuracy is given at
0.5 and at a threshold chosen on validation predictions (--val-predictions, rule --threshold-rule)
or given directly (--threshold); the test set never chooses its own threshold.

  fakescope evaluate --run runs/airl --data dfdc-faces --data ffhq-stylegan [--robustness] [--out DIR]

scores a trained run (its best checkpoint, picked on validation) on each --data: a folder name under
--data-root (default ../shared/data), any folder with manifest.csv or real/ + fake/, or a manifest
CSV. The run's own training data is scored on its test split only; other sets whole. Writes
predictions/<run>__<data>[__<perturbation>].csv (streamed), metrics/cross_dataset.{md,csv,json}
(frame and video level, AUC with bootstrap 95% CI, AP, EER, accuracy at the validation threshold and
at 0.5), with --robustness metrics/robustness.{md,csv,json} (blur sigma 2/3, JPEG Q 70/50/20, blur +
JPEG, each with its drop from clean), and plots/roc__<data>.png (all --run on one figure) and
plots/tsne__<run>__<data>.png. Give --run several times to compare runs.

Sharded (docs/scale.md): under torchrun each rank scores every WORLD_SIZE-th batch of each dataset and
rank 0 writes the predictions, metrics and plots when all ranks are done; with --shard K/N (K from 0,
e.g. a Slurm array task) one process scores its share into OUT/shards/K-of-N/ and `fakescope merge
OUT` writes them once every shard is done. Metrics are computed once, on the merged predictions.
Under torchrun write `torchrun ... -m fakescope -- evaluate --run ...`: without the `--`, torchrun's
own parser takes --run for its --run-path.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--predictions", metavar="FILE", help="predictions CSV to evaluate")
    thr = p.add_mutually_exclusive_group()
    thr.add_argument(
        "--val-predictions",
        metavar="FILE",
        help="validation predictions CSV: the accuracy threshold is chosen on it",
    )
    thr.add_argument(
        "--threshold", type=probability, metavar="T", help="fixed threshold for accuracy (score >= T is fake)"
    )
    p.add_argument(
        "--threshold-rule",
        choices=("eer", "youden", "max_accuracy"),
        default="eer",
        help="how --val-predictions chooses the threshold: eer (FPR = FNR), youden (max TPR - FPR) or "
        "max_accuracy (the most accurate on validation; ties: the lowest); default eer",
    )
    p.add_argument(
        "--bootstrap",
        type=nonneg_int,
        default=1000,
        metavar="N",
        help="bootstrap resamples for the AUC interval (0: none)",
    )
    p.add_argument("--seed", type=nonneg_int, default=0, help="bootstrap seed")
    p.add_argument("--run", dest="runs", action="append", default=[], metavar="RUN",
                   help="trained run directory or checkpoint (repeatable)")  # fmt: skip
    p.add_argument("--data", dest="datasets", action="append", default=[], metavar="NAME_OR_MANIFEST",
                   help="dataset to score the run(s) on (repeatable)")  # fmt: skip
    p.add_argument("--data-root", default=None, help="folder of named datasets (default: ../shared/data)")
    p.add_argument(
        "--robustness", action="store_true", help="add the perturbation sweep (eval.perturbations)"
    )
    p.add_argument("--split", default="auto", choices=["auto", "all", "train", "val", "test"],
                   help="rows to score: auto = test split of the run's training data, else everything")  # fmt: skip
    p.add_argument("--max-images", type=positive_int, default=None, metavar="N",
                   help="score at most N images per dataset (class-stratified, seeded)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--no-plots", action="store_true", help="skip the ROC and t-SNE figures")
    add_shard_argument(p, "batches of each --data (with --run)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where to write <name>.md/.json/.csv (default: the run's metrics/ folder for "
        "run/predictions/<name>.csv, else the predictions file's folder)",
    )


def default_out_dir(predictions: Path) -> Path:
    parent = predictions.resolve().parent
    return parent.parent / "metrics" if parent.name == "predictions" else parent


def run_predictions(args: argparse.Namespace) -> int:
    # Imported here so that `fakescope --help` does not pay for scikit-learn and torch.
    from fakescope.eval.predictions import metrics_from_predictions, thresholds_from_predictions
    from fakescope.eval.report import markdown_table, write_report
    from fakescope.utils.paths import not_a_file_reason, require_output_dir
    from fakescope.utils.text import one_line

    pred = Path(args.predictions)
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0 (got {args.bootstrap})")
    if args.out:
        require_output_dir(args.out, "--out")
    elif not_a_file_reason(pred) is None:  # else reading it names what is wrong with it
        require_output_dir(default_out_dir(pred), "the output folder")
    threshold: float | dict[str, float] | None = args.threshold
    source = f"--threshold {args.threshold}" if args.threshold is not None else "none"
    notes: list[str] = []  # rows repeated exactly are counted once; each file with some says how many
    if args.val_predictions:
        threshold = thresholds_from_predictions(args.val_predictions, args.threshold_rule, notes=notes)
        source = f"{args.threshold_rule} on {args.val_predictions}"
    records = metrics_from_predictions(
        pred, threshold=threshold, bootstrap=args.bootstrap, seed=args.seed, notes=notes
    )
    for note in notes:
        print(one_line(f"note: {note}"), file=sys.stderr)
    meta: dict[str, object] = {
        "predictions": str(pred),
        "threshold_source": source,
        "thresholds": threshold,
        "bootstrap": args.bootstrap,
        "seed": args.seed,
    }
    if notes:
        meta["notes"] = notes
    out_dir = Path(args.out) if args.out else default_out_dir(pred)
    paths = write_report(records, out_dir, stem=pred.stem, meta=meta, title=f"Metrics: {pred.name}")
    print(markdown_table(records), end="")
    print(f"\nthreshold: {source}")
    print(f"saved {paths['md']}, {paths['json']}, {paths['csv']}")
    return 0


def run_trained(args: argparse.Namespace) -> int:
    from fakescope.eval.evaluate import evaluate_runs
    from fakescope.eval.evaluate_shards import merge_evaluate
    from fakescope.utils.runtime import resolve_device
    from fakescope.utils.sharding import resolve_shard, shard_group, wait_for_all_shards

    if not args.datasets:
        raise InputError("--run needs at least one --data NAME_OR_MANIFEST")
    shard = resolve_shard(args.shard)
    out = Path(args.out) if args.out else Path(args.runs[0])
    if args.out:  # before any run loads: a bad --out costs one line, not the scoring
        from fakescope.utils.paths import require_output_dir

        require_output_dir(out, "--out")
    device = resolve_device(args.device) if shard.under_torchrun else args.device
    with shard_group(shard, device) as device:
        summary = evaluate_runs(
            args.runs, args.datasets, out, robustness=args.robustness, device=str(device), data_root=args.data_root,
            split=args.split, max_images=args.max_images, plots=not args.no_plots, bootstrap=args.bootstrap,
            shard=shard,
        )  # fmt: skip
        if shard.enabled:
            for s in summary["sets"]:
                note = left_out(s)
                print(f"shard {shard.name}: {s['run']} on {s['dataset']}: {s['n_images']} images scored"
                      + (f"; left out {note}" if note else ""))  # fmt: skip
            if not wait_for_all_shards(shard):
                return shard_done(shard, out, failed=False)
            summary = merge_evaluate(out, shard.count)
    print_tables(summary, out, plots=not args.no_plots)
    return 0


def left_out(counts: dict) -> str | None:
    """What a set's ``excluded_unreadable`` and ``excluded_too_small`` counts say, or ``None``."""
    from fakescope.data.images import MIN_FACE_SIDE

    parts = []
    if n := counts.get("excluded_unreadable"):
        parts.append(f"{n} unreadable image(s)")
    if n := counts.get("excluded_too_small"):
        parts.append(f"{n} crop(s) below the {MIN_FACE_SIDE}-px minimum face size")
    return ", ".join(parts) or None


def print_tables(summary: dict, out: Path, plots: bool) -> None:
    from fakescope.eval.robustness import cross_markdown, robustness_markdown

    print(cross_markdown(summary["cross_dataset"]), end="")
    # The images each set left out before scoring (each was named on stderr when it was checked).
    for m in summary["metrics"]:
        if m["perturbation"] == "clean" and (note := left_out(m)):
            print(f"{m['run']} on {m['dataset']}: left out {note}")
    if "robustness" in summary:
        print()
        print(robustness_markdown(summary["robustness"]), end="")
    print(f"\nsaved {out / 'metrics'}, {out / 'predictions'}" + (f", {out / 'plots'}" if plots else ""))


def run(args: argparse.Namespace) -> int:
    if args.predictions and args.runs:
        raise InputError("give either --predictions or --run, not both")
    if args.predictions:
        if args.shard is not None:
            raise InputError("--shard splits --run scoring; a --predictions file is evaluated in one go")
        return run_predictions(args)
    if args.runs:
        return run_trained(args)
    print(
        "fakescope evaluate: give --predictions FILE or --run RUN --data NAME (see --help)", file=sys.stderr
    )
    return 2
