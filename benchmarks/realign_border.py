"""How `detect` should fill pixels outside the frame when it re-aligns a face (issue 12, "the border
problem"): INR steps to the target PSNR on a training crop versus the same face re-aligned by
`detect`'s own detector + 5-landmark alignment, with each `preprocess.align.border` fill.

    python benchmarks/realign_border.py [DATA] -n 16 --resolution 64   # -> results/realign_border_64.json

For each of ``n`` real DFDC crops (``DATA/dfdc-faces``, real and fake interleaved), the crop as stored
is the training input. `detect` on that file (without ``--aligned``) finds the face again and warps it
with the run's margin; the warp reaches outside the 224-px file, so the fill decides what the INR and
the classifier see there. Reported per fill: the share of crop pixels that came from outside the
frame, the mean |pixel - training crop| (both at 224 px), and the INR steps to ``inr.target_psnr``
(median and mean, with how many reached it), fitted with the default INR at ``--resolution``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fakescope.config import config_from_dict
from fakescope.data.images import load_image_rgb
from fakescope.inr import heatmaps_for_images
from fakescope.preprocess.align import align_face, outside_share
from fakescope.preprocess.detectors import build_face_detector
from fakescope.utils.atomic import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
FILLS = ("constant", "replicate", "reflect")


def _faces(data: Path, n: int) -> list[Path]:
    real = sorted((data / "dfdc-faces" / "real").glob("*.jpg"))
    fake = sorted((data / "dfdc-faces" / "fake").glob("*.jpg"))
    out = [p for pair in zip(real, fake, strict=False) for p in pair]
    return out[:n]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("-n", type=int, default=16, help="faces")
    p.add_argument("--resolution", type=int, default=64, help="inr.resolution")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="JSON (default benchmarks/results/realign_border_<R>.json)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = config_from_dict({"inr": {"resolution": args.resolution, "cpu_path": "sequential"}})
    detector = build_face_detector(cfg.preprocess, device="cpu")
    crops: dict[str, list[np.ndarray]] = {"training crop": [], **{f: [] for f in FILLS}}
    outside, diffs = [], {f: [] for f in FILLS}
    used = []
    for path in _faces(Path(args.data), args.n):
        image = load_image_rgb(path)
        dets = sorted(detector.detect(image), key=lambda d: d.area, reverse=True)
        if not dets:
            print(f"{path.name}: no face found; skipped", file=sys.stderr)
            continue
        used.append(path.name)
        crops["training crop"].append(image)
        for fill in FILLS:
            align = cfg.preprocess.align.model_copy(update={"border": fill})
            aligned = align_face(image, dets[0].landmarks, align, box=dets[0].box)
            crops[fill].append(aligned.image)
            diffs[fill].append(float(np.abs(aligned.image.astype(float) - image.astype(float)).mean()))
        outside.append(outside_share(aligned.matrix, image.shape, align.size))
    rows = {}
    for name, images in crops.items():
        t0 = time.perf_counter()
        _, records = heatmaps_for_images(images, cfg.inr, "cpu")
        steps = [r.steps for r in records]
        rows[name] = {
            "median_steps": statistics.median(steps),
            "mean_steps": round(statistics.fmean(steps), 1),
            "reached": sum(r.reached for r in records),
            "mean_final_psnr": round(statistics.fmean(r.final_psnr for r in records), 2),
            "mean_abs_diff_to_training_crop": (
                round(statistics.fmean(diffs[name]), 2) if name in diffs else 0.0
            ),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(name, rows[name], flush=True)
    result = {
        "faces": used,
        "n": len(used),
        "inr_resolution": args.resolution,
        "target_psnr": cfg.inr.target_psnr,
        "max_steps": cfg.inr.max_steps,
        "mean_share_of_crop_outside_frame": round(statistics.fmean(outside), 4),
        "fills": rows,
        "command": "python benchmarks/realign_border.py " + " ".join(argv or sys.argv[1:]),
    }
    out = Path(args.out or REPO / "benchmarks" / "results" / f"realign_border_{args.resolution}.json")
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
