"""`fakescope learn-inr-init`: meta-learn a shared INR initialisation on training faces (Reptile).

Not in the paper; docs/design.md ("Fitting") allows a learned initialisation file. See
fakescope.inr.learned_init for the method and docs/inr.md for what it buys and costs.
"""

from __future__ import annotations

import argparse
import json
import sys

from fakescope.cli.common import add_config_arguments, config_from_args

DESCRIPTION = """\
Meta-learn one shared INR initialisation with Reptile from the TRAIN split of the data (split by
group exactly as `fakescope train` splits it: data.split, or the manifest's split column), and write
it as safetensors. Test-split faces are never read. Fitting then starts every face from it: set
inr.init_file to the file (inr.lr null, the default, then fits at the file's inr_init.inner_lr). Every
face still starts from the same weights, so heatmaps stay comparable across faces, but they are not
the same heatmaps as from another init (docs/inr.md). fakescope ships one learned on DFDC faces and
uses it by default (inr.init_file: shipped); learn your own for another kind of data.

A checkpoint (<out>.state) is written every inr_init.checkpoint_every meta-updates; re-running the
same command resumes from it. At the end, inr_init.holdout_images faces of the VALIDATION split
(other groups, never learned from) are fitted from the seeded and from the learned init, and their
mean steps are printed.

example:
  fakescope learn-inr-init --manifest data/faces/manifest.csv --out runs/inr_init64.safetensors \\
      --set inr.resolution=64
  fakescope fit-inr --manifest runs/split/train.csv --out runs/inr64 --set inr.resolution=64 \\
      --set inr.init_file=runs/inr_init64.safetensors
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--manifest",
        "-m",
        default=None,
        help="CSV manifest (path,label,group[,split]); sets data.manifest. Without it, the config's data "
        "section names the data. Only its train split is learned from, its val split is the hold-out",
    )
    p.add_argument("--out", "-o", required=True, help="where to write the initialisation (.safetensors)")
    add_config_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # Imported here so that `fakescope --help` does not pay for importing torch.
    import random

    from tqdm import tqdm

    from fakescope.data import images as image_io
    from fakescope.data.splits import load_splits
    from fakescope.errors import InputError
    from fakescope.inr.engine import resize_for_inr
    from fakescope.inr.learned_init import learn_init
    from fakescope.utils.paths import require_output_file
    from fakescope.utils.runtime import resolve_device
    from fakescope.utils.schema import json_safe
    from fakescope.utils.text import one_line

    require_output_file(args.out, "--out")  # before any image is read
    cfg = config_from_args(args)
    if args.manifest:
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"manifest": args.manifest})})
    # The same split as `train` (by group, data.split / the manifest's split column): an init learned on
    # test faces would leak them into every heatmap fitted from it.
    splits = load_splits(cfg.data)
    init_cfg = cfg.inr_init

    def subset(rows: list, k: int, salt: int) -> list:
        # A seeded random subset: manifests are often sorted by label or source.
        order = random.Random(cfg.seed + salt).sample(range(len(rows)), k=len(rows))
        return [rows[i] for i in sorted(order[:k])]

    train_rows = subset(splits["train"], init_cfg.max_images, 0)
    val_rows = subset(splits["val"], init_cfg.holdout_images, 1)
    if init_cfg.holdout_images and not val_rows:
        raise InputError("learn-inr-init: the validation split is empty; set inr_init.holdout_images=0")

    def load(rows: list, what: str) -> tuple[list, list]:
        """Each image loaded under data.max_image_pixels / data.rgba_background and shrunk to the INR
        resolution at once (the fit resizes to it anyway), so memory holds one full-size image at a
        time; an unreadable one is reported in one line and left out."""
        images, kept = [], []
        it = image_io.iter_images(
            [r.path for r in rows], max_pixels=cfg.data.max_image_pixels, background=cfg.data.rgba_background,
            progress=not args.quiet, desc=f"loading {what}",
        )  # fmt: skip
        for row, (_path, res) in zip(rows, it, strict=True):
            if isinstance(res, InputError):
                tqdm.write(one_line(f"fakescope learn-inr-init: skipped: {res}"), file=sys.stderr)
                continue
            images.append(resize_for_inr(res, cfg.inr.resolution, row.path))
            kept.append(row)
        if rows and not kept:
            raise InputError(f"learn-inr-init: none of the {len(rows)} {what} images could be read")
        return images, kept

    train_images, train_rows = load(train_rows, "train")
    val_images, _ = load(val_rows, "val")
    summary = learn_init(
        train_images, [r.group for r in train_rows], cfg.inr, init_cfg, args.out,
        seed=cfg.seed, device=resolve_device(cfg.device), progress=not args.quiet,
        holdout=val_images,
    )  # fmt: skip
    print(json.dumps(json_safe({"out": args.out, **summary.to_dict()}), allow_nan=False))  # strict JSON
    return 0
