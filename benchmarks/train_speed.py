"""Training throughput (faces per second of optimiser steps) per detector and image size on this
machine, to size the CPU recipes' epochs (issue 11 part 3: each CPU recipe trains in about 90 minutes).

    python benchmarks/train_speed.py --detectors airl airl_rgb airl_freq airl_early clip infer \
        --sizes 128 --steps 6 --threads 2      # -> results/train_speed.json

Each detector is built from ``configs/cpu/<detector>.yaml`` (real Lite0 weights where the recipe uses
them) and takes ``--steps`` timed Adam steps (forward, the training loss, backward, clip, step) on
batches of real DFDC crops after one warm-up step. Stored inputs (INR heatmaps, frozen embeddings) are
precomputed once before training and are not part of a step: their cost per face is measured
separately (``precompute_s_per_face``) on ``--precompute-n`` faces, without a cache.
The 1-minute load average before and after is saved: on a shared CPU the figures are slower.
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
    from fakescope.config import load_config
    from fakescope.data.images import load_image_rgb
    from fakescope.data.manifest import read_manifest
    from fakescope.inference.inputs import compute_inputs, detector_inputs, images_to_tensor, model_image
    from fakescope.models.registry import build_detector
    from fakescope.train.losses import detector_loss
    from fakescope.utils.atomic import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--detectors", nargs="+", default=["airl", "airl_rgb", "airl_freq", "clip", "infer"])
    p.add_argument("--sizes", nargs="+", type=int, default=[128])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--precompute-n", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "train_speed.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = read_manifest(Path(args.data) / "dfdc-faces" / "manifest.csv")[: args.batch_size]
    raw = [load_image_rgb(r.path) for r in rows]
    labels = torch.tensor([r.label for r in rows])
    results = []
    for det_name in args.detectors:
        for size in args.sizes:
            cfg = load_config(REPO / "configs" / "cpu" / f"{det_name}.yaml", [f"data.image_size={size}"])
            torch.manual_seed(0)
            det = build_detector(cfg)
            crops = [model_image(c, cfg) for c in raw]
            needed = set(detector_inputs(det)) - {"image"}
            t0 = time.perf_counter()
            built = compute_inputs(needed, crops[: args.precompute_n], cfg, "cpu", detector=det)
            pre = (time.perf_counter() - t0) / args.precompute_n if needed else 0.0
            if needed:  # the rest of the batch reuses the measured faces' inputs (cost already counted)
                built.stores = {
                    k: [v[i % args.precompute_n] for i in range(len(crops))] for k, v in built.stores.items()
                }
            batch = {"image": images_to_tensor(crops), "label": labels}
            for k, v in built.stores.items():
                batch[k] = torch.from_numpy(np.stack(v))
            opt = torch.optim.Adam(det.param_groups(cfg.train.lr), lr=cfg.train.lr)
            det.train()
            load_before = os.getloadavg()[0]
            times = []
            for i in range(args.steps + 1):
                t = time.perf_counter()
                out = det(batch)
                loss = detector_loss(det, batch, out, cfg.train)["total"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(det.parameters(), cfg.train.grad_clip)
                opt.step()
                if i:  # the first step warms up allocators and kernels
                    times.append(time.perf_counter() - t)
            step_s = float(np.median(times))
            row = {
                "detector": det_name, "image_size": size, "batch_size": args.batch_size,
                "step_s_median": round(step_s, 3), "faces_per_s": round(args.batch_size / step_s, 1),
                "precompute_s_per_face": round(pre, 3), "precomputed": sorted(needed),
                "inr_resolution": cfg.inr.resolution if "heatmaps" in needed else None,
                "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            }  # fmt: skip
            print(row, flush=True)
            results.append(row)
    atomic_write_json(args.out, {"threads": args.threads, "results": results,
                                 "command": "python benchmarks/train_speed.py " + " ".join(argv or sys.argv[1:])})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
