"""`fakescope detect`: score images, folders and videos with a trained run."""

from __future__ import annotations

import argparse
import json
import sys

from fakescope.cli.common import positive_int

DESCRIPTION = """Score your own images and videos with the detector shipped with fakescope (its card:
docs/model-card.md, or `fakescope models`), or with a trained run (--model RUN).

PATH may be an image, a video (.mp4 .avi .mov .mkv .webm ...), or a folder (searched recursively for
both). Each face is detected (the run's RetinaFace / MTCNN settings), aligned like the training
crops, and scored; the label uses the threshold chosen on the run's validation split. A video is
sampled at eval.frames_per_video frames and scored by the mean of its frame scores.

Bad inputs (corrupt, unsupported, no face) get one line each on stderr and the others go on; the
exit status is 1 when any input failed, 2 when the model cannot be loaded.

examples:
  fakescope detect photo.jpg clip.mp4
  fakescope detect photo.jpg clip.mp4 --model runs/airl_dfdc
  fakescope detect my_faces/ --model runs/infer_dfdc --aligned --json > scores.json
  fakescope detect clip.mp4 --model runs/airl_dfdc --report report/   # open report/index.html
  fakescope detect photo.jpg --model airl.onnx --engine onnx   # after fakescope export (docs/onnx.md)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="images, videos or folders")
    p.add_argument(
        "--model",
        "-m",
        default=None,
        metavar="RUN",
        help="a run directory (uses checkpoints/best) or a checkpoint .json/.safetensors; with "
        "--engine onnx, a .onnx file written by fakescope export (default: the detector shipped with "
        "fakescope, docs/model-card.md)",
    )
    p.add_argument(
        "--engine",
        choices=["torch", "onnx"],
        default="torch",
        help="run the classifier with PyTorch (default) or onnxruntime (an exported .onnx; face "
        "detection, alignment, heatmaps and embeddings stay in PyTorch; no Grad-CAM)",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout instead of the table"
    )
    p.add_argument("--report", metavar="DIR", help="write an HTML report per input, and DIR/index.html")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument(
        "--aligned",
        action="store_true",
        help="inputs are already aligned face crops: skip face detection and alignment",
    )
    p.add_argument(
        "--frames",
        type=positive_int,
        default=None,
        metavar="N",
        help="frames sampled per video (default: the run's eval.frames_per_video)",
    )
    p.add_argument("--no-gradcam", action="store_true", help="reports without Grad-CAM (faster)")


def run(args: argparse.Namespace) -> int:
    from fakescope.api import DetectOptions, detect_paths, expand_inputs, load
    from fakescope.api.batch import skipped_summary
    from fakescope.utils.paths import require_output_dir
    from fakescope.utils.schema import json_safe
    from fakescope.utils.text import one_line, printable

    if args.report:  # before the model loads: a bad --report costs one line, not the scoring
        require_output_dir(args.report, "--report")
    options = DetectOptions(aligned=args.aligned, frames_per_video=args.frames)
    detector = load(args.model, device=args.device, options=options, engine=args.engine)
    skipped: list[tuple[str, str]] = []
    inputs, missing = expand_inputs(args.paths, skipped)
    outcome = detect_paths(
        detector, inputs, report_dir=args.report, gradcam=not args.no_gradcam, progress=not args.json
    )
    outcome.errors[:0] = missing
    if line := skipped_summary(skipped):  # folders: what the scan left out, and why
        print(one_line(f"note: {line}"), file=sys.stderr)
    # printable: a file name that is not UTF-8 shows as \xNN escapes, whatever stdout's encoding
    for _path, err in outcome.errors:
        print(one_line(f"fakescope detect: {err}"), file=sys.stderr)
    for pred in outcome.predictions:
        if pred.error:  # a note on a scored input (short video, a re-aligned tight crop)
            print(one_line(f"note: {pred.source}: {pred.error}"), file=sys.stderr)
        if line := caution_line(pred):  # a face unlike the training data (the run's familiarity model)
            print(one_line(f"note: {pred.source}: {line}"), file=sys.stderr)
    if args.json:
        doc = {
            "model": args.model or "shipped",  # the detector inside the package (docs/model-card.md)
            "detector": detector.name,
            "engine": detector.engine,
            "threshold": detector.threshold,
            "threshold_source": detector.threshold_source,
            "results": [p.to_dict() for p in outcome.predictions],
            "errors": [{"source": printable(s), "error": printable(e)} for s, e in outcome.errors],
        }
        if skipped:  # only when a folder scan left files out, like "report" only with --report
            doc["skipped"] = [{"source": printable(s), "reason": why} for s, why in skipped]
        if args.report:
            doc["report"] = str(outcome.report_index)
        if detector.calibration is not None:  # only for a run with calibration.json
            doc["calibration"] = calibration_summary(detector.calibration)
        # strict JSON: no bare NaN (json_safe turns any non-finite number into null)
        print(json.dumps(json_safe(doc), indent=2, allow_nan=False))
    else:
        print(printable(extended_table(outcome, detector.calibration) or outcome.table()))
        if args.report and outcome.report_index is not None:
            print(f"report: {outcome.report_index}")
    return 1 if outcome.errors else 0


# ---- calibration and familiarity (a run with calibration.json / familiarity.safetensors) ----------------


def calibration_summary(cal) -> dict:
    """What ``--json`` says about the run's calibration: the method and the operating point."""
    return {"method": cal.method, "temperature": cal.temperature, "target_fpr": cal.target_fpr,
            "threshold": cal.threshold, "threshold_probability": round(cal.threshold_probability, 6)}  # fmt: skip


