"""How long the shipped detector takes to load, and to score one face, as a user meets it.

    python benchmarks/shipped_speed.py [--face FACE.jpg] [--photo PHOTO.jpg] [--repeats 20] [--threads N]
        # -> benchmarks/results/shipped_speed.json

- **load:** ``fakescope.load()`` in a fresh Python process (imports included, as `fakescope detect` pays
  them), median of ``--loads`` processes;
- **one face:** ``predict(face, aligned=True)`` on an aligned face crop, and ``predict(photo)`` on a
  photograph (face detection and alignment included), each the median of ``--repeats`` calls after one
  warm-up call.

Targets (docs/model-card.md): the model loads in ≤ 5 s, and one face scores in ≤ 0.2 s on the
project's 2-core CPU when idle. The 1-minute load average before and after is saved: figures taken on a
busy machine are slower, and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LOAD_SNIPPET = (
    "import time; t=time.perf_counter(); import fakescope; fakescope.load(); print(time.perf_counter()-t)"
)


def _median_call(fn, repeats: int) -> float:
    fn()  # warm-up: first-call allocations and lazy imports
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--face", default=str(next(iter(sorted((DATA / "dfdc-faces" / "fake").glob("*.jpg"))), ""))
    )
    p.add_argument("--photo", default="", help="a photograph with a face (default: the demo's astronaut)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--loads", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "shipped_speed.json"))
    args = p.parse_args(argv)
    import torch

    import fakescope
    from fakescope.data.images import standin_photo

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
    loads = [float(subprocess.run([sys.executable, "-c", LOAD_SNIPPET], capture_output=True, text=True, env=env,
                                  check=True).stdout.strip().splitlines()[-1]) for _ in range(args.loads)]  # fmt: skip
    det = fakescope.load()
    photo = args.photo or standin_photo()
    result = {
        "load_s": statistics.median(loads),
        "aligned_face_s": _median_call(lambda: det.predict(args.face, aligned=True), args.repeats),
        "photo_s": _median_call(lambda: det.predict(photo), args.repeats),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "loadavg_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from fakescope.utils.atomic import atomic_write_json

    atomic_write_json(out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
