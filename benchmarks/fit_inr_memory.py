"""Peak memory (RSS) of ``fakescope fit-inr`` against the number of large images in its manifest.

    python benchmarks/fit_inr_memory.py [DATA] --side 4096 --counts 1 2 4 8 \\
        --out benchmarks/results/fit_inr_memory.json

DATA defaults to ../shared/data. The large images are DFDC face crops (DATA/dfdc-faces) upscaled to
``--side`` x ``--side`` and saved as JPEG (quality 90) in a temporary folder: a 4096-px image is 16.8 MP,
50 MB decoded. For each count N, ``fakescope fit-inr`` runs in a fresh process on a manifest of the
first N images (INR at 16 px, 20 steps, an empty cache), and the peak RSS of that process is read
from ``getrusage(RUSAGE_CHILDREN)`` of a wrapper process that ran only it. A loader that streams its
images keeps the peak flat in N; one that holds every decoded image grows by about one decoded image
per image. Issue 16 item 3.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from fakescope.utils.atomic import atomic_write_json

REPO = Path(__file__).resolve().parents[1]

_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def make_images(data: Path, folder: Path, n: int, side: int) -> list[Path]:
    faces = sorted((data / "dfdc-faces" / "real").glob("*.jpg"))[:n]
    out = []
    for i, f in enumerate(faces):
        p = folder / f"large_{i:02d}.jpg"
        Image.open(f).convert("RGB").resize((side, side), Image.BICUBIC).save(p, quality=90)
        out.append(p)
    return out


def peak_rss_mb(images: list[Path], work: Path) -> tuple[float, float]:
    manifest = work / f"m{len(images)}.csv"
    manifest.write_text("path,label,group\n" + "".join(f"{p},real,g{i}\n" for i, p in enumerate(images)))
    cmd = [
        sys.executable, "-m", "fakescope", "fit-inr", "--manifest", str(manifest),
        "--out", str(work / f"out{len(images)}"), "--cache", str(work / f"cache{len(images)}"),
        "--device", "cpu", "--quiet", "--set", "inr.resolution=16", "--set", "inr.max_steps=20",
    ]  # fmt: skip
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, check=True)
    rc, kb = res.stdout.split()
    if rc != "0":
        raise SystemExit(f"fit-inr failed on {len(images)} images (exit {rc})")
    return int(kb) / 1024, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--side", type=int, default=4096, help="side of each large image (default 4096)")
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "fit_inr_memory.json"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        images = make_images(Path(args.data), work, max(args.counts), args.side)
        decoded_mb = args.side * args.side * 3 / 2**20
        rows = []
        for n in args.counts:
            load = os.getloadavg()
            peak, wall = peak_rss_mb(images[:n], work)
            rows.append(
                {"images": n, "peak_rss_mb": round(peak, 1), "wall_s": round(wall, 1), "load_avg": load[0]}
            )
            print(f"{n:3d} images of {args.side}x{args.side}: peak RSS {peak:7.1f} MB ({wall:.1f} s)")
    first, last = rows[0], rows[-1]
    growth = (last["peak_rss_mb"] - first["peak_rss_mb"]) / max(1, last["images"] - first["images"])
    result = {
        "benchmark": "fit_inr_memory",
        "command": "python benchmarks/fit_inr_memory.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "side": args.side,
        "decoded_image_mb": round(decoded_mb, 1),
        "rows": rows,
        "growth_mb_per_image": round(growth, 1),
        "flat": growth < 0.25 * decoded_mb,
        "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()},
    }
    atomic_write_json(args.out, result)
    print(f"growth: {growth:.1f} MB per image (one decoded image: {decoded_mb:.1f} MB); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
