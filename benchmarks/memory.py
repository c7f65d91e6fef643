"""Peak resident memory of ``fakescope train`` (1 epoch) and ``fakescope evaluate`` against the number of
faces (issue 15, "Memory flat in data size"; docs/scale.md "Memory").

    nice -n 10 .venv/bin/python benchmarks/memory.py [--sizes 1000 4000 16000] [--label after]

Each command runs in its own wrapper process, which reports ``getrusage(RUSAGE_CHILDREN).ru_maxrss``:
the peak RSS of the command's process (DataLoader workers, if any, are measured apart; the default
config has none).

The data: larger sets are made by **repeating the same DFDC faces under new names**. Copy ``k`` of
the pool is a symlink ``TMP/rK`` to the data set's folder, so row ``rK/real/x.jpg`` is the same file
as ``real/x.jpg``, with the group renamed ``<group>~rK`` (the split stays by group). The pools are
the first ``--pool`` rows of ``dfdc-faces`` (training) and of ``dfdc-faces-more`` (evaluation: other
source videos, so evaluate's content-based leakage guard, which would drop a face the run trained on
under any name, drops none). Detector ``clip`` (frozen, pretrained Lite0, ``configs/cpu/clip.yaml``):
its ``clip`` input goes through the stores. The heatmap/feature caches are content-addressed, so a
repeated face hits the cache and only ``--pool`` embeddings per pool are computed: this measures
memory, not speed. An unmeasured warm-up (train and evaluate at the smallest size) fills the cache
first, so every measured run does the same kind of work, reading embeddings (``--no-warmup``: the
smallest size then also computes them, and its peak includes the backbone's activations). Train runs 1 epoch of ``--steps`` steps (``train.max_steps_per_epoch``) but
precomputes and checks every train and val face; evaluate scores the run trained on the smallest size
on every face of the evaluation manifest (``--split all --no-plots``: the t-SNE plot keeps every
embedding, which is not what this measures).

Run it against other code with ``PYTHONPATH=/copy/of/src`` (the "before" figures of docs/scale.md).
Results are merged into ``benchmarks/results/memory.json`` under ``--label``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs the command given as arguments and prints the peak RSS of its process tree's largest member (KiB).
WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def build_manifest(src: Path, tmp: Path, name: str, pool: int, n: int) -> Path:
    """``n`` rows made by repeating the first ``pool`` rows of ``src`` under new paths and groups."""
    with open(src, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:pool]
    out = tmp / f"{name}_{n}.csv"
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "group"])
        for i in range(n):
            k, j = divmod(i, len(rows))
            r = rows[j]
            link = tmp / f"{name}_r{k}"
            if not link.exists():
                link.symlink_to(src.parent.resolve(), target_is_directory=True)
            w.writerow([f"{link.name}/{r['path']}", r["label"], f"{r['group']}~r{k}"])
    return out


def measure(cmd: list[str], log: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    with open(log, "w") as err:
        res = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], stdout=subprocess.PIPE, stderr=err,
                             text=True, check=True)  # fmt: skip
    rc, kib = (int(v) for v in res.stdout.split())
    if rc != 0:
        sys.exit(f"error: {' '.join(cmd)} exited {rc}; see {log}")
    return {"peak_rss_mib": round(kib / 1024, 1), "wall_s": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    p.add_argument("--pool", type=int, default=1000, help="distinct faces repeated to make each set")
    p.add_argument("--steps", type=int, default=5, help="train.max_steps_per_epoch")
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "cpu" / "clip.yaml")
    p.add_argument("--set", action="append", default=[], help="extra --set for train")
    p.add_argument("--label", default="after", help="key of these figures in the JSON")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "memory.json")
    p.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    p.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="measure the smallest size with a cold cache (it then also computes the embeddings)",
    )
    args = p.parse_args(argv)
    train_src = args.data / "dfdc-faces" / "manifest.csv"
    eval_src = args.data / "dfdc-faces-more" / "manifest.csv"
    for f in (train_src, eval_src):
        if not f.is_file():
            sys.exit(f"error: {f} not found (--data: the shared data folder)")
    fs = [sys.executable, "-m", "fakescope"]
    load = os.getloadavg()
    work = args.keep or Path(tempfile.mkdtemp(prefix="fakescope_mem_"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    results: dict[str, dict[str, dict[str, float]]] = {"train": {}, "evaluate": {}}
    entry = {
        "results": results,
        "complete": False,
        "load_average_at_start": [round(x, 2) for x in load],
        "config": str(args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config),
        "train_set": ["train.epochs=1", f"train.max_steps_per_epoch={args.steps}", *args.set],
        "data": f"first {args.pool} rows of dfdc-faces (train) / dfdc-faces-more (evaluate), repeated under "
        "new names (symlinked folders, groups <group>~rK); caches content-addressed, so repeats hit them",
        "evaluate_flags": "--split all --no-plots --bootstrap 0, run trained on the smallest size",
        "warmup": args.warmup,
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }

    def save() -> None:  # after every measurement: a stopped run keeps what it measured
        from fakescope.utils.atomic import atomic_write_json

        entry["load_average_now"] = [round(x, 2) for x in os.getloadavg()]
        old = json.loads(args.json.read_text()) if args.json.is_file() else {}
        old[args.label] = entry
        atomic_write_json(args.json, old)

    def train_cmd(n: int, run: Path) -> list[str]:
        manifest = build_manifest(train_src, work, "train", args.pool, n)
        return [*fs, "train", "--config", str(args.config), "--out", str(run),
                "--set", f"data.manifest={manifest}", "--set", "train.epochs=1",
                "--set", f"train.max_steps_per_epoch={args.steps}", "--set", f"train.feature_cache_dir={cache}",
                "--set", "train.progress=false", *[a for s in args.set for a in ("--set", s)]]  # fmt: skip

    def eval_cmd(n: int, run: Path, out: Path) -> list[str]:
        manifest = build_manifest(eval_src, work, "eval", args.pool, n)
        return [*fs, "evaluate", "--run", str(run), "--data", str(manifest), "--split", "all", "--no-plots",
                "--bootstrap", "0", "--out", str(out)]  # fmt: skip

    smallest = min(args.sizes)
    first = work / f"run_{smallest}"
    if args.warmup:  # fill the caches with both pools' embeddings, so every measured run only reads them
        measure(train_cmd(smallest, work / "run_warmup"), work / "warmup_train.log")
        measure(eval_cmd(smallest, work / "run_warmup", work / "eval_warmup"), work / "warmup_eval.log")
        print("warm-up done (not measured): both pools' embeddings are in the cache", flush=True)
    for n in sorted(args.sizes):
        results["train"][str(n)] = m = measure(train_cmd(n, work / f"run_{n}"), work / f"train_{n}.log")
        save()
        print(f"train    {n:>6} faces: peak RSS {m['peak_rss_mib']:8.1f} MiB  ({m['wall_s']} s)", flush=True)
    for n in sorted(args.sizes):
        cmd = eval_cmd(n, first, work / f"eval_{n}")
        results["evaluate"][str(n)] = m = measure(cmd, work / f"eval_{n}.log")
        save()
        print(f"evaluate {n:>6} faces: peak RSS {m['peak_rss_mib']:8.1f} MiB  ({m['wall_s']} s)", flush=True)
    lo, hi = str(min(args.sizes)), str(max(args.sizes))
    growth = {k: round(v[hi]["peak_rss_mib"] / v[lo]["peak_rss_mib"] - 1, 3) for k, v in results.items()}
    print(f"growth {lo} -> {hi} faces: " + ", ".join(f"{k} {g:+.1%}" for k, g in growth.items()))
    entry["growth_smallest_to_largest"] = growth
    entry["complete"] = True
    save()
    print(f"wrote {args.json} [{args.label}]; work folder {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
