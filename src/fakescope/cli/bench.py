"""`fakescope bench`: faces per second of `detect`, per model family, split by stage."""

from __future__ import annotations

import argparse
import os

from fakescope.cli.common import add_set_argument, nonneg_int, positive_int

DESCRIPTION = """Measure how fast `detect` scores faces, per model family, split into face detection +
alignment, features (INR fit + heatmaps for INFER, frozen image embedding) and the classifier.

Without --run, detectors are built from their config with random weights (speed does not depend on
them; nothing is downloaded). With --run, trained runs are timed as they are. Inputs are N images
from ../shared/data/dfdc-faces (or --images DIR), decoded once beforehand; each goes through
detector.predict() one at a time, as `fakescope detect` does. The CPU may be shared: the 1-minute load
average before and after each model is printed and saved.

For reference, the AIRL paper (Table VI) reports 15.8 ms per face (63 faces/s) on an A100.

examples:
  fakescope bench                                         # infer + airl, paper backbones, 224 px
  fakescope bench --models airl infer --backbone lite0 --image-size 128 --inr-resolution 64
  fakescope bench --run runs/airl_dfdc --device cuda -n 64
  fakescope bench --models airl --engine onnx             # the random airl exported to ONNX on the fly
  fakescope bench --run airl.onnx --engine onnx           # a file written by fakescope export
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models",
        nargs="+",
        default=["infer", "airl"],
        metavar="NAME",
        help="registered detectors to time (default: infer airl)",
    )
    p.add_argument(
        "--run", nargs="+", default=[], metavar="RUN", help="time trained runs instead of --models"
    )
    p.add_argument(
        "--backbone", default="auto", help="model.backbone for --models (default auto = the paper's)"
    )
    p.add_argument("--image-size", type=positive_int, default=224, help="detector input size (default 224)")
    p.add_argument(
        "--inr-resolution", type=positive_int, default=None, help="INR resolution (default: the image size)"
    )
    p.add_argument(
        "-n", "--num-images", type=positive_int, default=8, help="images timed per model (default 8)"
    )
    p.add_argument("--warmup", type=nonneg_int, default=2, help="untimed calls first (default 2)")
    p.add_argument(
        "--images", default=None, metavar="DIR", help="folder of images (default ../shared/data/dfdc-faces)"
    )
    p.add_argument("--aligned", action="store_true", help="inputs are aligned crops: skip face detection")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument(
        "--engine",
        choices=["torch", "onnx"],
        default="torch",
        help="classifier engine (default torch); onnx: --run takes .onnx files from fakescope export, "
        "--models are exported on the fly",
    )
    p.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="with --engine onnx and --models: export with dynamic int8 quantisation",
    )
    add_set_argument(p, help="config override for --models, e.g. --set inr.max_steps=300 (repeatable)")
    p.add_argument("--out", default=None, metavar="FILE.json", help="also write the results as JSON")


def run(args: argparse.Namespace) -> int:
    import tempfile

    from fakescope.api import load
    from fakescope.eval.speed import (
        bench_config,
        default_bench_images,
        detector_from_config,
        load_bench_images,
        machine_info,
        measure_detect_speed,
        onnx_detector_from_config,
    )
    from fakescope.utils.atomic import atomic_write_json
    from fakescope.utils.paths import require_output_file
    from fakescope.utils.runtime import resolve_device

    if args.out:  # before minutes of timing
        require_output_file(args.out, "--out")
    device = resolve_device(args.device)
    if args.images:
        images, source = load_bench_images(args.images, args.num_images + args.warmup), args.images
    else:
        images, source = default_bench_images(args.num_images + args.warmup)
    results = []
    targets = [("run", r) for r in args.run] or [("model", m) for m in args.models]
    exports = tempfile.TemporaryDirectory(prefix="fakescope-bench-onnx-")
    for kind, target in targets:
        if kind == "run":
            det = load(target, device=str(device), engine=args.engine)
            weights = f"trained ({target})"
        else:
            cfg = bench_config(
                target, args.backbone, args.image_size, args.inr_resolution, str(device), args.overrides
            )
            weights = "random (timing only)"
            if args.engine == "onnx":
                det = onnx_detector_from_config(cfg, device, exports.name, args.quantize)
            else:
                det = detector_from_config(cfg, device)
        res = measure_detect_speed(
            det,
            images,
            warmup=args.warmup,
            aligned=args.aligned,
            weights=weights,
            progress=True,
        )
        results.append(res)
        st = res.ms_per_face_by_stage
        print(
            f"{res.model:<10} {res.engine:<5} {res.backbone:<16} {res.image_size:>4}px inr={res.inr_resolution or '-':<4} "
            f"{res.faces_per_s:8.2f} faces/s  {res.ms_per_face:9.1f} ms/face  (detect+align {st['detect_align']:.1f}, "
            f"features {st['features']:.1f}, classifier {st['classifier']:.1f} ms)  "
            f"load {res.loadavg_before:.1f}->{res.loadavg_after:.1f}"
        )
    exports.cleanup()
    info = machine_info(device)
    print(
        f"{info['cpu_count']} CPU cores, {info['torch_threads']} torch threads, {info.get('gpu', 'no GPU')}; "
        f"images: {source}; AIRL paper: 15.8 ms/face on an A100"
    )
    if args.out:
        atomic_write_json(
            args.out,
            {
                "machine": info,
                "images": source,
                "aligned": args.aligned,
                "results": [r.to_dict() for r in results],
                "note": "1-minute load averages are recorded; the CPU may be shared",
            },
        )
        print(f"wrote {os.path.abspath(args.out)}")
    return 0
