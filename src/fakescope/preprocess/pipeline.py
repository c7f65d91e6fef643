"""The resumable videos/images -> aligned face crops pipeline behind ``fakescope prepare``
(DESIGN.md "Preprocessing"; INFER §3.1, AIRL §IV-B).

Output folder::

    prepare.json            the preprocess config and its hash (a re-run must use the same one)
    crops/<label>/<key>/<frame>.png   one aligned crop per sampled frame with a face
    records/<key>.json      per-video done-marker: every sampled frame, its box, score, landmarks
                            (original and aligned) and crop; written atomically *after* the crops
    manifest.csv            the crop manifest: path,label,group,dataset,method,split,video,frame
    landmarks.csv           one row per crop: box, score, 5 landmarks in the frame and in the crop
    no_face.csv             every sampled frame where no face was kept (never lost silently):
                            source,label,group,dataset,method,split,video,frame
    summary.json            counts, errors, short videos, and the no-face policy
    shards/K-of-N/          with ``shard``: that shard's summary.json and its done-marker shard.json
                            (docs/scale.md); merge_prepare then writes the four tables above

A job is one video file, one frame folder (manifest rows sharing a video and carrying ``frame``) or
one image. A job whose record exists is skipped on a re-run; any other job's crop folder is wiped
and redone, so a killed run resumes to exactly what an uninterrupted run writes. A file that cannot
be read is reported (summary ``errors``) and the job goes on; it is retried on the next run.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from tqdm import tqdm

from fakescope.data.images import DEFAULT_MAX_PIXELS, load_image_rgb
from fakescope.data.manifest import LABEL_NAMES, ManifestRow, write_manifest
from fakescope.errors import ConfigError, FakescopeError, InputError
from fakescope.preprocess.align import align_face
from fakescope.preprocess.config import PreprocessConfig
from fakescope.preprocess.detectors import FaceDetection, FaceDetector, build_face_detector, select_faces
from fakescope.preprocess.video import prefetch, probe_video, select_frame_indices, video_frames
from fakescope.utils.atomic import atomic_open, atomic_write_bytes, atomic_write_json
from fakescope.utils.hashing import config_hash
from fakescope.utils.sharding import SINGLE, Shard, begin_shard, fingerprint, finish_shard, read_shards
from fakescope.utils.text import PATH_CSV_ERRORS, one_line

__all__ = [
    "PrepareJob", "PrepareSummary", "plan_jobs", "process_job", "run_prepare", "merge_prepare",
    "output_config_hash",
]  # fmt: skip

RECORD_VERSION = 1
NO_FACE_COLUMNS = ("source", "label", "group", "dataset", "method", "split", "video", "frame")
NO_FACE_POLICY_TEXT = {
    "drop": "frames with no face are left out of manifest.csv and scored by nothing; they are listed in "
    "no_face.csv and counted here",
    "score_half": "frames with no face are listed in no_face.csv; evaluation gives each a score of 0.5 "
    "when it averages a video's frame scores",
}


@dataclass(frozen=True)
class PrepareJob:
    """One unit of resumable work. ``sources`` holds ``(frame, path)`` pairs: one pair with frame
    ``None`` for a video file or an image, one per frame image for a frame folder."""

    key: str
    kind: str  # "video" | "frames" | "image"
    label: int
    group: str
    dataset: str
    method: str
    split: str
    video: str
    sources: tuple[tuple[int | None, str], ...]
    #: image loading limits (``data.max_image_pixels``, ``data.rgba_background``), set by run_prepare
    max_pixels: int = DEFAULT_MAX_PIXELS
    background: str = "black"

    @property
    def path(self) -> str:
        return self.sources[0][1] if self.kind != "frames" else str(Path(self.sources[0][1]).parent)


@dataclass
class PrepareSummary:
    inputs: int = 0
    jobs_processed: int = 0
    jobs_resumed: int = 0
    jobs_failed: int = 0
    frames_sampled: int = 0
    faces_found: int = 0
    no_face_frames: int = 0
    multi_face_frames: int = 0
    crops_by_label: dict[str, int] = field(default_factory=dict)
    short_videos: list[dict[str, Any]] = field(default_factory=list)
    inputs_without_face: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    no_face_policy: str = "drop"
    no_face_policy_means: str = ""
    detector: str = ""
    config_hash: str = ""
    seconds: float = 0.0
    frames_per_second_this_run: float = 0.0

    def lines(self) -> list[str]:
        out = [
            f"inputs: {self.inputs} ({self.jobs_processed} processed now, {self.jobs_resumed} done before, "
            f"{self.jobs_failed} failed)",
            f"frames sampled: {self.frames_sampled}; faces found: {self.faces_found}; "
            f"no face: {self.no_face_frames} (policy {self.no_face_policy}); several faces: {self.multi_face_frames}",
            "crops by label: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.crops_by_label.items())) or "none"),
        ]
        if self.short_videos:
            out.append(f"short videos (fewer frames than asked, all used): {len(self.short_videos)}")
        if self.inputs_without_face:
            out.append(f"inputs with no face in any sampled frame: {len(self.inputs_without_face)}")
        for e in self.errors:
            out.append(f"error: {e['error']}")
        return out


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _job_key(video_id: str, first_source: str) -> str:
    stem = _SAFE.sub("_", Path(video_id).name)[:60].strip("._") or "item"
    # os.fsencode: a file name that is not UTF-8 (its bytes held as surrogates) still has a key; for a
    # UTF-8 name it is the same bytes as str.encode(), so existing outputs keep their keys.
    digest = hashlib.sha1(os.fsencode(f"{video_id}|{Path(first_source).name}")).hexdigest()[:10]
    return f"{stem}-{digest}"


def plan_jobs(rows: Sequence[ManifestRow]) -> list[PrepareJob]:
    """Group manifest rows into jobs, in input order. Rows with a ``frame`` that share a video are one
    frame-folder job; any other row is a video file or an image on its own."""
    from fakescope.preprocess.video import is_video_path

    jobs: list[PrepareJob] = []
    frame_groups: dict[str, list[ManifestRow]] = {}
    order: list[tuple[str, Any]] = []
    for row in rows:
        if row.frame is not None:
            vid = row.video_id
            if vid not in frame_groups:
                frame_groups[vid] = []
                order.append(("frames", vid))
            frame_groups[vid].append(row)
        else:
            order.append(("single", row))
    seen: set[str] = set()
    for kind, item in order:
        if kind == "frames":
            members = sorted(frame_groups[item], key=lambda r: r.frame)
            first = members[0]
            sources = tuple((r.frame, r.path) for r in members)
            video = first.video or Path(first.path).parent.name
            job = PrepareJob(
                _job_key(item, first.path),
                "frames",
                first.label,
                first.group,
                first.dataset,
                first.method,
                first.split,
                video,
                sources,
            )
        else:
            row = item
            kind_ = "video" if is_video_path(row.path) else "image"
            video = row.video or Path(row.path).stem
            job = PrepareJob(
                _job_key(row.video_id, row.path),
                kind_,
                row.label,
                row.group,
                row.dataset,
                row.method,
                row.split,
                video,
                ((None, row.path),),
            )
        if job.key in seen:
            raise InputError(f"{job.path}: appears twice in the input (same video identity {job.video!r})")
        seen.add(job.key)
        jobs.append(job)
    return jobs


def output_config_hash(cfg: PreprocessConfig) -> str:
    """Hash of the fields that change what is written (not workers, threads, the decode strategy or
    the no-face policy, which only changes how evaluation reads no_face.csv), so an output folder
    prepared before issue 15 resumes under the new decode fields."""
    d = cfg.model_dump(mode="json")
    for k in ("workers", "threads_per_worker", "no_face_policy"):
        d.pop(k, None)
    # How frames are found never changes which frames are found (all decode strategies are exact).
    for k in ("seek", "decode_threads", "decode", "seek_min_gap", "drop_nonref", "prefetch"):
        d["frames"].pop(k, None)
    return config_hash(d)


def _round(a: np.ndarray | Sequence[float], nd: int = 3) -> list[Any]:
    return np.round(np.asarray(a, dtype=np.float64), nd).tolist()


def _encode(image: np.ndarray, cfg: PreprocessConfig) -> bytes:
    bgr = image[..., ::-1]
    if cfg.crop_format == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
    if not ok:  # pragma: no cover - OpenCV only fails on invalid arrays
        raise RuntimeError("could not encode a face crop")
    return buf.tobytes()


def _iter_job_frames(job: PrepareJob, cfg: PreprocessConfig, info: dict[str, Any]):
    """Yield (frame number, RGB image) for the sampled frames of a job; fills ``info``."""
    if job.kind == "video":
        path = job.sources[0][1]
        probe = probe_video(path)
        n = probe.n_frames
        if n == 0:
            raise InputError(f"{path}: the video has no frames")
        sel = select_frame_indices(n, cfg.frames, job.label)
        info.update(
            n_frames=n,
            requested=sel.requested,
            short=sel.short,
            fps=probe.fps,
            variable_frame_rate=probe.variable_frame_rate,
        )
        for fr in video_frames(path, sel.indices, cfg.frames, probe=probe):
            yield fr.index, fr.image
    elif job.kind == "frames":
        sel = select_frame_indices(len(job.sources), cfg.frames, job.label)
        info.update(n_frames=len(job.sources), requested=sel.requested, short=sel.short)
        for i in sel.indices:
            frame, path = job.sources[i]
            yield frame, load_image_rgb(path, max_pixels=job.max_pixels, background=job.background)  # type: ignore[arg-type]
    else:
        info.update(n_frames=1, requested=None, short=False)
        src = job.sources[0][1]
        yield None, load_image_rgb(src, max_pixels=job.max_pixels, background=job.background)  # type: ignore[arg-type]


JobFrames = tuple[Iterator[tuple[int | None, np.ndarray]], dict[str, Any]]


def start_job_frames(
    job: PrepareJob, cfg: PreprocessConfig, on_exhausted: Callable[[], None] | None = None
) -> JobFrames:
    """The sampled frames of a job and the dict the sampler fills (frame count, shortfall, fps),
    decoded ``preprocess.frames.prefetch`` frames ahead in a background thread that starts now, so
    a job's decoding can overlap the previous job's face detection (``on_exhausted`` runs when the
    decoder is done: :func:`_process_jobs` starts the next job there)."""
    info: dict[str, Any] = {}
    return prefetch(_iter_job_frames(job, cfg, info), cfg.frames.prefetch, on_exhausted), info


def _close(frames: Iterator[Any]) -> None:
    close = getattr(frames, "close", None)
    if close is not None:
        close()


def process_job(
    job: PrepareJob,
    cfg: PreprocessConfig,
    detector: FaceDetector,
    out_dir: Path,
    frames: JobFrames | None = None,
) -> dict[str, Any]:
    """Sample, detect, select, align and write the crops of one job; return (and atomically write)
    its record, which is the job's done-marker. Raises :class:`InputError` for unreadable input.
    ``frames``: the job's frames already started by :func:`start_job_frames` (closed here)."""
    crop_dir = out_dir / "crops" / LABEL_NAMES.get(job.label, "unknown") / job.key
    if crop_dir.exists():  # leftovers of a killed run: redo the job from scratch
        shutil.rmtree(crop_dir)
    source, info = frames if frames is not None else start_job_frames(job, cfg)
    ext = "png" if cfg.crop_format == "png" else "jpg"

    def crop_record(
        number: int | None, image: np.ndarray, faces: list[FaceDetection], face: FaceDetection | None
    ) -> dict[str, Any]:
        rec: dict[str, Any] = {"frame": number, "n_faces": len(faces)}
        if face is None:
            rec["status"] = "no_face"
            return rec
        aligned = align_face(image, face.landmarks, cfg.align, box=face.box)
        name = f"{number:06d}.{ext}" if number is not None else f"image.{ext}"
        atomic_write_bytes(crop_dir / name, _encode(aligned.image, cfg))
        rec.update(
            status="face",
            crop=(crop_dir / name).relative_to(out_dir).as_posix(),
            box=_round(face.box, 2),
            score=round(face.score, 5),
            landmarks=_round(aligned.landmarks),
            landmarks_aligned=_round(aligned.landmarks_aligned),
            matrix=_round(aligned.matrix, 6),
        )
        return rec

    records: list[dict[str, Any]] = []
    try:
        if cfg.face_select != "track":
            # One frame at a time (and at most `prefetch` decoded ahead), so policy=all on a long
            # video never holds more than a few frames.
            for number, image in source:
                faces = detector.detect(image)
                records.append(crop_record(number, image, faces, select_faces([faces], cfg.face_select)[0]))
        else:
            # Tracking needs every frame's faces before it can choose: detect in a first pass, then
            # decode the same frames again to align (frames are not held in memory).
            dets = [detector.detect(image) for _, image in source]
            chosen = select_faces(dets, "track")
            for (number, image), faces, face in zip(
                _iter_job_frames(job, cfg, {}), dets, chosen, strict=True
            ):
                records.append(crop_record(number, image, faces, face))
    except av.error.FFmpegError as err:
        # Any decoder failure the sampler did not already name: still one line about this file.
        shutil.rmtree(crop_dir, ignore_errors=True)
        raise InputError(f"{job.path}: video decoding failed ({err})") from None
    except BaseException:
        shutil.rmtree(crop_dir, ignore_errors=True)
        raise
    finally:
        _close(source)
    record = {
        "version": RECORD_VERSION,
        "config_hash": output_config_hash(cfg),
        "key": job.key,
        "source": job.path,
        **info,
        "frames": records,
    }
    atomic_write_json(out_dir / "records" / f"{job.key}.json", record)
    return record


