"""The two entry points of ``fakescope prepare``: :func:`run_prepare` (a whole run, or one shard of
it) and :func:`merge_prepare` (the outputs of a sharded run from its finished shards)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fakescope.data.images import DEFAULT_MAX_PIXELS
from fakescope.data.manifest import ManifestRow
from fakescope.errors import InputError
from fakescope.preprocess.config import PreprocessConfig
from fakescope.preprocess.pipeline.executor import process_jobs
from fakescope.preprocess.pipeline.job import load_record
from fakescope.preprocess.pipeline.outputs import (
    PrepareSummary,
    check_output_dir,
    output_config_hash,
    summarise,
    write_outputs,
)
from fakescope.preprocess.pipeline.plan import PrepareJob, plan_jobs
from fakescope.utils.atomic import atomic_write_json
from fakescope.utils.sharding import SINGLE, Shard, begin_shard, fingerprint, finish_shard, read_shards

__all__ = ["merge_prepare", "run_prepare"]


def run_prepare(
    rows: Sequence[ManifestRow],
    out_dir: str | os.PathLike[str],
    cfg: PreprocessConfig,
    device: str = "cpu",
    *,
    overwrite: bool = False,
    progress: bool = True,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
    background: str = "black",
    shard: Shard = SINGLE,
) -> PrepareSummary:
    """Turn the videos/images in ``rows`` into aligned face crops under ``out_dir`` (see module doc).

    Resumable and idempotent: jobs with a record are not redone. Per-file input errors are collected
    in the summary; the job goes on with the other files. Images (and frame images) are loaded under
    ``max_image_pixels`` and composited on ``background`` (``data.max_image_pixels``,
    ``data.rgba_background``).

    ``shard`` (docs/scale.md): do jobs ``index, index + count, ...`` only (a job is a whole video, so a
    video's frames never split). Crops and records go to the shared ``crops/`` and ``records/`` (one
    folder and one file per job, so shards never write the same file, and the merged manifest names
    the same paths as a one-process run); the shard's summary and its marker go to
    ``shards/K-of-N/``, and :func:`merge_prepare` writes manifest.csv, landmarks.csv, no_face.csv and
    summary.json from them.
    """
    out = Path(out_dir)
    limits = {"max_pixels": max_image_pixels, "background": background}
    jobs = [dataclasses.replace(j, **limits) for j in plan_jobs(rows)]
    # Shards share out/: only a one-process run may wipe it; a shard overwrites its own jobs (a record
    # made under another config is never reused, and process_job clears the job's crop folder).
    chash = check_output_dir(out, cfg, overwrite, wipe=not shard.enabled)
    mine = shard.take(len(jobs))
    my_jobs = [jobs[i] for i in mine]
    folder = begin_shard(out, shard) if shard.enabled else None
    t0 = time.perf_counter()
    records, errors, resumed, frames_now = process_jobs(my_jobs, out, cfg, device, chash, progress, t0)
    seconds = round(time.perf_counter() - t0, 3)
    summary = summarise(my_jobs, records, errors, cfg, chash, resumed)
    summary.seconds = seconds
    summary.frames_per_second_this_run = round(frames_now / max(seconds, 1e-9), 3)
    if folder is None:
        write_outputs(out, jobs, records)
        atomic_write_json(out / "summary.json", asdict(summary))
        return summary
    atomic_write_json(folder / "summary.json", asdict(summary))
    finish_shard(
        out, shard, "prepare", total=len(jobs), items=mine,
        print_=fingerprint([chash, *(j.key for j in jobs)]),
        payload={"jobs": [asdict(j) for j in my_jobs], "errors": errors, "resumed": resumed,
                 "frames_now": frames_now, "seconds": seconds, "preprocess": cfg.model_dump(mode="json")},
    )  # fmt: skip
    return summary


def merge_prepare(out_dir: str | os.PathLike[str], count: int | None = None) -> PrepareSummary:
    """Build manifest.csv, landmarks.csv, no_face.csv and summary.json of a sharded ``prepare`` from
    its finished shards, in the job order of a one-process run (so the same rows, the same files).
    Raises :class:`InputError` naming a missing or unfinished shard."""
    out = Path(out_dir)
    markers = read_shards(out, count, "prepare")
    total = markers[0]["total"]
    cfg = PreprocessConfig.model_validate(markers[0]["payload"]["preprocess"])
    chash = output_config_hash(cfg)
    by_index: dict[int, PrepareJob] = {}
    errors: dict[str, str] = {}
    resumed = frames_now = 0
    for m in markers:
        p = m["payload"]
        for i, raw in zip(m["items"], p["jobs"], strict=True):
            by_index[i] = PrepareJob(**{**raw, "sources": tuple((f, s) for f, s in raw["sources"])})
        errors.update(p["errors"])
        resumed += p["resumed"]
        frames_now += p["frames_now"]
    jobs = [by_index[i] for i in range(total)]
    records: dict[str, dict[str, Any]] = {}
    for job in jobs:
        if job.key in errors:
            continue
        rec = load_record(out / "records" / f"{job.key}.json", chash)
        if rec is None:
            raise InputError(
                f"{out}: records/{job.key}.json ({job.path}) is missing or stale; rerun its shard"
            )
        records[job.key] = rec
    write_outputs(out, jobs, records)
    summary = summarise(jobs, records, errors, cfg, chash, resumed)
    # The shards ran side by side: the job took as long as the slowest one.
    summary.seconds = max(m["payload"]["seconds"] for m in markers)
    summary.frames_per_second_this_run = round(frames_now / max(summary.seconds, 1e-9), 3)
    atomic_write_json(out / "summary.json", asdict(summary))
    return summary
