"""Faces per second of the classifier with the torch engine vs the ONNX engine (fp32 and dynamic int8),
for the paper-sized `airl` and the Lite0 CPU recipe (issue 15, "An ONNX path for inference").

    python benchmarks/onnx_speed.py [DATA] --rounds 3 -n 16   # -> results/onnx_speed.json

Paper-sized: configs/airl.yaml (EfficientNet-B4 + the DCT stream at 224 px) with model.pretrained=false
(random weights: speed does not depend on them, and no hub is reachable). CPU recipe: configs/cpu/airl.yaml
(the pretrained Lite0 shipped by a package, 128 px). Each engine scores the same aligned DFDC face crops
through FaceForgeryDetector.score_crops (resize to the input size + classifier; face detection and
alignment are the same code for both engines and are left out), at batch 1 (one face per call, as
`detect` scores an image) and batch 8 (eval.batch_size=8, as a video's frames).

The machine may be shared: the engines are measured interleaved, round by round (torch, onnx fp32,
onnx int8, then again), so each round compares them within the same minute; the 1-minute load average
is recorded before every measurement, and the median over rounds is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from fakescope.api import FaceForgeryDetector, load
from fakescope.config import load_config
from fakescope.data.images import load_image_rgb
from fakescope.eval.speed import detector_from_config, machine_info
from fakescope.inference.onnx_engine import export_detector
from fakescope.utils.atomic import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
RECIPES = {
    "paper": (REPO / "configs" / "airl.yaml", ["model.pretrained=false"]),
    "cpu": (REPO / "configs" / "cpu" / "airl.yaml", []),
}


def _crops(data: Path, n: int) -> list[np.ndarray]:
    root = data / "dfdc-faces"
    real, fake = sorted((root / "real").glob("*.jpg")), sorted((root / "fake").glob("*.jpg"))
    paths = [p for pair in zip(real, fake, strict=False) for p in pair][:n]
    return [load_image_rgb(p) for p in paths]


def _engines(recipe: str, tmp: Path) -> dict[str, FaceForgeryDetector]:
    """The recipe's detector for each engine: torch, and its fp32 and int8 exports."""
    path, sets = RECIPES[recipe]
    cfg = load_config(path, [*sets, "device=cpu"])
    torch_det = detector_from_config(cfg, torch.device("cpu"))
    # The CPU recipe's Lite0 is pretrained: detector_from_config switches that off for timing, which is
    # what the export sees too, so both engines run the same (random-headed) network.
    out = {"torch": torch_det}
    for quantize in (None, "int8"):
        name = "onnx_int8" if quantize else "onnx_fp32"
        file = tmp / f"{recipe}_{name}.onnx"
        t0 = time.perf_counter()
        export_detector(torch_det.detector, torch_det.cfg, torch_det.meta, file, quantize, "benchmark")
        print(
            f"{recipe}: exported {name} in {time.perf_counter() - t0:.1f} s ({file.stat().st_size / 1e6:.1f} MB)"
        )
        out[name] = load(file, device="cpu", engine="onnx")
    return out


def _faces_per_s(det: FaceForgeryDetector, crops: list[np.ndarray], batch: int) -> float:
    det.cfg.eval.batch_size = batch
    start = time.perf_counter()
    det.score_crops(crops)
    return len(crops) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("-n", type=int, default=16, help="faces per measurement (default 16)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[2, 1],
        help="thread counts to measure, the same for both engines (default 2 1: one thread is the "
        "figure least disturbed by other jobs on the machine)",
    )
    ap.add_argument("--recipes", nargs="+", default=["paper", "cpu"], choices=sorted(RECIPES))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "onnx_speed.json"))
    args = ap.parse_args(argv)

    crops = _crops(Path(args.data), args.n)
    if not crops:
        print(f"no faces under {args.data}/dfdc-faces", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="onnx-speed-") as tmp:
        for recipe, threads in [(r, t) for r in args.recipes for t in args.threads]:
            # onnxruntime sessions take torch's thread count when they are created (OnnxClassifier).
            torch.set_num_threads(threads)
            engines = _engines(recipe, Path(tmp))
            for det in engines.values():  # warm-up: first calls allocate and pick kernels
                for batch in (1, 8):
                    _faces_per_s(det, crops[:8], batch)
            samples: dict[tuple[str, int], list[float]] = {}
            loads: dict[tuple[str, int], list[float]] = {}
            for rnd in range(args.rounds):
                for batch in (1, 8):
                    for name, det in engines.items():
                        load_now = os.getloadavg()[0]
                        fps = _faces_per_s(det, crops, batch)
                        samples.setdefault((name, batch), []).append(fps)
                        loads.setdefault((name, batch), []).append(load_now)
                        print(
                            f"{recipe} threads {threads} round {rnd + 1} batch {batch} {name:<9} {fps:7.2f} faces/s  load {load_now:.2f}"
                        )
            cfg = engines["torch"].cfg
            for batch in (1, 8):
                torch_fps = statistics.median(samples[("torch", batch)])
                for name in engines:
                    fps = statistics.median(samples[(name, batch)])
                    results.append(
                        {
                            "recipe": recipe,
                            "model": cfg.model.name,
                            "backbone": engines["torch"].detector.backbone_name,
                            "image_size": int(cfg.data.image_size),
                            "engine": name,
                            "threads": threads,
                            "batch": batch,
                            "faces_per_s": round(fps, 2),
                            "ms_per_face": round(1000.0 / fps, 1),
                            "speedup_vs_torch": round(fps / torch_fps, 2),
                            "rounds": [round(v, 2) for v in samples[(name, batch)]],
                            "loadavg_before_each": [round(v, 2) for v in loads[(name, batch)]],
                        }
                    )
    doc = {
        "machine": {**machine_info(torch.device("cpu")), "onnxruntime": onnxruntime.__version__},
        "command": "python benchmarks/onnx_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "faces": len(crops),
        "measure": "FaceForgeryDetector.score_crops on aligned DFDC crops: resize + classifier (no face detection)",
        "note": "taken under load: a training job ran on this 2-core machine at the same time; engines were "
        "measured interleaved within each round and the median over rounds is reported; "
        "loadavg_before_each holds os.getloadavg()[0] before each measurement",
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "results": results,
    }
    atomic_write_json(args.out, doc)
    for r in results:
        print(f"{r['recipe']:<6} {r['backbone']:<16} {r['image_size']:>4}px threads {r['threads']} batch {r['batch']} {r['engine']:<9} "
              f"{r['faces_per_s']:7.2f} faces/s  x{r['speedup_vs_torch']:.2f}")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
