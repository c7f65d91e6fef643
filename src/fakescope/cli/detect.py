"""`fakescope detect` (not built yet)."""

from __future__ import annotations

import argparse

from fakescope.cli.common import not_built

DESCRIPTION = "fakescope detect: not implemented yet in this version."


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    return not_built("detect")
