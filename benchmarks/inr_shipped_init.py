"""What the shipped INR init buys: steps and time to 35 dB from the seeded init vs the shipped one.

    python benchmarks/inr_shipped_init.py --sizes 64 128 224 --n 6 --threads 2 \\
        --out benchmarks/results/inr_shipped_init.json

Faces the shipped inits never saw: ``--n`` DFDC faces of the VALIDATION split (the inits were learned
on the train split, split by group as ``train`` splits it) and ``--n`` real FFHQ photos (another
source). Each face is fitted at each size to the default stop (35 dB PSNR on [0, 1] RGB, cap 1000
steps), one image at a time on ``--threads`` threads (the CPU default path), from:

- ``seeded``:  ``inr.init_file: null`` at the seeded init's rate 3e-3 (the default before the shipped
  init, and what older runs record);
- ``shipped``: the defaults (``init_file: shipped``, ``lr`` null = the init's inner rate 1e-3).

Sizes without their own shipped init (e.g. 32) use the nearest one; the output says which.
The load average before and after is saved: on a shared CPU the per-second figures are slower.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from fakescope.data.config import DataConfig
    from fakescope.data.images import load_image_rgb
    from fakescope.data.manifest import read_manifest
    from fakescope.data.splits import load_splits
    from fakescope.inr import InrConfig
    from fakescope.inr.engine import fit_resized, resize_for_inr
    from fakescope.inr.shipped import fit_lr, resolve_init_file
    from fakescope.utils.atomic import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--sizes", nargs="+", type=int, default=[64, 128, 224])
    p.add_argument("--n", type=int, default=6, help="faces per source (DFDC val, FFHQ real)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "inr_shipped_init.json"))
    args = p.parse_args(argv)
    data = Path(args.data)
    if not (data / "dfdc-faces" / "manifest.csv").is_file():
        print(f"{data}/dfdc-faces/manifest.csv not found: pass --data", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    val = load_splits(DataConfig(manifest=str(data / "dfdc-faces" / "manifest.csv")))["val"][: args.n]
    ffhq = [r for r in read_manifest(data / "ffhq-stylegan" / "manifest.csv") if r.label == 0][: args.n]
    faces = {
        "dfdc_val": [load_image_rgb(r.path) for r in val],
        "ffhq_real": [load_image_rgb(r.path) for r in ffhq],
    }
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "loadavg_start": list(os.getloadavg()),
                    "sizes": {}}  # fmt: skip
    for size in args.sizes:
        settings = {
            "seeded": InrConfig(resolution=size, init_file=None),
            "shipped": InrConfig(resolution=size),
        }
        row: dict = {}
        for name, cfg in settings.items():
            init = resolve_init_file(cfg)
            entry: dict = {"init": init.name if init else "seeded", "lr": fit_lr(cfg)}
            for source, images in faces.items():
                small = [resize_for_inr(im, size) for im in images]
                fit_resized(small[:1], cfg.model_copy(update={"max_steps": 2}), torch.device("cpu"))  # warm
                t0 = time.perf_counter()
                recs = [fit_resized([im], cfg, torch.device("cpu"))[0].record for im in small]
                wall = time.perf_counter() - t0
                entry[source] = {
                    "n": len(recs), "mean_steps": float(np.mean([r.steps for r in recs])),
                    "max_steps": int(max(r.steps for r in recs)),
                    "mean_psnr": float(np.mean([r.final_psnr for r in recs])),
                    "reached": float(np.mean([r.reached for r in recs])), "images_per_second": len(recs) / wall,
                }  # fmt: skip
                print(f"[{size}px] {name:8s} {source:10s} {entry[source]['mean_steps']:6.1f} steps "
                      f"{entry[source]['images_per_second']:.3f} img/s  reached {entry[source]['reached']:.0%}",
                      flush=True)  # fmt: skip
            row[name] = entry
        for source in faces:
            row[f"step_ratio_{source}"] = (
                row["seeded"][source]["mean_steps"] / row["shipped"][source]["mean_steps"]
            )
        report["sizes"][str(size)] = row
    report["loadavg_end"] = list(os.getloadavg())
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
