"""fakescope beside other work: each workload's wall time idle and beside a standard competing load.

Users run fakescope next to other programs. On a 2-core CPU `fakescope demo` took 27 s on the idle
machine but 84 s beside a one-core pure-Python busy loop and 161 s beside another PyTorch process doing
256x256 matmuls with its default threads: thread pools that spin-wait (OpenMP's default) burn cores they
do not get. This script measures that, so a thread policy can be chosen and checked with one command:

    python benchmarks/contention.py                                   # -> results/contention.json
    python benchmarks/contention.py --env OMP_WAIT_POLICY=PASSIVE --out benchmarks/results/contention_passive.json
    python benchmarks/contention.py --env OMP_NUM_THREADS=1 --workloads demo detect --repeats 3

Workloads, each a fresh ``python -m fakescope`` subprocess with this process's environment plus every
``--env KEY=VALUE`` (fresh output and cache folders each time, so nothing is skipped as already done):

- ``demo``: ``fakescope demo`` into a temporary folder (``--quick`` with ``--tiny``);
- ``fit-inr``: ``fakescope fit-inr`` on 50 faces at 64 px;
- ``train``: 30 ``airl`` training steps (``configs/cpu/airl.yaml``, one epoch capped at 30 steps) on
  the first 1400 DFDC faces, whose training split (70 % of the groups) holds 30 batches of 32 (the
  time includes start-up, building the crop cache and the end-of-epoch validation, as a user sees it);
- ``detect``: ``fakescope detect --aligned --json`` on 50 face crops, with the shipped detector when this
  install has one, else ``--model``, else a run this script trains first (Lite0 at 128 px, 20 steps; at
  ``--tiny`` a tiny random backbone at 64 px). Training that model is set-up, not timed;
- ``prepare``: ``fakescope prepare`` on two DFDC videos, 10 frames each.

Faces and videos come from ``--data`` (default ../shared/data: ``dfdc-faces``, ``dfdc-videos``); when
it is absent, from the stand-in set of :func:`fakescope.demo.build_standin_dataset` and stand-in
videos (then the ``train`` workload has fewer faces than 30 batches, and its steps are fewer).

Competing loads, each started by this script before the workload and killed after it (also on Ctrl-C
or SIGTERM, in ``finally``): ``busy``, a pure-Python loop on one core; ``torch``, a PyTorch process
multiplying 256x256 matrices in a loop with PyTorch's default threads (the thread variables
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OMP_WAIT_POLICY`` are removed from its environment; ``--env``
never applies to the loads; ``--load-threads N`` pins its threads instead). A load counts as started
once it has printed that its loop runs.

Reported per workload: the median wall time of ``--repeats`` runs idle and beside each load, and the
ratio beside-load / idle; the 1-minute load average before and after every run and the whole
benchmark; the environment given. ``--update-docs docs/benchmarks.md`` writes the table between the
``<!-- CONTENTION -->`` markers.

**Target: every workload at most 2.5x its idle time beside either load** (``TARGET_RATIO``). Measure on
an otherwise idle machine: the idle column is only idle when nothing else runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]

#: beside either competing load, every workload should take at most this many times its idle time
TARGET_RATIO = 2.5

WORKLOADS = ("demo", "fit-inr", "train", "detect", "prepare")
LOADS = ("busy", "torch")

#: the variables that set a PyTorch process's threads; removed from the ``torch`` load's environment
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")

#: an argument every competing load carries, so a test can tell a surviving load by its command line
LOAD_MARKER = "fakescope-contention-load"

BUSY_CODE = "print('ready 1', flush=True)\nwhile True:\n    pass\n"
TORCH_CODE = (
    "import sys, torch\n"
    "n = int(sys.argv[2])\n"
    "if n:\n    torch.set_num_threads(n)\n"
    "a, b = torch.randn(256, 256), torch.randn(256, 256)\n"
    "a @ b\n"
    "print('ready', torch.get_num_threads(), flush=True)\n"
    "while True:\n    a @ b\n"
)


class Sizes(NamedTuple):
    faces: int = 50
    inr_resolution: int = 64
    train_faces: int = 1400
    train_steps: int = 30
    frames: int = 10
    videos: int = 2


TINY = Sizes(faces=4, inr_resolution=16, train_faces=48, train_steps=3, frames=2, videos=2)


class Inputs(NamedTuple):
    faces: list[Path]
    faces_manifest: Path
    train_manifest: Path
    videos_manifest: Path
    source: str


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def build_inputs(data: Path, tmp: Path, sizes: Sizes) -> Inputs:
    """Small manifests of real DFDC faces and videos (or the stand-in set when ``data`` has none)."""
    from fakescope.data.manifest import ManifestRow, read_manifest, write_manifest

    faces_csv, videos_csv = data / "dfdc-faces" / "manifest.csv", data / "dfdc-videos" / "manifest.csv"
    if faces_csv.is_file():
        rows, source = read_manifest(faces_csv), "dfdc"
    else:
        from fakescope.demo import StandinConfig, build_standin_dataset

        n_pairs = max(sizes.faces // 2, 8)
        rows = read_manifest(build_standin_dataset(tmp / "standin", StandinConfig(size=128, n_pairs=n_pairs)))
        source = "standin"
    faces_manifest = write_manifest(rows[: sizes.faces], tmp / "faces.csv")
    train_manifest = write_manifest(rows[: sizes.train_faces], tmp / "train.csv")
    if videos_csv.is_file():
        videos = read_manifest(videos_csv)[: sizes.videos]
    else:
        from fakescope.demo import write_standin_video

        videos = [
            ManifestRow(str(write_standin_video(tmp / "videos" / f"v{i}.mp4", n_frames=12)), 0, f"v{i}")
            for i in range(sizes.videos)
        ]
    videos_manifest = write_manifest(videos, tmp / "videos.csv")
    return Inputs(
        [Path(r.path) for r in rows[: sizes.faces]], faces_manifest, train_manifest, videos_manifest, source
    )


def fakescope(*args: str) -> list[str]:
    return [sys.executable, "-m", "fakescope", *args]


def train_command(manifest: Path, out: Path, steps: int, tiny: bool, batch_size: int = 32) -> list[str]:
    """``fakescope train`` of the CPU ``airl`` recipe for one epoch of at most ``steps`` steps."""
    sets = [
        f"data.manifest={manifest}", f"data.crop_cache_dir={out / 'crops'}", "train.epochs=1",
        f"train.max_steps_per_epoch={steps}", "train.progress=false", f"train.batch_size={batch_size}",
        "eval.bootstrap=0",
    ]  # fmt: skip
    if tiny:
        sets += ["model.backbone=efficientnet_tiny", "model.pretrained=false", "data.image_size=64"]
    argv = ["train", "--config", str(REPO / "configs" / "cpu" / "airl.yaml"), "--out", str(out / "run")]
    for s in sets:
        argv += ["--set", s]
    return fakescope(*argv)


def has_shipped_detector() -> bool:
    from fakescope.errors import ModelLoadError
    from fakescope.inference.shipped import shipped_model_dir

    try:
        shipped_model_dir()
    except ModelLoadError:
        return False
    return True


def detect_model(args: argparse.Namespace, inputs: Inputs, tmp: Path, env: dict[str, str]) -> list[str]:
    """The ``--model`` arguments of the detect workload: none for the shipped detector."""
    if args.model:
        return ["--model", args.model]
    if has_shipped_detector():
        return []
    out = tmp / "detect-model"
    steps = 3 if args.tiny else 20
    cmd = train_command(inputs.train_manifest, out, steps, args.tiny, batch_size=8 if args.tiny else 32)
    print(
        f"no shipped detector in this install: training the detect workload's model ({steps} steps)",
        flush=True,
    )
    run_timed(cmd, env, tmp / "logs" / "detect-model")
    return ["--model", str(out / "run")]


def workload_command(
    name: str, inputs: Inputs, out: Path, args: argparse.Namespace, model: list[str]
) -> list[str]:
    """The command line of one run of workload ``name``, writing under the fresh folder ``out``."""
    s = TINY if args.tiny else Sizes()
    if name == "demo":
        return fakescope("demo", "--out", str(out), "--quiet", *(["--quick"] if args.tiny else []))
    if name == "fit-inr":
        sets = [f"inr.resolution={s.inr_resolution}"] + (["inr.max_steps=50"] if args.tiny else [])
        argv = ["fit-inr", "--manifest", str(inputs.faces_manifest), "--out", str(out / "inr"), "--cache",
                str(out / "cache"), "--limit", str(s.faces), "--quiet"]  # fmt: skip
        return fakescope(*argv, *[x for v in sets for x in ("--set", v)])
    if name == "train":
        return train_command(
            inputs.train_manifest, out, s.train_steps, args.tiny, batch_size=8 if args.tiny else 32
        )
    if name == "detect":
        return fakescope("detect", *model, "--aligned", "--json", "--no-gradcam", *map(str, inputs.faces))
    if name == "prepare":
        argv = [
            "prepare",
            str(inputs.videos_manifest),
            "--out",
            str(out / "prepared"),
            "--frames",
            str(s.frames),
        ]
        return fakescope(*argv, "--quiet")
    raise ValueError(name)


def run_timed(cmd: list[str], env: dict[str, str], log: Path) -> float:
    """Wall seconds of ``cmd``; its output goes to ``log``.out/.err. A failure stops the benchmark with
    one line (the workload's last error line); the process group is killed on any interruption."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{log}.out", "wb") as out, open(f"{log}.err", "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=REPO, start_new_session=True)
        try:
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        wall = time.perf_counter() - t0
    if rc != 0:
        lines = Path(f"{log}.err").read_text(errors="replace").strip().splitlines() or ["(no output)"]
        raise SystemExit(f"error: `{' '.join(cmd[2:5])} ...` exited with {rc}: {lines[-1]} (log: {log}.err)")
    return wall


def load_env(base: dict[str, str], threads: int) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in THREAD_VARS}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def start_load(kind: str, base_env: dict[str, str], threads: int) -> tuple[subprocess.Popen, str]:
    """Start a competing load and wait until its loop runs; returns it and its ready line."""
    code = BUSY_CODE if kind == "busy" else TORCH_CODE
    proc = subprocess.Popen(
        [sys.executable, "-c", code, LOAD_MARKER, str(threads)],
        env=load_env(base_env, threads),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        if not line.startswith("ready"):
            raise SystemExit(f"error: the {kind} load did not start (exit status {proc.wait()})")
    except BaseException:
        stop_load(proc)
        raise
    return proc, line


def stop_load(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout:
        proc.stdout.close()


def run_once(cmd_for, condition: str, env: dict[str, str], args: argparse.Namespace, tmp: Path) -> dict:
    """One timed run of a workload, idle or beside the load ``condition``, in a fresh folder."""
    out = Path(tempfile.mkdtemp(prefix=f"{condition}-", dir=tmp))
    load = None
    row = {"condition": condition, "loadavg_before": loadavg()}
    try:
        if condition != "idle":
            load, ready = start_load(condition, dict(os.environ), args.load_threads)
            row["load_pid"], row["load_threads"] = load.pid, int(ready.split()[1])
            print(f"  {condition} load started (pid {load.pid}, {row['load_threads']} thread(s))", flush=True)
        row["wall_s"] = round(run_timed(cmd_for(out / "work"), env, out / "log"), 2)
    finally:
        if load is not None:
            stop_load(load)
    row["loadavg_after"] = loadavg()
    return row


def measure(name: str, cmd_for, env: dict[str, str], args: argparse.Namespace, tmp: Path) -> dict:
    """Every condition of one workload, ``--repeats`` times each; medians and ratios to idle."""
    runs, median = [], {}
    for condition in ("idle", *LOADS):
        times = []
        for i in range(args.repeats):
            row = run_once(cmd_for, condition, env, args, tmp)
            print(
                f"  {name} {condition} #{i + 1}: {row['wall_s']} s (load average {row['loadavg_before']})",
                flush=True,
            )
            runs.append(row)
            times.append(row["wall_s"])
        median[condition] = round(statistics.median(times), 2)
    ratio = {c: round(median[c] / median["idle"], 2) for c in LOADS}
    return {
        "workload": name, "idle_s": median["idle"], "beside_s": {c: median[c] for c in LOADS},
        "ratio": ratio, "within_target": all(r <= TARGET_RATIO for r in ratio.values()), "runs": runs,
    }  # fmt: skip


def markdown(doc: dict) -> str:
    env = ", ".join(f"`{k}={v}`" for k, v in doc["extra_env"].items()) or "none"
    lines = [
        f"`{doc['command']}` (faces from {doc['data_source']}; extra environment: {env}; load average "
        f"{doc['loadavg_start']} at the start, {doc['loadavg_end']} at the end; median of {doc['repeats']}).",
        "",
        "| workload | idle s | beside busy loop s (x idle) | beside torch matmul s (x idle) | "
        f"within {TARGET_RATIO}x |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in doc["results"]:
        b, x = r["beside_s"], r["ratio"]
        ok = "yes" if r["within_target"] else "no"
        lines.append(
            f"| `{r['workload']}` | {r['idle_s']} | {b['busy']} ({x['busy']}x) | {b['torch']} ({x['torch']}x) | {ok} |"
        )
    return "\n".join(lines)


def parse_env(items: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--env expects KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, str]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    p.add_argument("--repeats", type=int, default=1, help="runs per workload and condition (median)")
    p.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra env of the workloads"
    )
    p.add_argument("--tiny", action="store_true", help="tiny sizes (the test): 4 faces, 16-px INR, 3 steps")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--model", help="run for the detect workload (default: shipped, else one trained here)")
    p.add_argument("--load-threads", type=int, default=0, help="threads of the torch load (0 = its default)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "contention.json"))
    p.add_argument("--update-docs", metavar="MD", help="write the table between <!-- CONTENTION --> markers")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args, parse_env(args.env, p)


def main(argv: list[str] | None = None) -> int:
    from fakescope.utils.atomic import atomic_write_json

    args, extra = parse_args(argv)
    command = "python benchmarks/contention.py " + " ".join(argv if argv is not None else sys.argv[1:])
    signal.signal(signal.SIGTERM, _on_sigterm)  # so `finally` stops the loads on kill too
    env = {**os.environ, **extra}
    doc = {"command": command.strip(), "extra_env": extra, "repeats": args.repeats, "tiny": args.tiny,
           "target_ratio": TARGET_RATIO, "cpu_count": os.cpu_count(), "loadavg_start": loadavg()}  # fmt: skip
    doc["thread_env"] = {k: env.get(k) for k in THREAD_VARS}
    with tempfile.TemporaryDirectory(prefix="contention-") as tmp_name:
        tmp = Path(tmp_name)
        inputs = build_inputs(Path(args.data), tmp, TINY if args.tiny else Sizes())
        doc["data_source"] = "DFDC" if inputs.source == "dfdc" else "the stand-in set"
        model = detect_model(args, inputs, tmp, env) if "detect" in args.workloads else []
        doc["detect_model"] = model[1] if model else "shipped"
        results = []
        for name in args.workloads:
            print(f"{name}:", flush=True)

            def cmd_for(out: Path, name: str = name) -> list[str]:
                return workload_command(name, inputs, out, args, model)

            results.append(measure(name, cmd_for, env, args, tmp))
        doc["results"] = results
    doc["loadavg_end"] = loadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, doc)
    table = markdown(doc)
    print(table)
    if args.update_docs:
        from fakescope.utils.docblocks import write_blocks

        write_blocks(Path(args.update_docs), {"CONTENTION": table})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the loads were stopped in `finally`; no traceback
        print(
            "contention: interrupted; the competing loads are stopped and nothing was written",
            file=sys.stderr,
        )
        sys.exit(130)
