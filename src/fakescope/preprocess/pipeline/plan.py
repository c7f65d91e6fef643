"""Planning a ``prepare`` run: manifest rows grouped into jobs (one video file, one frame folder or
one image each), each with a stable key that names its crop folder and its record."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescope.data.images import DEFAULT_MAX_PIXELS
from fakescope.data.manifest import ManifestRow
from fakescope.errors import InputError
from fakescope.preprocess.video.probe import is_video_path

__all__ = ["PrepareJob", "plan_jobs"]


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
