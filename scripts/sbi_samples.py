"""A contact sheet of self-blended (SBI) and Face X-ray training fakes made from real faces, to see
what ``train.synthetic_fakes`` trains on: each row is a real crop (red dots: the landmarks the mask
is built from), its SBI fake, the SBI mask, its X-ray fake and the X-ray mask (fakescope.data.synthetic;
Shiohara & Yamasaki, CVPR 2022; Li et al., CVPR 2020). ``--landmarks detect`` re-detects 5 points on
each crop as ``train.synthetic_landmarks: detect`` does; ``dlib68`` finds 68 as ``dlib68`` does;
``layout`` uses the tight layout's fixed points. ``--augment`` is ``train.sbi_augment``.

    python scripts/sbi_samples.py --manifest ../shared/data/dfdc-faces/manifest.csv \
        --out docs/images/sbi_samples.png [--n 6 --size 128 --seed 0 --landmarks detect]
    python scripts/sbi_samples.py --manifest ../shared/data/dfdc-faces/manifest.csv \
        --out docs/images/sbi_samples_faithful.png --landmarks dlib68 --augment sbi_code
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from fakescope.data.synthetic import SyntheticFakes

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=int, default=6)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--landmarks", choices=["detect", "dlib68", "layout"], default="detect")
    p.add_argument("--augment", choices=["strong", "sbi_code"], default="strong", help="train.sbi_augment")
    args = p.parse_args(argv)
    with open(args.manifest, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "real"]
    if len(rows) < 2:
        sys.exit(f"error: {args.manifest} has {len(rows)} real faces; the sheet needs at least 2")
    pick = np.random.default_rng(args.seed).choice(len(rows), size=min(args.n, len(rows)), replace=False)
    rows = [rows[int(i)] for i in pick]
    paths = [str((args.manifest.parent / r["path"]).resolve()) for r in rows]

    def load(j: int) -> np.ndarray:
        img = Image.open(paths[j]).convert("RGB").resize((args.size, args.size), Image.BILINEAR)
        return np.asarray(img)

    groups = [r["group"] for r in rows]
    marks = {}
    if args.landmarks == "detect":
        from fakescope.preprocess.config import PreprocessConfig
        from fakescope.preprocess.detectors import build_face_detector
        from fakescope.preprocess.landmarks import detect_crop_landmarks

        found = detect_crop_landmarks(
            paths, build_face_detector(PreprocessConfig()), lambda q: load(paths.index(q))
        )
        marks = {q: pts for q, (pts, _) in found.items()}
    elif args.landmarks == "dlib68":
        from fakescope.preprocess.landmarks68 import detect_crop_landmarks68

        found = detect_crop_landmarks68(paths, lambda q: load(paths.index(q)))
        marks = {q: pts for q, (pts, _) in found.items()}
    sbi = SyntheticFakes("sbi", paths, groups, landmarks=marks, seed=args.seed, sbi_augment=args.augment)
    xray = SyntheticFakes("xray", paths, groups, landmarks=marks, seed=args.seed)
    cols = ["real", "SBI fake", "SBI mask", "X-ray fake", "X-ray mask"]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(2 * len(cols), 2 * len(rows)))
    for i in range(len(rows)):
        real = load(i)
        s, x = sbi.make(i, real, 0, load), xray.make(i, real, 0, load)
        for ax, im in zip(axes[i], (real, s.image, s.mask, x.image, x.mask), strict=True):
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=1 if im.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
        pts = sbi.landmarks_for(i, args.size)
        axes[i][0].plot(pts[:, 0], pts[:, 1], "r.", ms=3)
        # tight crops cut the chin or brow: points outside the crop stay in the mask, not in the plot
        axes[i][0].set_xlim(-0.5, args.size - 0.5)
        axes[i][0].set_ylim(args.size - 0.5, -0.5)
    for ax, c in zip(axes[0], cols, strict=True):
        ax.set_title(c)
    fig.suptitle(f"Training fakes from real faces ({args.manifest.parent.name}, landmarks: {args.landmarks}, "
                 f"SBI source: {args.augment}, seed {args.seed}, epoch 0)")  # fmt: skip
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
