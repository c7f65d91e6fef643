"""One ``prepare`` job: sample its frames (decoded ahead in a background thread), detect, select and
align the faces, write the crops, then write the job's record, its done-marker."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from fakescope.data.images import load_image_rgb
from fakescope.data.manifest import LABEL_NAMES
from fakescope.errors import InputError
from fakescope.preprocess.align import align_face
from fakescope.preprocess.config import PreprocessConfig
from fakescope.preprocess.detectors import FaceDetection, FaceDetector, select_faces
from fakescope.preprocess.pipeline.outputs import output_config_hash
from fakescope.preprocess.pipeline.plan import PrepareJob
from fakescope.preprocess.video.decode import video_frames
from fakescope.preprocess.video.prefetch import prefetch
from fakescope.preprocess.video.probe import probe_video
from fakescope.preprocess.video.sampling import select_frame_indices
from fakescope.utils.atomic import atomic_write_bytes, atomic_write_json

__all__ = ["JobFrames", "RECORD_VERSION", "close_frames", "load_record", "process_job", "start_job_frames"]

RECORD_VERSION = 1


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
    decoder is done: :func:`~fakescope.preprocess.pipeline.executor.process_jobs` starts the next job there)."""
    info: dict[str, Any] = {}
    return prefetch(_iter_job_frames(job, cfg, info), cfg.frames.prefetch, on_exhausted), info


def close_frames(frames: Iterator[Any]) -> None:
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
        close_frames(source)
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


def load_record(path: Path, expected_hash: str) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if rec.get("version") != RECORD_VERSION or rec.get("config_hash") != expected_hash:
        return None
    return rec
