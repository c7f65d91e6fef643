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


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    overrides = list(args.overrides or [])
    if getattr(args, "device", None):
        overrides.append(f"device={args.device}")
    return load_config(args.config, overrides)


def not_built(name: str) -> int:
    print(f"fakescope {name}: not implemented yet in this version", file=sys.stderr)
    return 2
