"""Frames per second of the preprocessing stages (decode + detect + align) per face detector and per
decode mode, and whether the modes give the same crops.

    python benchmarks/prepare.py [DATA] --frames 8 --detectors retinaface --modes legacy new --repeat 2

DATA defaults to ../shared/data; the videos are DATA/dfdc-videos/*.mp4 (1080p DFDC clips). For each
detector and mode, every video's ``--frames`` evenly spaced frames are decoded, searched for faces
and aligned, in one process with ``--threads`` threads, as ``fakescope prepare`` does; the time of
each stage is summed. Modes (``preprocess.frames`` settings):

    legacy   decode=legacy, prefetch=0: the seek-and-decode-forward path before issue 15
    new      decode=auto, drop_nonref, prefetch=2: the defaults
    (also: new-noprefetch, sequential, seek, nodrop; see MODES)

With ``--repeat N`` the modes run interleaved (legacy, new, legacy, new, ...) so that a change in the
machine's load hits both; the figures kept are each mode's median run. The CPU may be shared: the
load average before and after every run is recorded next to its figures, and so is the process's
CPU time. With prefetch the decode stage overlaps detection: "decode" is then the time spent
waiting for the next frame. Every mode's crops are compared with the first mode's: the largest
difference of an eye position (pixels, in the frame) and whether the aligned crop bytes are equal.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fakescope.preprocess.align import align_face
from fakescope.preprocess.config import PreprocessConfig
from fakescope.preprocess.detectors import build_face_detector, select_faces
from fakescope.preprocess.pipeline import PrepareJob, start_job_frames
from fakescope.utils.atomic import atomic_write_json

REPO = Path(__file__).resolve().parents[1]

#: mode name -> preprocess.frames overrides
MODES: dict[str, dict] = {
    "legacy": {"decode": "legacy", "prefetch": 0},
    "new": {"decode": "auto", "drop_nonref": True, "prefetch": 2},
    "new-noprefetch": {"decode": "auto", "drop_nonref": True, "prefetch": 0},
    "nodrop": {"decode": "auto", "drop_nonref": False, "prefetch": 2},
    "sequential": {"decode": "sequential", "drop_nonref": True, "prefetch": 2},
    "seek": {"decode": "seek", "drop_nonref": True, "prefetch": 2},
}


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def bench_detector(videos: list[Path], cfg: PreprocessConfig, detector) -> tuple[dict, dict]:
    """One timed pass, frames found as ``fakescope prepare`` finds them (each video's decoding starts
    when the previous video's decoder is done, with prefetch); returns the figures and the crops
    ((video, frame) -> (eye positions, crop sha1))."""
    t_decode = t_detect = t_align = 0.0
    frames = faces = 0
    crops: dict[str, tuple[list[float], str]] = {}
    jobs = [PrepareJob(v.stem, "video", 0, v.stem, "dfdc", "", "", v.stem, ((None, str(v)),)) for v in videos]
    started: dict[int, tuple] = {}

    def start(i: int):
        def run() -> None:
            if i < len(jobs) and i not in started:
                started[i] = start_job_frames(jobs[i], cfg, start(i + 1))

        return run

    load_before = os.getloadavg()
    cpu = _cpu_seconds()
    wall = time.perf_counter()
    for i, job in enumerate(jobs):
        t = time.perf_counter()
        source, _ = started.pop(i, None) or start_job_frames(job, cfg, start(i + 1))
        t_decode += time.perf_counter() - t
        while True:
            t = time.perf_counter()
            item = next(source, None)
            t_decode += time.perf_counter() - t
            if item is None:
                break
            number, image = item
            t = time.perf_counter()
            found = detector.detect(image)
            t_detect += time.perf_counter() - t
            frames += 1
            face = select_faces([found], cfg.face_select)[0]
            if face is not None:
                t = time.perf_counter()
                aligned = align_face(image, face.landmarks, cfg.align, box=face.box)
                t_align += time.perf_counter() - t
                faces += 1
                eyes = np.asarray(face.landmarks, np.float64)[:2].ravel().tolist()
                crops[f"{job.key}:{number}"] = (eyes, hashlib.sha1(aligned.image.tobytes()).hexdigest())
    wall = time.perf_counter() - wall
    res = {
        "detector": cfg.detector,
        "detect_max_side": cfg.detect_max_side,
        "videos": len(videos),
        "frames": frames,
        "faces": faces,
        "seconds": round(wall, 3),
        "cpu_seconds": round(_cpu_seconds() - cpu, 3),
        "frames_per_second": round(frames / wall, 3),
        "stage_seconds_per_frame": {
            "decode": round(t_decode / max(frames, 1), 4),
            "detect": round(t_detect / max(frames, 1), 4),
            "align": round(t_align / max(faces, 1), 4),
        },
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    return res, crops


def compare_crops(ref: dict, other: dict) -> dict:
    """Eye-position difference (px) and crop-byte equality of ``other`` against ``ref``."""
    keys = sorted(set(ref) | set(other))
    both = [k for k in keys if k in ref and k in other]
    diffs = [float(np.max(np.abs(np.subtract(ref[k][0], other[k][0])))) for k in both]
    return {
        "faces_compared": len(both),
        "faces_only_in_one": len(keys) - len(both),
        "max_eye_difference_px": round(max(diffs), 4) if diffs else None,
        "crop_bytes_identical": sum(ref[k][1] == other[k][1] for k in both),
        "all_identical": len(both) == len(keys) and all(ref[k][1] == other[k][1] for k in both),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--frames", type=int, default=8, help="evenly spaced frames per video")
    ap.add_argument("--detectors", default="retinaface,mtcnn")
    ap.add_argument("--detect-max-side", type=int, default=960, help="0: detect at full resolution")
    ap.add_argument(
        "--modes", nargs="+", default=["new"], choices=sorted(MODES), help="decode modes to time (see above)"
    )
    ap.add_argument("--repeat", type=int, default=1, help="interleaved runs per mode; the median is kept")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "prepare.json"))
    args = ap.parse_args(argv)
    videos = sorted((Path(args.data) / "dfdc-videos").glob("*.mp4"))
    if not videos:
        print(f"no videos in {Path(args.data) / 'dfdc-videos'}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    results, comparisons = [], []
    for name in args.detectors.split(","):
        cfgs = {
            mode: PreprocessConfig.model_validate(
                {
                    "detector": name,
                    "detect_max_side": args.detect_max_side or None,
                    "frames": {"count": args.frames, **MODES[mode]},
                }
            )
            for mode in args.modes
        }
        detector = build_face_detector(cfgs[args.modes[0]], args.device, args.threads)
        runs: dict[str, list[dict]] = {m: [] for m in args.modes}
        crops: dict[str, dict] = {}
        for r in range(args.repeat):
            for mode in args.modes:
                res, crops[mode] = bench_detector(videos, cfgs[mode], detector)
                res = {"mode": mode, "frames_config": MODES[mode], "run": r, **res}
                print(json.dumps(res), flush=True)
                runs[mode].append(res)
        for mode in args.modes:
            fps = [x["frames_per_second"] for x in runs[mode]]
            median_run = sorted(runs[mode], key=lambda x: x["frames_per_second"])[(len(fps) - 1) // 2]
            results.append(
                {
                    **median_run,
                    "frames_per_second_runs": fps,
                    "frames_per_second_median": statistics.median(fps),
                }
            )
        ref = args.modes[0]
        for mode in args.modes[1:]:
            cmp = {"detector": name, "reference": ref, "mode": mode, **compare_crops(crops[ref], crops[mode])}
            med = {m: statistics.median(x["frames_per_second"] for x in runs[m]) for m in (ref, mode)}
            cmp["speedup_frames_per_second"] = round(med[mode] / med[ref], 3)
            print(json.dumps(cmp), flush=True)
            comparisons.append(cmp)
    report = {
        "command": "python benchmarks/prepare.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "modes": {m: MODES[m] for m in args.modes},
        "results": results,
        "comparisons": comparisons,
    }
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
