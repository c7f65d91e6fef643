"""`fakescope export`: a trained run's classifier as an ONNX file for `--engine onnx` (docs/onnx.md)."""

from __future__ import annotations

import argparse
import json
import os

DESCRIPTION = """Export a trained run's classifier (its best checkpoint) to ONNX, for
`fakescope detect --engine onnx` and `fakescope bench --engine onnx` (onnxruntime instead of PyTorch).

AIRL-family detectors are exported whole, on the aligned face image (the block DCT is in the graph).
INFER-family detectors export their head, fed the INR heatmaps and frozen embedding that the engine
computes in PyTorch as the torch engine does. Other detectors are refused with the reason.

The file carries the run's config, validation thresholds and provenance (detector, image size,
normalisation, source weights SHA-256, fakescope version) in its metadata, so the run directory is not
needed to score with it. Before writing, onnxruntime must reproduce PyTorch's scores within 1e-3.
--quantize int8 applies onnxruntime's dynamic int8 quantisation (smaller, often faster on a CPU; its
scores move: docs/onnx.md gives the AUC change).

examples:
  fakescope export --run runs/airl_dfdc --onnx airl.onnx
  fakescope export --run runs/airl_dfdc --onnx airl-int8.onnx --quantize int8
  fakescope detect photo.jpg --model airl.onnx --engine onnx
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--run",
        required=True,
        metavar="RUN",
        help="a run directory (uses checkpoints/best) or a checkpoint .json/.safetensors",
    )
    p.add_argument("--onnx", required=True, metavar="FILE.onnx", help="where to write the ONNX model")
    p.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="dynamic int8 quantisation of the weights (onnxruntime quantize_dynamic)",
    )


def run(args: argparse.Namespace) -> int:
    from fakescope.inference.onnx_engine import export_onnx
    from fakescope.utils.paths import require_output_file

    require_output_file(args.onnx, "--onnx")  # before the run loads and the graph is traced
    info = export_onnx(args.run, args.onnx, quantize=args.quantize)
    size_mb = os.path.getsize(args.onnx) / 1e6
    print(
        f"wrote {os.path.abspath(args.onnx)} ({size_mb:.1f} MB): detector {info['detector']}, inputs "
        f"{', '.join(json.loads(info['inputs']))}, {info['image_size']} px, "
        f"quantization {info['quantization']}; fp32 graph vs PyTorch max |diff| {info['max_abs_diff']:.1e}"
    )
    return 0
