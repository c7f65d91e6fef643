"""The queue: jobs are scored in the order they came, by a few worker threads (one per core by
default), and the queue is bounded so that a flood of uploads gets HTTP 503 instead of an
ever-growing backlog."""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from fakescope.serve.models import LoadedRun, score_job, video_frames_total
from fakescope.serve.store import JobStore

__all__ = ["WorkerPool"]

log = logging.getLogger("fakescope.serve")


class WorkerPool:
    """``workers`` threads taking job ids from one FIFO queue."""

    def __init__(self, store: JobStore, runs: dict[str, LoadedRun], workers: int, gradcam: bool) -> None:
        self.store, self.runs, self.gradcam = store, runs, gradcam
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._loop, name=f"fakescope-worker-{i}", daemon=True)
            for i in range(max(1, workers))
        ]

    def start(self, pending: list[str]) -> None:
        for job_id in pending:
            self._queue.put(job_id)
        for t in self._threads:
            t.start()

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def stop(self, wait_s: float = 2.0) -> None:
        """Ask the workers to stop after their job; a job still running after ``wait_s`` is left
        ``running`` and is scored again at the next start (:meth:`JobStore.recover`)."""
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=wait_s / len(self._threads))

    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception as err:  # a bug must fail the job, not kill the worker
                log.exception("job %s failed", job_id)
                job = self.store.get(job_id)
                name = job.filename if job else job_id
                self.store.fail(job_id, f"{name}: internal error while scoring ({type(err).__name__}: {err})")

    def _run(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.status != "queued":
            return
        run = self.runs.get(job.model)
        if run is None:
            self.store.fail(job_id, f"{job.filename}: model {job.model!r} is not loaded on this server")
            return
        path = Path(job.stored)
        total = 0
        if job.kind == "video":
            try:
                total = video_frames_total(run.detector, path)
            except Exception:  # an unreadable video fails in scoring below, with the detect message
                total = 0
        self.store.start(job_id, total)
        done = [0]
        last = [0.0]

        def on_frame() -> None:
            done[0] += 1
            now = time.monotonic()
            if now - last[0] > 0.2 or done[0] >= total:
                last[0] = now
                self.store.progress(job_id, done[0], max(total, done[0]))

        out = score_job(
            run, path, job.filename, job.kind, job.aligned, self.store.job_dir(job_id) / "report",
            self.gradcam, on_frame,
        )  # fmt: skip
        self.store.finish(job_id, out.result, out.error, out.report)
