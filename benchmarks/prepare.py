"""Frames per second of the preprocessing stages (decode + detect + align) per face detector.

    python benchmarks/prepare.py [DATA] --frames 8 --out benchmarks/results/prepare.json

DATA defaults to ../shared/data; the videos are DATA/dfdc-videos/*.mp4 (1080p DFDC clips). For each
detector, every video's ``--frames`` evenly spaced frames are decoded (seeking), searched for faces
and aligned, in one process with ``--threads`` threads; the time of each stage is summed. The CPU
may be shared: the load average before and after each run is recorded next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from fakescope.preprocess.align import align_face
from fakescope.preprocess.config import PreprocessConfig
from fakescope.preprocess.detectors import build_face_detector, select_faces
from fakescope.preprocess.video import iter_frames, probe_video, select_frame_indices
from fakescope.utils.atomic import atomic_write_json

REPO = Path(__file__).resolve().parents[1]


def bench_detector(videos: list[Path], cfg: PreprocessConfig, threads: int, device: str) -> dict:
    detector = build_face_detector(cfg, device, threads)
    t_decode = t_detect = t_align = 0.0
    frames = faces = 0
    load_before = os.getloadavg()
    wall = time.perf_counter()
    for video in videos:
        t = time.perf_counter()
        probe = probe_video(video)
        sel = select_frame_indices(probe.n_frames, cfg.frames)
        t_decode += time.perf_counter() - t
        it = iter_frames(video, sel.indices, probe=probe, seek=cfg.frames.seek)
        while True:
            t = time.perf_counter()
            frame = next(it, None)
            t_decode += time.perf_counter() - t
            if frame is None:
                break
            t = time.perf_counter()
            found = detector.detect(frame.image)
            t_detect += time.perf_counter() - t
            frames += 1
            face = select_faces([found], cfg.face_select)[0]
            if face is not None:
                t = time.perf_counter()
                align_face(frame.image, face.landmarks, cfg.align, box=face.box)
                t_align += time.perf_counter() - t
                faces += 1
    wall = time.perf_counter() - wall
    return {
        "detector": cfg.detector,
        "detect_max_side": cfg.detect_max_side,
        "videos": len(videos),
        "frames": frames,
        "faces": faces,
        "seconds": round(wall, 3),
        "frames_per_second": round(frames / wall, 3),
        "stage_seconds_per_frame": {
            "decode": round(t_decode / max(frames, 1), 4),
            "detect": round(t_detect / max(frames, 1), 4),
            "align": round(t_align / max(faces, 1), 4),
        },
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--frames", type=int, default=8, help="evenly spaced frames per video")
    ap.add_argument("--detectors", default="retinaface,mtcnn")
    ap.add_argument("--detect-max-side", type=int, default=960, help="0: detect at full resolution")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "prepare.json"))
    args = ap.parse_args(argv)
    videos = sorted((Path(args.data) / "dfdc-videos").glob("*.mp4"))
    if not videos:
        print(f"no videos in {Path(args.data) / 'dfdc-videos'}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    results = []
    for name in args.detectors.split(","):
        cfg = PreprocessConfig.model_validate(
            {
                "detector": name,
                "detect_max_side": args.detect_max_side or None,
                "frames": {"count": args.frames},
            }
        )
        res = bench_detector(videos, cfg, args.threads, args.device)
        print(json.dumps(res))
        results.append(res)
    report = {
        "command": "python benchmarks/prepare.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "results": results,
    }
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
