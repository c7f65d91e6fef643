"""Helpers for the ``fakescope serve`` tests: one tiny trained run per test session, and a real
server in a subprocess (``python -m fakescope serve``) on a free localhost port."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


def tiny_run(base: Path, manifest: Path) -> Path:
    """A tiny AIRL-family run trained on a few dozen crops of ``manifest`` (built once per session)."""
    run = base / "serve_airl"
    if (run / "checkpoints" / "best.json").is_file():
        return run
    from fakescope.config import config_from_dict
    from fakescope.train.trainer import train

    raw = {
        "name": "serve_airl",
        "device": "cpu",
        "data": {
            "manifest": str(manifest),
            "image_size": 64,
            "max_per_split": 16,
        },
        "model": {"name": "airl", "backbone": "efficientnet_tiny", "pretrained": False},
        "train": {"epochs": 1, "batch_size": 8, "progress": False, "feature_cache_dir": str(base / "cache")},
        "eval": {"bootstrap": 0, "frames_per_video": 4},
    }
    train(config_from_dict(raw), run)
    return run


def copy_run(run: Path, dest: Path, card: str | None = None, standin: str | None = None) -> Path:
    """A copy of ``run`` at ``dest``; with ``card``, it carries that MODEL_CARD.md; with ``standin``, its
    config says it was trained on a stand-in set (a STANDIN.txt holding that notice beside its manifest,
    as `fakescope demo` writes it)."""
    shutil.copytree(run, dest)
    if card is not None:
        (dest / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    if standin is not None:
        data = dest.parent / f"{dest.name}_data"
        data.mkdir()
        (data / "STANDIN.txt").write_text(standin + "\n\nsettings: {}\n")
        meta_path = dest / "checkpoints" / "best.json"
        meta = json.loads(meta_path.read_text())
        meta["config"]["data"]["manifest"] = str(data / "manifest.csv")
        meta_path.write_text(json.dumps(meta))
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path
    token: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(
            self.url + path, headers={**self.headers(), **kw.pop("headers", {})}, timeout=30, **kw
        )

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(
            self.url + path, headers={**self.headers(), **kw.pop("headers", {})}, timeout=60, **kw
        )

    def wait_job(self, job_id: str, timeout: float = 120.0) -> dict:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            job = self.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in ("done", "failed"):
                return job
            time.sleep(0.2)
        raise AssertionError(
            f"job {job_id} not finished after {timeout} s: {job}\n{self.log.read_text()[-3000:]}"
        )


# `fakescope serve` whose worker stops for good once a video job has scored `pause_after` frames, after
# writing `marker`: a test then acts on a job that is certainly mid-video, however fast the machine.
PAUSING_SERVE = """
import sys, threading
from pathlib import Path
import fakescope.serve.worker as worker
from fakescope.cli import main
pause_after, marker = int(sys.argv[1]), Path(sys.argv[2])
score_job = worker.score_job
def pausing_score_job(*args):
    *head, on_frame = args
    frames = [0]
    def frame():
        on_frame()
        frames[0] += 1
        if frames[0] == pause_after:
            marker.write_text("paused")
            threading.Event().wait()  # until the test kills the server
    return score_job(*head, frame)
worker.score_job = pausing_score_job
sys.exit(main(sys.argv[3:]))
"""


# `fakescope serve` in an install whose shipped detector is the run folder `sys.argv[1]`.
SHIPPED_SERVE = """
import sys
from pathlib import Path
import fakescope.inference.shipped as shipped
from fakescope.cli import main
folder = Path(sys.argv[1])
shipped._resource_dir = lambda: folder
sys.exit(main(sys.argv[2:]))
"""


def start_server(
    run: Path | None, data_dir: Path, *extra: str, token: str | None = None, timeout: float = 90.0,
    pause: tuple[int, Path] | None = None, shipped: Path | None = None,
) -> Server:  # fmt: skip
    """Start ``fakescope serve`` and wait until ``/healthz`` answers; ``run=None`` names no run.
    ``pause=(n, marker)``: its worker writes ``marker`` and stops once a video job has scored ``n``
    frames (see ``PAUSING_SERVE``). ``shipped``: the run folder the install ships (``SHIPPED_SERVE``)."""
    port = free_port()
    log = data_dir.parent / f"{data_dir.name}-server-{port}.log"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    env.pop("FAKESCOPE_SERVE_TOKEN", None)
    cmd = [sys.executable, "-m", "fakescope", "serve", *(["--run", str(run)] if run else []), "--port", str(port),
           "--data-dir", str(data_dir), "--device", "cpu", "--workers", "1", "--log-level", "warning", *extra]  # fmt: skip
    if token:
        cmd += ["--token", token]
    if pause is not None:
        cmd[1:3] = ["-c", PAUSING_SERVE, str(pause[0]), str(pause[1])]
    elif shipped is not None:
        cmd[1:3] = ["-c", SHIPPED_SERVE, str(shipped)]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    server = Server(f"http://127.0.0.1:{port}", proc, log, token)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"fakescope serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(server.url + "/healthz", timeout=2).status_code == 200:
                return server
        time.sleep(0.2)
    stop(server)
    raise AssertionError(f"fakescope serve did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def stop(server: Server, sig: int = signal.SIGTERM) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(sig)
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@contextlib.contextmanager
def running(
    run: Path | None, data_dir: Path, *extra: str, token: str | None = None, shipped: Path | None = None
) -> Iterator[Server]:
    server = start_server(run, data_dir, *extra, token=token, shipped=shipped)
    try:
        yield server
    finally:
        stop(server)
