"""`fakescope ensemble RUN RUN [...] --out DIR`: trained runs combined into one run (the mean of their
temperature-scaled log-odds), fitted on a validation split."""

from __future__ import annotations

import argparse
import json

from fakescope.cli.common import nonneg_int

DESCRIPTION = """Combine trained runs into one ensemble run that detect, serve, calibrate and evaluate use
like any other.

  fakescope ensemble runs/airl runs/srm --out runs/airl+srm [--data MANIFEST] [--split val]

Each run scores the --split rows of --data (default: the first run's training manifest, so its
validation split); each run's temperature is fitted there (Guo et al., ICML 2017, §4.2), and the
ensemble's P(fake) is sigmoid of the mean of the runs' log-odds, each divided by its temperature. The
run's threshold is chosen on the same rows as training chooses it. Writes:

  DIR/checkpoints/best.*   the members' weights and their temperatures, one checkpoint
  DIR/ensemble.json        the members, their temperatures and val AUC, and the ensemble's val AUC
                           minus each member's, paired over source videos (bootstrap 95% interval)

Then `fakescope calibrate --run DIR --data MANIFEST` gives it a calibrated probability, an operating
threshold and a familiarity model. The runs must crop faces alike (same image size and alignment) and
read the face crop alone (not the INFER family's heatmaps or cached embeddings).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="two or more trained run directories")
    p.add_argument("--out", required=True, metavar="DIR", help="the new run directory (must not hold a run)")
    p.add_argument("--data", default=None, metavar="MANIFEST",
                   help="manifest whose --split fits the temperatures (default: the first run's)")  # fmt: skip
    p.add_argument("--data-root", default=None, help="folder of named datasets (default: ../shared/data)")
    p.add_argument("--split", default="val", choices=["val", "test", "train", "all"],
                   help="rows to fit on (default val; never choose on test)")  # fmt: skip
    p.add_argument("--bootstrap", type=nonneg_int, default=1000, metavar="N",
                   help="bootstrap resamples for the paired intervals (0: none)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from fakescope.eval.ensemble import build_ensemble_run
    from fakescope.utils.schema import json_safe

    summary = build_ensemble_run(args.runs, args.out, manifest=args.data, split=args.split, device=args.device,
                                 data_root=args.data_root, bootstrap=args.bootstrap, progress=not args.json)  # fmt: skip
    if args.json:
        print(json.dumps(json_safe(summary), indent=2, allow_nan=False))
        return 0
    print(f"ensemble of {len(summary['members'])} runs on {summary['n_val']} {summary['split']} faces: "
          f"val AUC {summary['val_auc']:.4f}")  # fmt: skip
    for m in summary["members"]:
        d = m["ensemble_minus_member"]
        print(f"  {m['detector']:<12} T={m['temperature']:.3f}  val AUC {m['val_auc']:.4f}  "
              f"ensemble - member {d['difference']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]  {m['run']}")  # fmt: skip
    print(f"wrote {args.out}/checkpoints/best.json and {args.out}/ensemble.json")
    return 0
