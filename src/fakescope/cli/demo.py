"""`fakescope demo`: the whole pipeline on an embedded stand-in set (no download, no ../shared)."""

from __future__ import annotations

import argparse

DESCRIPTION = """Run the whole pipeline end to end on an embedded stand-in set, with no download.

The data is a STAND-IN, NOT A BENCHMARK: real faces are scikit-image's LFW subset, fakes are a
synthetic blended face swap with generator-style resampling (see fakescope.demo). Steps: build the
set, fit-inr, train a tiny INFER-family and a tiny AIRL-family detector (EfficientNet-Lite0 backbone,
weights shipped in its package), evaluate on held-out groups, and detect with HTML reports on test
crops, a photograph and a short video. Prints where the report is.

examples:
  fakescope demo --out demo_output            # a few minutes on a 2-core CPU
  fakescope demo --out demo_output --quick    # CI-sized: 8 pairs, tiny random backbones
  fakescope demo --out demo_output --device cuda
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (default cpu)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized: 8 face pairs, 16-px INR, one epoch, tiny random backbones",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from fakescope.demo import DemoSettings, run_demo
    from fakescope.utils.paths import require_output_dir

    require_output_dir(args.out, "--out")
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    run_demo(args.out, settings, device=args.device, progress=not args.quiet)
    return 0
