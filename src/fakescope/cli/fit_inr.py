"""`fakescope fit-inr`: fit an INR to every face of a manifest and cache its heatmaps (INFER §3.3-3.4)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fakescope.cli.common import (
    add_config_arguments,
    add_shard_argument,
    config_from_args,
    nonneg_int,
    positive_int,
    shard_done,
)

DESCRIPTION = """\
Fit one INR per face of a manifest (path,label,group) until it reaches inr.target_psnr, and store
its per-layer heatmaps, reconstruction and fit record in the content-addressed cache
(image hash + INR config hash). Re-running skips cached images; a killed run resumes.

Sharded (docs/scale.md): under torchrun each rank fits every WORLD_SIZE-th row and rank 0 writes the
merged records.csv and summary.json when all ranks are done; with --shard K/N (K from 0, e.g. a Slurm
array task) one process fits its share, writes --out/shards/K-of-N/, and `fakescope merge OUT`
merges once every shard is done. All shards fill the one cache (--cache on a shared file system).

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
    add_shard_argument(p, "manifest rows")


def run(args: argparse.Namespace) -> int:
    # Imported here so that `fakescope --help` does not pay for importing torch.
    from fakescope.config import save_config
    from fakescope.data.manifest import read_manifest
    from fakescope.errors import InputError
    from fakescope.inr.run import fit_manifest, merge_fit
    from fakescope.utils.paths import require_output_dir
    from fakescope.utils.runtime import resolve_device
    from fakescope.utils.sharding import resolve_shard, shard_group, wait_for_all_shards

    if args.workers is not None:
        args.overrides = [*args.overrides, f"inr.workers={args.workers}", "inr.cpu_path=workers"]
    cfg = config_from_args(args)
    require_output_dir(args.out, "--out")
    require_output_dir(args.cache if args.cache is not None else cfg.inr.cache_dir,
                       "--cache" if args.cache is not None else "inr.cache_dir")  # fmt: skip
    shard = resolve_shard(args.shard)
    device = resolve_device(cfg.device)
    rows = read_manifest(args.manifest)
    if args.limit is not None:
        rows = rows[: args.limit]
    # Only this shard's rows are decoded to check them; a shard may be left with none.
    mine = shard.take(len(rows))
    kept, skipped = readable_rows([rows[i] for i in mine], cfg, progress=not args.quiet)
    if not kept and not shard.enabled:
        raise InputError(f"{args.manifest}: none of its {skipped} images could be read")
    out = Path(args.out)
    if shard.index == 0:
        save_config(cfg, out / "config.yaml")
    with shard_group(shard, device) as device:
        summary = fit_manifest(
            rows, cfg.inr, out, device=device, cache_dir=args.cache, figures=args.figures if shard.index == 0 else 0,
            shard=shard, progress=not args.quiet, max_image_pixels=cfg.data.max_image_pixels,
            background=cfg.data.rgba_background, indices=[mine[j] for j in kept], n_skipped=skipped,
        )  # fmt: skip
        if shard.enabled:
            print(f"shard {shard.name}: ", end="")
            print_summary(summary)
            if not wait_for_all_shards(shard):
                return shard_done(shard, out, failed=bool(skipped))
            summary = merge_fit(out, shard.count)
    return print_summary(summary)


def print_summary(summary: dict) -> int:
    """One JSON line of the run's counts; exit status 1 when images were skipped."""
    from fakescope.utils.schema import json_safe

    keys = ("n", "n_fitted", "n_cached", "mean_psnr", "share_reached", "n_not_reached", "wall_seconds",
            "n_skipped")  # fmt: skip
    print(json.dumps(json_safe({k: summary[k] for k in keys}), allow_nan=False))
    return 1 if summary["n_skipped"] else 0


def readable_rows(rows: list, cfg, progress: bool = True) -> tuple[list[int], int]:
    """The indices of the rows whose image decodes under ``data.max_image_pixels``; each other one is
    reported in one line on stderr and left out, so one bad image does not end the run. Streamed: one
    image in memory at a time."""
    from tqdm import tqdm

    from fakescope.data.images import iter_images
    from fakescope.errors import InputError
    from fakescope.utils.text import one_line

    kept, skipped = [], 0
    it = iter_images(
        [r.path for r in rows], max_pixels=cfg.data.max_image_pixels, background=cfg.data.rgba_background,
        progress=progress and len(rows) > 1, desc="checking images",
    )  # fmt: skip
    for j, (_path, res) in enumerate(it):
        if isinstance(res, InputError):
            skipped += 1
            tqdm.write(one_line(f"fakescope fit-inr: skipped: {res}"), file=sys.stderr)
        else:
            kept.append(j)
    return kept, skipped
