"""`fakescope fit-inr`: fit an INR to every face of a manifest and cache its heatmaps (INFER §3.3-3.4)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fakescope.cli.common import add_config_arguments, config_from_args, nonneg_int, positive_int

DESCRIPTION = """\
Fit one INR per face of a manifest (path,label,group) until it reaches inr.target_psnr, and store
its per-layer heatmaps, reconstruction and fit record in the content-addressed cache
(image hash + INR config hash). Re-running skips cached images; a killed run resumes.
Under torchrun each rank takes its share of the manifest.

Writes to --out: config.yaml, records.csv (one row per image), summary.json, figures/*.png.

example:
  fakescope fit-inr --manifest ../shared/data/dfdc-faces/manifest.csv --out runs/inr64 \\
      --set inr.resolution=64 --figures 4
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", "-m", required=True, help="CSV manifest with columns path,label,group")
    p.add_argument("--out", "-o", required=True, help="output folder for records, summary and figures")
    add_config_arguments(p)
    p.add_argument(
        "--figures",
        type=nonneg_int,
        default=0,
        metavar="N",
        help="write N Fig.3-style figures (input, heatmap per layer, reconstruction; real and fake)",
    )
    p.add_argument(
        "--workers",
        type=nonneg_int,
        default=None,
        metavar="K",
        help="fit in K single-threaded worker processes (sets inr.cpu_path=workers; 0 = one per core); "
        "by default one process fits on all threads, measured faster on a 2-core CPU",
    )
    p.add_argument(
        "--cache", default=None, metavar="DIR", help="heatmap cache folder (default inr.cache_dir)"
    )
    p.add_argument(
        "--limit", type=positive_int, default=None, metavar="N", help="only the first N manifest rows"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # Imported here so that `fakescope --help` does not pay for importing torch.
    from fakescope.config import save_config
    from fakescope.data.manifest import read_manifest
    from fakescope.errors import InputError
    from fakescope.inr.run import fit_manifest, shard_from_env
    from fakescope.utils.runtime import resolve_device
    from fakescope.utils.schema import json_safe

    if args.workers is not None:
        args.overrides = [*args.overrides, f"inr.workers={args.workers}", "inr.cpu_path=workers"]
    cfg = config_from_args(args)
    device = resolve_device(cfg.device)
    rows = read_manifest(args.manifest)
    if args.limit is not None:
        rows = rows[: args.limit]
    rows, skipped = readable_rows(rows, cfg, progress=not args.quiet)
    if not rows:
        raise InputError(f"{args.manifest}: none of its {skipped} images could be read")
    out = Path(args.out)
    rank, world = shard_from_env()
    if rank == 0:
        save_config(cfg, out / "config.yaml")
    summary = fit_manifest(
        rows, cfg.inr, out, device=device, cache_dir=args.cache, figures=args.figures if rank == 0 else 0,
        shard=(rank, world), progress=not args.quiet, max_image_pixels=cfg.data.max_image_pixels,
        background=cfg.data.rgba_background,
    )  # fmt: skip
    keys = ("n", "n_fitted", "n_cached", "mean_psnr", "share_reached", "n_not_reached", "wall_seconds")
    print(json.dumps(json_safe({**{k: summary[k] for k in keys}, "n_skipped": skipped}), allow_nan=False))
    return 1 if skipped else 0


def readable_rows(rows: list, cfg, progress: bool = True) -> tuple[list, int]:
    """The rows whose image decodes under ``data.max_image_pixels``; each other one is reported in one
    line on stderr and left out, so one bad image does not end the run. Streamed: one image in memory
    at a time."""
    from tqdm import tqdm

    from fakescope.data.images import iter_images
    from fakescope.errors import InputError
    from fakescope.utils.text import one_line

    kept, skipped = [], 0
    it = iter_images(
        [r.path for r in rows], max_pixels=cfg.data.max_image_pixels, background=cfg.data.rgba_background,
        progress=progress and len(rows) > 1, desc="checking images",
    )  # fmt: skip
    for row, (_path, res) in zip(rows, it, strict=True):
        if isinstance(res, InputError):
            skipped += 1
            tqdm.write(one_line(f"fakescope fit-inr: skipped: {res}"), file=sys.stderr)
        else:
            kept.append(row)
    return kept, skipped
    return 0
