"""Faces per second of `fakescope detect` per model family, split by stage (face detection + alignment,
features, classifier), for the papers' backbones and for the CPU-sized ones.

    python benchmarks/detect_speed.py [DATA] -n 8 --device cpu --threads 1   # -> results/detect_speed_cpu_t1.json

DATA defaults to ../shared/data; the inputs are DATA/dfdc-faces images (real and fake interleaved),
decoded once beforehand, each scored by FaceForgeryDetector.predict() one at a time as `detect` does.
Detectors are built with random weights (speed does not depend on them; nothing is downloaded).
Presets:
  paper: AIRL = EfficientNet-B4 + DCT stream at 224 px; INFER = CLIP ViT-L/14 + INR heatmaps at 224 px
  cpu:   the same detectors with the EfficientNet-Lite0 backbone at 128 px and the INR at 64 px
The CPU may be shared with other jobs: the 1-minute load average before and after each model is
saved next to its figures. The AIRL paper (Table VI) reports 15.8 ms per face on an A100.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from fakescope.eval.speed import (
    bench_config,
    default_bench_images,
    detector_from_config,
    machine_info,
    measure_detect_speed,
)
from fakescope.utils.atomic import atomic_write_json
from fakescope.utils.runtime import resolve_device

REPO = Path(__file__).resolve().parents[1]
PRESETS = {
    "paper": [("airl", "auto", 224, None), ("infer", "auto", 224, 224)],
    "cpu": [("airl", "lite0", 128, None), ("infer", "lite0", 128, 64)],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("-n", type=int, default=8, help="timed images per model")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--presets", nargs="+", default=["cpu", "paper"], choices=sorted(PRESETS))
    p.add_argument(
        "--out", default=None, help="JSON path (default benchmarks/results/detect_speed_<device>.json)"
    )
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        # On a CPU shared with other jobs, 2 threads can be 10x slower than 1 (OpenMP threads wait on
        # each other while descheduled): README "detect speed" gives both.
        torch.set_num_threads(args.threads)
    images, source = default_bench_images(args.n + args.warmup, args.data)
    results = []
    for preset in args.presets:
        for model, backbone, size, inr in PRESETS[preset]:
            cfg = bench_config(model, backbone, size, inr, str(device))
            det = detector_from_config(cfg, device)
            res = measure_detect_speed(det, images, warmup=args.warmup, weights="random (timing only)")
            row = {"preset": preset, **res.to_dict()}
            results.append(row)
            print(
                f"{preset:<6} {res.model:<6} {res.backbone:<16} {size:>4}px inr={inr or '-':<4} "
                f"{res.faces_per_s:7.2f} faces/s {res.ms_per_face:9.1f} ms/face {res.ms_per_face_by_stage} "
                f"load {res.loadavg_before}->{res.loadavg_after}",
                flush=True,
            )
    suffix = f"_t{torch.get_num_threads()}" if device.type == "cpu" else ""
    out = Path(args.out or REPO / "benchmarks" / "results" / f"detect_speed_{device.type}{suffix}.json")
    atomic_write_json(
        out,
        {
            "machine": machine_info(device),
            "torch_threads": torch.get_num_threads(),
            "images": source,
            "results": results,
            "reference": "AIRL paper Table VI: 15.8 ms per face on an A100",
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
