"""`fakescope learn-inr-init`: meta-learn a shared INR initialisation on training faces (Reptile).

Not in the paper; DESIGN.md "Fitting" allows a learned initialisation file. See
fakescope.inr.learned_init for the method and README "INR engine" for what it buys and costs.
"""

from __future__ import annotations

import argparse
import json

from fakescope.cli.common import add_config_arguments, config_from_args

DESCRIPTION = """\
Meta-learn one shared INR initialisation from the faces of a (training) manifest with Reptile, and
write it as safetensors. Fitting then starts every face from it: set inr.init_file to the file and
inr.lr to inr_init.inner_lr. Every face still starts from the same weights, so heatmaps stay
comparable across faces, but they are not the same heatmaps as from the seeded init (README).

A checkpoint (<out>.state) is written every inr_init.checkpoint_every meta-updates; re-running the
same command resumes from it. At the end, inr_init.holdout_images faces (whole groups, never learned
from) are fitted from the seeded and from the learned init, and their mean steps are printed.

example:
  fakescope learn-inr-init --manifest runs/split/train.csv --out runs/inr_init64.safetensors \\
      --set inr.resolution=64
  fakescope fit-inr --manifest runs/split/train.csv --out runs/inr64 --set inr.resolution=64 \\
      --set inr.init_file=runs/inr_init64.safetensors --set inr.lr=1e-3
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--manifest", "-m", required=True, help="CSV manifest (path,label,group) of training faces"
    )
    p.add_argument("--out", "-o", required=True, help="where to write the initialisation (.safetensors)")
    add_config_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # Imported here so that `fakescope --help` does not pay for importing torch.
    import random

    from tqdm import tqdm

    from fakescope.data.images import load_image_rgb
    from fakescope.data.manifest import read_manifest
    from fakescope.inr.learned_init import learn_init
    from fakescope.utils.runtime import resolve_device

    cfg = config_from_args(args)
    rows = read_manifest(args.manifest)
    # A seeded random subset: manifests are often sorted by label or source.
    limit = cfg.inr_init.max_images + cfg.inr_init.holdout_images
    order = random.Random(cfg.seed).sample(range(len(rows)), k=len(rows))
    rows = [rows[i] for i in sorted(order[:limit])]
    images = [load_image_rgb(r.path) for r in tqdm(rows, desc="loading", unit="img", disable=args.quiet)]
    summary = learn_init(
        images, [r.group for r in rows], cfg.inr, cfg.inr_init, args.out, seed=cfg.seed,
        device=resolve_device(cfg.device), progress=not args.quiet,
    )  # fmt: skip
    print(json.dumps({"out": args.out, **summary.to_dict()}))
    return 0
