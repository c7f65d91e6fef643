"""`fakescope calibrate`: fit a run's calibration and familiarity model on a validation split."""

from __future__ import annotations

import argparse
import json

from fakescope.cli.common import nonneg_int, positive_int
from fakescope.inference.familiarity import METHODS

DESCRIPTION = """Calibrate a trained run and give it a familiarity model.

  fakescope calibrate --run runs/airl --data dfdc-faces [--split val] [--fpr 0.05] \\
      [--familiarity mahalanobis|mahalanobis_layers|energy]

scores the --data rows of --split (default val; the run's own training data is split by group exactly
as train split it) with the run's best checkpoint and writes into the run directory:

  calibration.json         temperature scaling or isotonic regression (chosen by 2-fold cross-fitted
                           NLL on the split, both figures recorded), ECE before/after (15 bins, bootstrap
                           95% interval) and the operating threshold at --fpr on the split's real faces
  familiarity.safetensors  how far a face lies from the training data (mahalanobis: on the penultimate
                           features of at most --max-train training faces; mahalanobis_layers: the same
                           at every stage of the network, standardised on the split and averaged;
                           energy: -logsumexp of the logits), thresholded so that 95% of the split's
                           faces count as familiar
  reliability.png          the reliability diagram, raw and calibrated

fakescope detect then shows each face's calibrated probability and familiarity, and labels with the
calibrated operating threshold. Runs without these files behave as before.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, metavar="RUN", help="trained run directory")
    p.add_argument("--data", required=True, metavar="NAME_OR_MANIFEST",
                   help="dataset to fit on: a name under --data-root, a folder or a manifest CSV")  # fmt: skip
    p.add_argument("--data-root", default=None, help="folder of named datasets (default: ../shared/data)")
    p.add_argument("--split", default="val", choices=["val", "test", "train", "all"],
                   help="rows to calibrate on (default val)")  # fmt: skip
    p.add_argument("--train-split", default="train", choices=["train", "val", "test", "all"],
                   help="rows the Mahalanobis model is fitted on (default train)")  # fmt: skip
    p.add_argument("--fpr", type=_rate, default=0.05, metavar="RATE",
                   help="false-positive rate on the split's real faces for the operating threshold (default 0.05)")  # fmt: skip
    p.add_argument("--familiarity", choices=list(METHODS), default="mahalanobis_layers",
                   help="familiarity score (default mahalanobis_layers: chosen on leave-one-source-out runs, docs/model-card.md)")  # fmt: skip
    p.add_argument("--method", choices=["auto", "temperature", "isotonic"], default="auto",
                   help="calibrator (default auto: the lower cross-fitted NLL)")  # fmt: skip
    p.add_argument("--max-train", type=positive_int, default=4000, metavar="N",
                   help="training faces the Mahalanobis model is fitted on (class-stratified, seeded)")  # fmt: skip
    p.add_argument("--max-val", type=positive_int, default=None, metavar="N",
                   help="score at most N rows of --split (class-stratified, seeded)")  # fmt: skip
    p.add_argument("--bootstrap", type=nonneg_int, default=200, metavar="N",
                   help="bootstrap resamples for the ECE intervals (0: none)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:  # also false for NaN
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _interval(e: dict) -> str:
    if e.get("low") is None:
        return f"{e['ece']:.4f}"
    return f"{e['ece']:.4f} [{e['low']:.4f}, {e['high']:.4f}]"


def run(args: argparse.Namespace) -> int:
    from fakescope.eval.calibrate import calibrate_run
    from fakescope.utils.schema import json_safe

    summary = calibrate_run(
        args.run, args.data, args.split, args.train_split, fpr=args.fpr, familiarity=args.familiarity,
        method=args.method, max_train=args.max_train, max_val=args.max_val, bootstrap=args.bootstrap,
        device=args.device, data_root=args.data_root, progress=not args.json,
    )  # fmt: skip
    if args.json:
        print(json.dumps(json_safe(summary), indent=2, allow_nan=False))
        return 0
    sel, fam = summary["selection"], summary["familiarity"]
    how = (
        f"T = {summary['temperature']:.4f}" if summary["method"] == "temperature" else "isotonic breakpoints"
    )
    print(
        f"calibrated {summary['run']} on {summary['dataset']} ({summary['split']}, {summary['n_val']} faces)"
    )
    print(f"  method: {summary['method']} ({how}); cross-fitted NLL temperature {sel['temperature']['nll']:.4f}, "
          f"isotonic {sel['isotonic']['nll']:.4f}; ECE temperature {sel['temperature']['ece']:.4f}, "
          f"isotonic {sel['isotonic']['ece']:.4f}")  # fmt: skip
    print(
        f"  ECE (95% interval): before {_interval(summary['ece_before'])}, after {_interval(summary['ece_after'])}"
    )
    print(f"  operating threshold {summary['threshold']:.6f} (calibrated {summary['threshold_probability']:.4f}): "
          f"FPR {summary['val_fpr']:.4f} on validation reals (target {summary['target_fpr']}), "
          f"TPR {summary['val_tpr']:.4f}")  # fmt: skip
    print(f"  familiarity: {fam['method']}, threshold {fam['threshold']:.4f}, "
          f"{fam['familiar_fraction_val']:.1%} of validation faces familiar")  # fmt: skip
    print("wrote " + ", ".join(summary["files"]))
    return 0
