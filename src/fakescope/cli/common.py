"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import sys

from fakescope.config import ExperimentConfig, load_config


def add_set_argument(
    p: argparse.ArgumentParser,
    help: str = "override a config field, e.g. --set train.lr=3e-4 (repeatable)",
) -> None:
    """The repeatable ``--set KEY=VALUE`` config override, collected in ``args.overrides``."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_config_arguments(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--config", "-c", required=required, help="experiment YAML (see configs/)")
    add_set_argument(p)
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (overrides the config)")


def add_threads_argument(p: argparse.ArgumentParser) -> None:
    """``--threads N`` on every subcommand (build_parser adds it; fakescope.utils.threads resolves it,
    so a bad value is one ConfigError line naming the flag)."""
    p.add_argument(
        "--threads",
        default=None,
        metavar="N",
        help="torch intra-op threads (default: $FAKESCOPE_THREADS, else $OMP_NUM_THREADS, else the cores "
        "available to this process; for train, train.num_threads wins when set)",
    )


def add_shard_argument(p: argparse.ArgumentParser, items: str) -> None:
    """``--shard K/N`` (0-based K) or ``--shard auto`` (a Slurm array task): docs/scale.md."""
    p.add_argument(
        "--shard",
        default=None,
        metavar="K/N|auto",
        help=f"do shard K of N of the {items} (K from 0: 0/4 .. 3/4), into OUT/shards/K-of-N/; then "
        "`fakescope merge OUT`. auto = the Slurm array task. Under torchrun the ranks shard by themselves",
    )


def shard_done(shard, out, failed: bool) -> int:
    """The end of a shard that does not merge: the exit status, and the next step for array jobs.
    Under torchrun a non-zero exit of a finished rank would make torchrun stop rank 0 while it merges,
    so those ranks exit 0 and rank 0 reports every shard's errors."""
    if shard.under_torchrun:
        return 0
    print(f"wrote {shard.folder(out)}; when every shard is done: fakescope merge {out}")
    return 1 if failed else 0


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    overrides = list(args.overrides or [])
    if getattr(args, "device", None):
        overrides.append(f"device={args.device}")
    return load_config(args.config, overrides)


def not_built(name: str) -> int:
    print(f"fakescope {name}: not implemented yet in this version", file=sys.stderr)
    return 2


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"int>={low}"
    return parse


#: argparse ``type=`` for counts: a bad value is one line naming the flag (argparse prints it).
positive_int = _int_at_least(1)
nonneg_int = _int_at_least(0)


def probability(text: str) -> float:
    """argparse ``type=`` for a threshold: a finite number in [0, 1] (``nan`` and ``inf`` refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text}")
    return value
