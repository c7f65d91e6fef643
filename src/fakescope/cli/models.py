"""`fakescope models`: every registered detector with its parameter count and FLOPs."""

from __future__ import annotations

import argparse
import json

from fakescope.cli.common import add_config_arguments, config_from_args, positive_int

DESCRIPTION = """List every registered detector with its parameter count and FLOPs for one image.

Detectors are built with random weights on PyTorch's meta device (no download, no memory), with each
family's paper backbone (CLIP ViT-L/14 for INFER, EfficientNet-B4 for AIRL) unless --backbone is given.
GFLOPs count a multiply-add as 2 FLOPs; GMACs = GFLOPs / 2. INFER's FLOPs exclude fitting the INR.

examples:
  fakescope models
  fakescope models --image-size 380 --markdown
  fakescope models --backbone lite0 --image-size 128
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument(
        "--image-size", type=positive_int, default=224, help="side of the input image (default 224)"
    )
    p.add_argument(
        "--backbone",
        default=None,
        help="image backbone for every detector instead of the paper's (e.g. lite0)",
    )
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="only these detectors")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="print a Markdown table")
    out.add_argument("--json", action="store_true", help="print JSON, one object per detector")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from fakescope.errors import ConfigError
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import detector_class
    from fakescope.models.summary import format_table, summarize_detectors
    from fakescope.utils.schema import json_safe

    if args.image_size < 16:
        raise ConfigError(f"--image-size must be at least 16, got {args.image_size}")
    for name in args.only or []:
        detector_class(name)
    cfg = config_from_args(args)
    spec = replace(input_spec_for(cfg), image_size=args.image_size)  # heatmaps stay the config's (inr.*)
    rows = summarize_detectors(cfg.model, spec, names=args.only, backbone=args.backbone)
    if args.json:
        print(json.dumps(json_safe([r.as_dict() for r in rows]), indent=2, allow_nan=False))
    else:
        print(format_table(rows, markdown=args.markdown))
        if not args.markdown:
            print(
                f"\nFLOPs for one {args.image_size}x{args.image_size} image (multiply-add = 2 FLOPs); "
                "'trainable' leaves out frozen backbones."
            )
            print("\n" + shipped_summary())
    return 0


def shipped_summary() -> str:
    """What ships inside the package: the detector ``detect``, ``serve`` and ``load()`` use by default,
    with its card (or the one line saying this install has none)."""
    from fakescope.errors import ModelLoadError
    from fakescope.inference.shipped import model_card_path, shipped_meta, shipped_model_dir

    try:
        folder = shipped_model_dir()
    except ModelLoadError as err:
        return f"shipped detector: none ({err})"
    meta = shipped_meta(folder) or {}
    card = model_card_path(folder)
    lines = [
        f"shipped detector (the default of detect, serve and fakescope.load()): {meta.get('name', folder.name)}",
        f"  {meta.get('summary', '')}".rstrip(),
        f"  model card: {card if card else 'none'} (online: docs/model-card.md)",
    ]
    return "\n".join(line for line in lines if line.strip())
