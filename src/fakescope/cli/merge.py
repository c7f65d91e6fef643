"""`fakescope merge OUT`: the one manifest / summary / metrics table of a job run as shards.

Each shard's marker (``OUT/shards/K-of-N/shard.json``, :mod:`fakescope.utils.sharding`) names the
command that wrote it; the merge of that command builds the same files a one-process run writes:
``prepare`` the crop manifest and its tables, ``fit-inr`` records.csv and summary.json, ``evaluate``
the predictions, the metrics (computed once on the merged predictions) and the plots.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fakescope.cli.common import positive_int

DESCRIPTION = """\
Merge the shards of a `prepare`, `fit-inr` or `evaluate --run` job that ran as separate processes
(--shard K/N: Slurm job arrays, Kubernetes indexed jobs) into the outputs one process writes:

  prepare   manifest.csv, landmarks.csv, no_face.csv, summary.json (rows in input order)
  fit-inr   records.csv and summary.json (the heatmaps are already in the shared cache)
  evaluate  predictions/*.csv, metrics/ (AUC, bootstrap intervals and thresholds computed once on the
            merged predictions, never averaged over shards) and plots/

OUT is the --out every shard was given; its shards/K-of-N/ folders say which command wrote them.
Every shard must have finished: a missing or unfinished one is named, and nothing is written; rerun
that shard alone (same command, same --shard K/N: it resumes) and merge again. Under torchrun rank 0
merges by itself once every rank is done.

example:
  fakescope merge prepared/dfdc
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="the --out folder the shards wrote to")
    p.add_argument(
        "--shards",
        type=positive_int,
        default=None,
        metavar="N",
        help="merge the N-shard run (only needed when OUT/shards holds runs of several N)",
    )


def merge_shards(out: Path, count: int | None = None) -> tuple[str, Any]:
    """Merge the shards under ``out`` with the merge of the command that wrote them; returns (command,
    what that command's merge returned)."""
    from fakescope.errors import InputError
    from fakescope.utils.sharding import read_shards

    markers = read_shards(out, count)
    command, count = markers[0]["command"], markers[0]["count"]
    # Imported here, not at the top: `fakescope --help` does not pay for torch.
    if command == "prepare":
        from fakescope.preprocess.pipeline.run import merge_prepare

        return command, merge_prepare(out, count)
    if command == "fit-inr":
        from fakescope.inr.run import merge_fit

        return command, merge_fit(out, count)
    if command == "evaluate":
        from fakescope.eval.evaluate_shards import merge_evaluate

        return command, merge_evaluate(out, count)
    raise InputError(f"{out / 'shards'}: shards of an unknown command {command!r}")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    command, result = merge_shards(out, args.shards)
    if command == "prepare":
        for line in result.lines():
            print(line)
        print(f"wrote {out / 'manifest.csv'} and {out / 'summary.json'}")
        return 1 if result.errors else 0
    if command == "fit-inr":
        from fakescope.cli.fit_inr import print_summary

        return print_summary(result)
    from fakescope.cli.evaluate import print_tables

    print_tables(result, out, plots=(out / "plots").is_dir())
    return 0


if __name__ == "__main__":  # pragma: no cover
    from fakescope.cli import main

    sys.exit(main(["merge", *sys.argv[1:]]))