def _load_record(path: Path, expected_hash: str) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if rec.get("version") != RECORD_VERSION or rec.get("config_hash") != expected_hash:
        return None
    return rec


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


# ---- the job ----------------------------------------------------------------------------------


def _check_output_dir(out_dir: Path, cfg: PreprocessConfig, overwrite: bool, wipe: bool = True) -> str:
    h = output_config_hash(cfg)
    meta_path = out_dir / "prepare.json"
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8")).get("config_hash")
        except ValueError:
            old = None
        if old != h:
            if not overwrite:
                raise ConfigError(
                    f"{out_dir}: was prepared with a different preprocess config (hash {old}, now {h}); "
                    "use another --out, or --overwrite to start it again"
                )
            for sub in ("crops", "records") if wipe else ():
                shutil.rmtree(out_dir / sub, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(meta_path, {"config_hash": h, "preprocess": cfg.model_dump(mode="json")})
    return h


def _crop_row(job: PrepareJob, out_dir: Path, rec: dict[str, Any]) -> ManifestRow:
    return ManifestRow(
        str(out_dir / rec["crop"]),
        job.label,
        job.group,
        job.dataset,
        job.method,
        job.split,
        job.video,
        rec["frame"],
    )


def _write_outputs(out_dir: Path, jobs: Sequence[PrepareJob], records: dict[str, dict[str, Any]]) -> None:
    crop_rows: list[ManifestRow] = []
    no_face_lines: list[list[Any]] = []
    lm_lines: list[list[Any]] = []
    for job in jobs:
        rec = records.get(job.key)
        if rec is None:
            continue
        for fr in rec["frames"]:
            if fr["status"] == "face":
                row = _crop_row(job, out_dir, fr)
                crop_rows.append(row)
                lm_lines.append(
                    [
                        fr["crop"],
                        job.video,
                        "" if fr["frame"] is None else fr["frame"],
                        *fr["box"],
                        fr["score"],
                        fr["n_faces"],
                        *np.ravel(fr["landmarks"]).tolist(),
                        *np.ravel(fr["landmarks_aligned"]).tolist(),
                    ]
                )
            else:
                src = job.path if job.kind != "frames" else dict(job.sources).get(fr["frame"], job.path)
                no_face_lines.append(
                    [
                        os.path.abspath(src),
                        LABEL_NAMES.get(job.label, ""),
                        job.group,
                        job.dataset,
                        job.method,
                        job.split,
                        job.video,
                        "" if fr["frame"] is None else fr["frame"],
                    ]
                )
    write_manifest(crop_rows, out_dir / "manifest.csv")
    # Not a manifest: a video's faceless frames share one source path, so rows repeat it.
    with atomic_open(
        out_dir / "no_face.csv", "w", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS
    ) as fh:
        w = csv.writer(fh)
        w.writerow(NO_FACE_COLUMNS)
        w.writerows(no_face_lines)
    names = ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"]
    header = ["path", "video", "frame", "box_x1", "box_y1", "box_x2", "box_y2", "score", "n_faces"]
    header += [f"{n}_{a}" for n in names for a in "xy"]
    header += [f"aligned_{n}_{a}" for n in names for a in "xy"]
    with atomic_open(
        out_dir / "landmarks.csv", "w", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS
    ) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(lm_lines)


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
    chash = _check_output_dir(out, cfg, overwrite, wipe=not shard.enabled)
    mine = shard.take(len(jobs))
    my_jobs = [jobs[i] for i in mine]
    folder = begin_shard(out, shard) if shard.enabled else None
    t0 = time.perf_counter()
    records, errors, resumed, frames_now = _process_jobs(my_jobs, out, cfg, device, chash, progress, t0)
    seconds = round(time.perf_counter() - t0, 3)
    summary = _summarise(my_jobs, records, errors, cfg, chash, resumed)
    summary.seconds = seconds
    summary.frames_per_second_this_run = round(frames_now / max(seconds, 1e-9), 3)
    if folder is None:
        _write_outputs(out, jobs, records)
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
        rec = _load_record(out / "records" / f"{job.key}.json", chash)
        if rec is None:
            raise InputError(
                f"{out}: records/{job.key}.json ({job.path}) is missing or stale; rerun its shard"
            )
        records[job.key] = rec
    _write_outputs(out, jobs, records)
    summary = _summarise(jobs, records, errors, cfg, chash, resumed)
    # The shards ran side by side: the job took as long as the slowest one.
    summary.seconds = max(m["payload"]["seconds"] for m in markers)
    summary.frames_per_second_this_run = round(frames_now / max(summary.seconds, 1e-9), 3)
    atomic_write_json(out / "summary.json", asdict(summary))
    return summary


def _process_jobs(
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
        rec = _load_record(out / "records" / f"{job.key}.json", chash)
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
                    _close(frames)
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


def _summarise(
    jobs: Sequence[PrepareJob],
    records: dict[str, dict[str, Any]],
    errors: dict[str, str],
    cfg: PreprocessConfig,
    chash: str,
    resumed: int,
) -> PrepareSummary:
    s = PrepareSummary(
        inputs=len(jobs),
        jobs_resumed=resumed,
        jobs_failed=len(errors),
        no_face_policy=cfg.no_face_policy,
        no_face_policy_means=NO_FACE_POLICY_TEXT[cfg.no_face_policy],
        detector=cfg.detector,
        config_hash=chash,
    )
    s.jobs_processed = len(records) - resumed
    by_label: Counter[str] = Counter()
    for job in jobs:
        rec = records.get(job.key)
        if rec is None:
            if job.key in errors:
                s.errors.append({"path": job.path, "error": errors[job.key]})
            continue
        frames = rec["frames"]
        faces = sum(f["status"] == "face" for f in frames)
        s.frames_sampled += len(frames)
        s.faces_found += faces
        s.no_face_frames += len(frames) - faces
        s.multi_face_frames += sum(f["n_faces"] > 1 for f in frames)
        by_label[LABEL_NAMES.get(job.label, "unknown")] += faces
        if rec.get("short"):
            s.short_videos.append(
                {"path": job.path, "n_frames": rec.get("n_frames"), "requested": rec.get("requested")}
            )
        if faces == 0:
            s.inputs_without_face.append(job.path)
    s.crops_by_label = dict(sorted(by_label.items()))
    return s
