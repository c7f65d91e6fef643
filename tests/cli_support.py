"""Run ``fakescope`` in-process the way a user runs it, for the CLI tests."""

from __future__ import annotations

from fakescope.cli import main


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``fakescope ARGV...`` (arguments may be paths): its exit status, stdout and stderr. An argparse
    refusal's ``SystemExit`` becomes its status, as the shell would see it."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err
