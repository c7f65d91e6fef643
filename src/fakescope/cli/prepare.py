"""`fakescope prepare`: videos/images -> aligned face crops + a crop manifest (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fakescope.cli.common import (
    add_config_arguments,
    add_shard_argument,
    config_from_args,
    nonneg_int,
    positive_int,
    shard_done,
)

DESCRIPTION = """\
Turn videos and images into aligned face crops plus a crop manifest (INFER §3.1, AIRL §IV-B).

INPUT is one of:
  a manifest CSV      columns path,label,group (optional dataset,method,split,video,frame);
                      rows may be videos, images, or frames (rows sharing `video` with a `frame`)
  a folder            with real/ and fake/ sub-folders (or a manifest.csv inside: it wins)
  a benchmark folder  with --layout ffpp | celebdf | dfdc_preview | deeperforensics (official trees)

Each video: frames are sampled (preprocess.frames.policy: even = COUNT evenly spaced frames; every_k;
all; per_label = INFER's 40 per real / 10 per fake video), each decoded exactly, skipping what no
sampled frame needs (preprocess.frames.decode). A video shorter than asked gives all its frames and
is listed in the summary. Faces are found by RetinaFace (default)
or MTCNN (confidence >= 0.95, as in AIRL); with several faces in a frame --face-select keeps the
largest, the most confident, or the one tracked across the video's frames. The face is aligned by a
similarity transform of its 5 landmarks onto the ArcFace template, with a 30% margin, at 224 px.

Frames with no face follow --no-face: `drop` leaves them out, `score_half` asks evaluation to score
them 0.5 when it averages a video's frames. Either way they are listed in no_face.csv and counted.

Outputs under --out:
  manifest.csv    crop manifest: path,label,group,dataset,method,split,video,frame
  crops/          the face crops (PNG, or JPEG with --format jpg)
  landmarks.csv   per crop: box, score, 5 landmarks in the frame and in the crop
  records/        one JSON per video (every sampled frame); also the resume marker
  no_face.csv     sampled frames without a face
  summary.json    videos, frames, faces found, no-face frames, short videos, errors
  prepare.json    the preprocess config used

Resumable: re-run the same command after an interruption; finished videos are kept, a half-done one
is redone. A file that cannot be read (empty, truncated, not a video) is reported and skipped; the
exit status is then 1 while every other file is still processed.

Sharded (docs/scale.md): under torchrun each rank takes every WORLD_SIZE-th video and rank 0 writes
the merged manifest after all ranks finish; with --shard K/N (K from 0, e.g. a Slurm array task) one
process does its share into --out/shards/K-of-N/ and `fakescope merge OUT` writes the manifest once
every shard is done. A dead shard is rerun alone with the same --shard and resumes.

Example:
  fakescope prepare ../shared/data/dfdc-videos --out prepared/dfdc --frames 10 --workers 2
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input", help="manifest CSV, a folder with real/ and fake/, or a benchmark folder (--layout)"
    )
    p.add_argument("--out", "-o", required=True, help="output folder (created; re-use it to resume)")
    p.add_argument(
        "--layout",
        default=None,
        help="folder layout: folder (default for folders), manifest, ffpp, celebdf, dfdc_preview, deeperforensics",
    )
    p.add_argument("--detector", choices=["retinaface", "mtcnn"], help="face detector (preprocess.detector)")
    p.add_argument(
        "--policy",
        choices=["even", "every_k", "all", "per_label"],
        help="frame sampling (preprocess.frames.policy)",
    )
    p.add_argument("--frames", type=positive_int, metavar="COUNT", help="frames per video for --policy even")
    p.add_argument("--every-k", type=positive_int, metavar="K", help="stride for --policy every_k")
    p.add_argument("--face-select", choices=["largest", "confident", "track"], help="which face when several")
    p.add_argument("--no-face", choices=["drop", "score_half"], help="what frames without a face mean")
    p.add_argument(
        "--format", choices=["png", "jpg"], help="crop file format (jpg uses preprocess.jpeg_quality)"
    )
    p.add_argument("--workers", type=nonneg_int, help="worker processes (preprocess.workers)")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N inputs (a quick look)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start again when --out was made with a different preprocess config",
    )
    p.add_argument(
        "--contact-sheet",
        metavar="PNG",
        help="also tile the crops (up to 48, template eye positions as green dots) into this image, to check alignment",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_shard_argument(p, "videos")
    add_config_arguments(p)


_FLAG_TO_KEY = {
    "detector": "preprocess.detector",
    "policy": "preprocess.frames.policy",
    "frames": "preprocess.frames.count",
    "every_k": "preprocess.frames.every_k",
    "face_select": "preprocess.face_select",
    "no_face": "preprocess.no_face_policy",
    "format": "preprocess.crop_format",
    "workers": "preprocess.workers",
}


def run(args: argparse.Namespace) -> int:
    from fakescope.data.layouts import build_manifest
    from fakescope.data.manifest import read_manifest
    from fakescope.errors import InputError
    from fakescope.preprocess.pipeline.run import merge_prepare, run_prepare
    from fakescope.utils.paths import require_output_dir, require_output_file
    from fakescope.utils.runtime import resolve_device
    from fakescope.utils.sharding import resolve_shard, shard_group, wait_for_all_shards

    require_output_dir(args.out, "--out")
    if args.contact_sheet:
        require_output_file(args.contact_sheet, "--contact-sheet")
    for flag, key in _FLAG_TO_KEY.items():
        value = getattr(args, flag)
        if value is not None:
            args.overrides.append(f"{key}={value}")
    cfg = config_from_args(args)
    shard = resolve_shard(args.shard)
    device = str(resolve_device(cfg.device))
    src = Path(args.input).expanduser()
    if src.is_file():
        rows = read_manifest(src)
    elif src.is_dir():
        rows = build_manifest(args.layout or "folder", src, cfg.data.layout_options)
    else:
        raise InputError(f"{src}: input not found (give a manifest CSV or a dataset folder)")
    if args.limit is not None:
        rows = rows[: max(0, args.limit)]
    out = Path(args.out)
    with shard_group(shard):
        summary = run_prepare(
            rows, out, cfg.preprocess, device, overwrite=args.overwrite, progress=not args.quiet,
            max_image_pixels=cfg.data.max_image_pixels, background=cfg.data.rgba_background, shard=shard,
        )  # fmt: skip
        if shard.enabled:
            print(f"shard {shard.name}: " + "; ".join(summary.lines()[:2]))
            for e in summary.errors:
                print(f"error: {e['error']}")
            if not wait_for_all_shards(shard):
                return shard_done(shard, out, failed=bool(summary.errors))
            summary = merge_prepare(out, shard.count)
    for line in summary.lines():
        print(line)
    print(f"wrote {out / 'manifest.csv'} and {out / 'summary.json'}")
    if args.contact_sheet:
        from fakescope.preprocess.contact_sheet import write_crop_contact_sheet

        if write_crop_contact_sheet(
            Path(args.out) / "manifest.csv", args.contact_sheet, cfg.preprocess.align
        ):
            print(f"wrote {args.contact_sheet}")
    return 1 if summary.errors else 0


if __name__ == "__main__":  # pragma: no cover
    from fakescope.cli import main

    sys.exit(main(["prepare", *sys.argv[1:]]))
