"""Load test of `fakescope serve` on localhost: concurrent clients submit image jobs and poll them to the
end; reports jobs per second, the latency from upload to result (p50, p95, max), the 503s that were
retried, and the jobs lost (accepted but never ended done or failed; must be 0).

    python benchmarks/serve_load.py [DATA] --run RUN -n 50 --clients 8   # -> results/serve_load.json

DATA defaults to ../shared/data; the images are DATA/dfdc-faces crops (real and fake interleaved),
uploaded as files, as a browser or a pipeline would. Without --run, a tiny AIRL-family run is trained
first on a few dozen of those crops (as the tests do; its scores mean nothing, its speed is that of a
small CPU model). The server is a subprocess bound to 127.0.0.1 only; the run is bounded by -n and by
--time-limit, and the server is stopped at the end whatever happens.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

from fakescope.utils.atomic import atomic_write_json

REPO = Path(__file__).resolve().parents[1]


def _tiny_run(tmp: Path, data: Path) -> Path:
    from fakescope.config import config_from_dict
    from fakescope.train.trainer import train

    raw = {
        "name": "serve_load_airl",
        "device": "cpu",
        "data": {
            "manifest": str(data / "dfdc-faces" / "manifest.csv"),
            "image_size": 64,
            "max_per_split": 16,
        },
        "model": {"name": "airl", "backbone": "efficientnet_tiny", "pretrained": False},
        "train": {"epochs": 1, "batch_size": 8, "progress": False, "feature_cache_dir": str(tmp / "cache")},
        "eval": {"bootstrap": 0},
    }
    run = tmp / "serve_load_airl"
    train(config_from_dict(raw), run)
    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(run: Path, data_dir: Path, workers: int, queue: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "fakescope", "serve", "--run", str(run), "--port", str(port),
           "--data-dir", str(data_dir), "--device", "cpu", "--workers", str(workers), "--queue", str(queue),
           "--no-gradcam", "--log-level", "warning"]  # fmt: skip
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        if proc.poll() is not None:
            raise SystemExit(f"serve_load: the server exited with {proc.returncode}; see {log}")
        try:
            if requests.get(url + "/healthz", timeout=2).ok:
                return proc, url
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"serve_load: the server did not answer within 120 s; see {log}")


class _Client:
    """One job: upload (retrying 503 after its Retry-After), then poll to the end."""

    def __init__(self, url: str, deadline: float) -> None:
        self.url, self.deadline = url, deadline
        self.retries = 0
        self.accepted: list[str] = []
        self._lock = threading.Lock()

    def one(self, path: Path) -> tuple[str | None, str, float]:
        t0 = time.perf_counter()
        payload = path.read_bytes()
        while True:
            r = requests.post(self.url + "/v1/jobs", files={"file": (path.name, payload)}, timeout=60)
            if r.status_code != 503 or time.monotonic() > self.deadline:
                break
            with self._lock:
                self.retries += 1
            time.sleep(float(r.headers.get("Retry-After", "1")))
        if r.status_code != 202:
            return None, f"http {r.status_code}", time.perf_counter() - t0
        job_id = r.json()["id"]
        with self._lock:
            self.accepted.append(job_id)
        while time.monotonic() < self.deadline:
            status = requests.get(f"{self.url}/v1/jobs/{job_id}", timeout=30).json()["status"]
            if status in ("done", "failed"):
                return job_id, status, time.perf_counter() - t0
            time.sleep(0.05)
        return job_id, "timeout", time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--run", default=None, help="run to serve (default: train a tiny AIRL run first)")
    p.add_argument("-n", type=int, default=50, help="image jobs (at most 500)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server worker threads")
    p.add_argument("--queue", type=int, default=16, help="server queue bound (503 past it, retried)")
    p.add_argument(
        "--time-limit", type=float, default=600.0, help="seconds before unfinished jobs count as lost"
    )
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve_load.json"))
    args = p.parse_args(argv)
    n = max(1, min(args.n, 500))
    data = Path(args.data)
    faces = (
        sorted((data / "dfdc-faces" / "real").glob("*.jpg"))[:n]
        + sorted((data / "dfdc-faces" / "fake").glob("*.jpg"))[:n]
    )
    if not faces:
        raise SystemExit(f"serve_load: no images under {data / 'dfdc-faces'}")
    images = [faces[(i // 2) + (i % 2) * (len(faces) // 2)] for i in range(n)]  # real, fake, real, ...

    with tempfile.TemporaryDirectory(prefix="serve_load-") as tmp_name:
        tmp = Path(tmp_name)
        run = Path(args.run) if args.run else _tiny_run(tmp, data)
        proc, url = _start(run, tmp / "data", args.workers, args.queue, tmp / "server.log")
        try:
            client = _Client(url, time.monotonic() + args.time_limit)
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                outcomes = list(pool.map(client.one, images))
            wall = time.perf_counter() - t0
            known = {
                j["id"]: j["status"]
                for j in requests.get(url + "/v1/jobs?limit=500", timeout=30).json()["jobs"]
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    lat = np.array([o[2] for o in outcomes if o[1] in ("done", "failed")])
    lost = [j for j in client.accepted if known.get(j) not in ("done", "failed")]
    result = {
        "jobs": n,
        "clients": args.clients,
        "server_workers": args.workers,
        "queue_bound": args.queue,
        "run": str(args.run)
        if args.run
        else "tiny AIRL run (efficientnet_tiny, 64 px), trained by the script",
        "kind": "image uploads (DFDC face crops, 224 px JPEG), face detection + alignment + score, no Grad-CAM",
        "done": sum(o[1] == "done" for o in outcomes),
        "failed": sum(o[1] == "failed" for o in outcomes),
        "rejected": sum(o[0] is None for o in outcomes),
        "retries_503": client.retries,
        "lost": len(lost),
        "wall_s": round(wall, 2),
        "jobs_per_s": round(n / wall, 2),
        "latency_s": {
            "p50": round(float(np.percentile(lat, 50)), 3) if lat.size else None,
            "p95": round(float(np.percentile(lat, 95)), 3) if lat.size else None,
            "max": round(float(lat.max()), 3) if lat.size else None,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_1min_before": round(load0, 2),
            "load_1min_after": round(os.getloadavg()[0], 2),
        },  # fmt: skip
    }
    atomic_write_json(args.out, result)
    print(
        f"{n} jobs, {args.clients} clients, {args.workers} workers: {result['jobs_per_s']} jobs/s, "
        f"p50 {result['latency_s']['p50']} s, p95 {result['latency_s']['p95']} s, lost {result['lost']}, "
        f"503 retried {client.retries} -> {args.out}"
    )
    return 0 if not lost else 1


if __name__ == "__main__":
    sys.exit(main())
