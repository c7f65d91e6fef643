"""The ``fakescope`` command line. Each subcommand lives in its own module under ``fakescope.cli``
with ``add_parser(subparsers)`` and ``run(args) -> int``; the library never imports from here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from fakescope import __version__
from fakescope.cli.common import add_threads_argument
from fakescope.errors import FakescopeError
from fakescope.utils.imports import interrupt_behind
from fakescope.utils.text import one_line
from fakescope.utils.threads import (
    VERBOSE_ENV,
    apply_threads,
    prefer_passive_wait,
    resolve_threads,
    thread_line,
)

# (subcommand, module, one-line help). Order is the order shown in --help.
COMMANDS: list[tuple[str, str, str]] = [
    ("prepare", "prepare", "videos/images -> aligned face crops + a crop manifest (resumable)"),
    ("fit-inr", "fit_inr", "fit an INR to every face and cache its per-layer PCA heatmaps (INFER)"),
    (
        "learn-inr-init",
        "learn_init",
        "meta-learn a shared INR initialisation on training faces (fewer fitting steps; optional)",
    ),
    ("train", "train", "train a detector from a YAML config"),
    (
        "evaluate",
        "evaluate",
        "score a trained run on datasets (cross-dataset, robustness) or a predictions CSV",
    ),
    (
        "calibrate",
        "calibrate",
        "fit a run's calibration and familiarity model on a validation split (for detect)",
    ),
    (
        "ensemble",
        "ensemble",
        "combine trained runs into one run (mean of calibrated log-odds, fitted on val)",
    ),
    ("detect", "detect", "score your own images and videos, with an optional HTML report"),
    ("bench", "bench", "measure detection speed (faces per second) per model family"),
    ("export", "export", "export a trained run's classifier to ONNX for --engine onnx (optional int8)"),
    ("demo", "demo", "run the whole pipeline end to end on an embedded stand-in set (no download)"),
    ("models", "models", "list registered detectors with parameter counts and FLOPs"),
    ("serve", "serve", "a web page and a REST API that score uploads with runs kept warm"),
    ("merge", "merge", "merge the shards of a prepare / fit-inr / evaluate job into its one output"),
]


#: What an interrupted command leaves, said in its Ctrl-C line (default: it resumes when re-run).
ON_INTERRUPT: dict[str, str] = {
    "train": "checkpoints/last is kept; re-run with --resume to continue from it",
    "detect": "detect does not resume: reports already written are kept; re-run to score every input",
    "evaluate": "no partial output is left; re-run it (cached heatmaps and features are reused)",
    "bench": "nothing was saved; re-run to measure again",
    "models": "nothing was saved",
    "calibrate": "calibration.json is written last, so a run keeps its previous one; re-run it",
    "demo": "re-run to start the demo again",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakescope",
        description="Face deepfake detection: INFER (INR heatmaps + CLIP) and AIRL (EfficientNet + block-DCT "
        "stream + SupCon), with data preparation, training, evaluation and explanations.",
    )
    parser.add_argument("--version", action="version", version=f"fakescope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        mod = importlib.import_module(f"fakescope.cli.{module}")
        p = sub.add_parser(
            name,
            help=help_text,
            description=getattr(mod, "DESCRIPTION", help_text),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        add_threads_argument(p)
        p.set_defaults(_run=mod.run)
    return parser


def escape_what_streams_cannot_encode() -> None:
    """Under a locale that is not UTF-8 (``PYTHONIOENCODING=ascii:strict``, ``LANG=C`` on an old
    Python), an accented file name would raise ``UnicodeEncodeError`` in a table printed after all
    the work. Such streams write what they cannot encode as ``\\xNN`` escapes instead, as
    :func:`fakescope.utils.text.printable` does for file names that are not UTF-8."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if encoding in ("utf8", "utf8sig") or getattr(stream, "errors", "strict") != "strict":
            continue
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def set_up_threads(args: argparse.Namespace) -> None:
    """Apply the command's thread count (fakescope.utils.threads; docs/benchmarks.md, Threads) and,
    with FAKESCOPE_VERBOSE=1, say it on stderr."""
    choice = resolve_threads(args.threads)
    threads = apply_threads(choice)
    if os.environ.get(VERBOSE_ENV, "").strip() == "1":
        print(f"fakescope {args.command}: {thread_line(choice, threads)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    escape_what_streams_cannot_encode()
    try:
        # Before anything imports torch: libgomp reads OMP_WAIT_POLICY once, when torch loads.
        prefer_passive_wait()
    except FakescopeError as err:
        print(one_line(f"fakescope: error: {err}"), file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        set_up_threads(args)
        return int(args._run(args) or 0)
    except FakescopeError as err:
        # printable: a file name that is not UTF-8 is shown with \xNN escapes instead of crashing here
        print(one_line(f"fakescope {args.command}: error: {err}"), file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ImportError) as err:
        # An ImportError can be a Ctrl-C in disguise: pybind11 wraps an exception raised while a
        # compiled extension initialises (fakescope.utils.imports). Any other ImportError is a bug.
        if interrupt_behind(err) is None:
            raise
        what = ON_INTERRUPT.get(args.command, "finished work is kept; re-run the same command to resume")
        print(f"fakescope {args.command}: interrupted ({what})", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
