"""Running the pending jobs of a ``prepare`` run: in this process (the next job's frames decoding while
the last faces of the one before are detected) or in spawned worker processes, each with its own face
detector and thread budget."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from fakescope.errors import FakescopeError
from fakescope.preprocess.config import PreprocessConfig
from fakescope.preprocess.detectors import build_face_detector
from fakescope.preprocess.pipeline.job import (
    JobFrames,
    close_frames,
    load_record,
    process_job,
    start_job_frames,
)
from fakescope.preprocess.pipeline.plan import PrepareJob
from fakescope.utils.text import one_line

__all__ = ["process_jobs"]

# ---- worker processes -------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _set_threads(threads: int, detector: str) -> tuple[int, int | None]:
    """Thread counts for OpenCV and (MTCNN only: RetinaFace never needs torch) torch; returns the old
    values so an in-process run can restore them."""
    old_cv = cv2.getNumThreads()
    cv2.setNumThreads(max(1, threads))
    old_torch = None
    if detector == "mtcnn":
        import torch

        old_torch = torch.get_num_threads()
        torch.set_num_threads(max(1, threads))
    return old_cv, old_torch


def _restore_threads(old: tuple[int, int | None]) -> None:
    cv2.setNumThreads(old[0])
    if old[1] is not None:
        import torch

        torch.set_num_threads(old[1])


def _init_worker(cfg_json: str, device: str, threads: int, out_dir: str) -> None:
    cfg = PreprocessConfig.model_validate_json(cfg_json)
    _set_threads(threads, cfg.detector)
    _WORKER.update(cfg=cfg, detector=build_face_detector(cfg, device, threads), out_dir=Path(out_dir))


def _run_in_worker(job: PrepareJob) -> tuple[str, dict[str, Any] | None, str | None]:
    try:
        rec = process_job(job, _WORKER["cfg"], _WORKER["detector"], _WORKER["out_dir"])
        return job.key, rec, None
    except FakescopeError as err:
        return job.key, None, str(err)


def process_jobs(
    jobs: Sequence[PrepareJob],
    out: Path,
    cfg: PreprocessConfig,
    device: str,
    chash: str,
    progress: bool,
    t0: float,
) -> tuple[dict[str, dict[str, Any]], dict[str, str], int, int]:
    """Process the jobs that have no valid record yet; returns (records, errors, resumed, frames)."""
    records: dict[str, dict[str, Any]] = {}
    pending: list[PrepareJob] = []
    for job in jobs:
        rec = load_record(out / "records" / f"{job.key}.json", chash)
        if rec is not None:
            records[job.key] = rec
        else:
            pending.append(job)
    resumed = len(records)
    errors: dict[str, str] = {}
    workers = min(cfg.workers, max(1, len(pending)))
    threads = cfg.threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    bar = tqdm(
        total=len(pending),
        desc="prepare",
        unit="video",
        disable=not progress or not pending,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    frames_now = 0

    def done(key: str, rec: dict[str, Any] | None, err: str | None) -> None:
        nonlocal frames_now
        if rec is not None:
            records[key] = rec
            frames_now += len(rec["frames"])
        else:
            errors[key] = err or "unknown error"
            tqdm.write(one_line(f"prepare: skipped: {err}"), file=sys.stderr)
        bar.update(1)
        bar.set_postfix(frames=frames_now, fps=f"{frames_now / max(time.perf_counter() - t0, 1e-9):.2f}")

    try:
        if pending and workers == 1:
            old_threads = _set_threads(threads, cfg.detector)
            # Each job's frames start decoding as soon as the previous job's decoder is done, while
            # its last faces are still being detected (preprocess.frames.prefetch > 0).
            started: dict[int, JobFrames] = {}

            def start(i: int) -> Callable[[], None]:
                def run() -> None:
                    if i < len(pending) and i not in started:
                        started[i] = start_job_frames(pending[i], cfg, start(i + 1))

                return run

            try:
                detector = build_face_detector(cfg, device, threads)
                for i, job in enumerate(pending):
                    frames = started.pop(i, None) or start_job_frames(job, cfg, start(i + 1))
                    try:
                        done(job.key, process_job(job, cfg, detector, out, frames), None)
                    except FakescopeError as err:
                        done(job.key, None, str(err))
            finally:
                for frames, _ in started.values():
                    close_frames(frames)
                _restore_threads(old_threads)
        elif pending:
            ctx = get_context("spawn")  # fork would copy onnxruntime / torch thread pools
            with ProcessPoolExecutor(
                workers,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(cfg.model_dump_json(), device, threads, str(out)),
            ) as pool:
                futures = {pool.submit(_run_in_worker, job) for job in pending}
                try:
                    while futures:
                        finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            done(*fut.result())
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
    finally:
        bar.close()
    return records, errors, resumed, frames_now