def caution_line(pred) -> str | None:
    """The caution for an input with a face unlike the training data (which faces, when several)."""
    from fakescope.inference.familiarity import CAUTION

    flagged = [i for i, f in enumerate(pred.faces) if f.familiarity and f.familiarity["unfamiliar"]]
    if not flagged:
        return None
    if len(pred.faces) == 1:
        return CAUTION
    return f"{CAUTION} ({len(flagged)} of {len(pred.faces)} faces)"


def _familiar_cell(faces) -> str:
    fams = [f.familiarity for f in faces if f.familiarity is not None]
    if not fams:
        return "—"
    bad = sum(bool(f["unfamiliar"]) for f in fams)
    if len(fams) == 1:
        return f"{'UNFAMILIAR' if bad else 'familiar'} ({fams[0]['score']:.2f} / {fams[0]['threshold']:.2f})"
    return f"{bad}/{len(fams)} unfamiliar"


def extended_table(outcome, calibration) -> str | None:
    """The table with the calibrated P(fake) and familiarity columns, when any face has either; ``None``
    for a run without them (the plain table is printed as before). An image's calibrated value is its
    image score calibrated; a video's is not given (the calibration is fitted on frames)."""
    faces = [f for p in outcome.predictions for f in p.faces]
    if not any(f.probability is not None or f.familiarity is not None for f in faces):
        return None

    def calibrated(value: float | None) -> str:
        return "—" if value is None or calibration is None else f"{float(calibration.apply(value)):.3f}"

    rows = [("input", "kind", "faces", "P(fake)", "calibrated", "familiarity", "label", "threshold")]
    for p in outcome.predictions:
        faces_cell = str(len(p.faces)) + (f" ({p.frames_no_face} frames no face)" if p.frames_no_face else "")
        score = "—" if p.score is None else f"{p.score:.3f}"
        cal = calibrated(p.score) if p.kind == "image" else "—"
        rows.append((p.source, p.kind, faces_cell, score, cal, _familiar_cell(p.faces), p.label or "—",
                     f"{p.threshold:.3f}"))  # fmt: skip
        if p.kind == "image" and len(p.faces) > 1:
            for i, f in enumerate(p.faces):
                where = f"  face {i + 1} {f.box and [round(v) for v in f.box]}"
                prob = "—" if f.probability is None else f"{f.probability:.3f}"
                rows.append((where, "", "", f"{f.score:.3f}", prob, _familiar_cell([f]), f.label, ""))
    for src, _ in outcome.errors:
        rows.append((src, "error (see above)", "", "", "", "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
