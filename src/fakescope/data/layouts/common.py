"""What every layout builder shares: finding a video's media, either the video file itself or a
folder of its already-extracted frames / face crops, and turning it into manifest rows."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fakescope.data.images import IMAGE_EXTENSIONS
from fakescope.data.manifest import ManifestRow
from fakescope.errors import ManifestError

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
_DIGITS = re.compile(r"(\d+)(?!.*\d)")


@dataclass(frozen=True)
class VideoMedia:
    """One video, as a file (``frames`` empty) or as a folder of frame images."""

    name: str
    path: Path
    frames: tuple[Path, ...] = ()


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def frame_images(folder: Path) -> tuple[Path, ...]:
    """The images directly inside ``folder``, sorted by name (extractors number frames with zero padding)."""
    try:
        entries = sorted(
            p for p in folder.iterdir() if p.is_file() and is_image(p) and not p.name.startswith(".")
        )
    except OSError:
        return ()
    return tuple(entries)


def frame_index(path: Path, fallback: int) -> int:
    """The frame number written in a file name (``0042.png`` → 42), else the position in the folder."""
    m = _DIGITS.search(path.stem)
    return int(m.group(1)) if m else fallback


def media_for(path_without_ext: Path, listed: Path | None = None) -> VideoMedia | None:
    """The media of one listed video: the file itself, or a same-named folder (extension dropped)
    holding its frames. ``None`` when neither exists."""
    if listed is not None and listed.is_file():
        return VideoMedia(listed.stem, listed)
    folder = path_without_ext
    if folder.is_dir():
        frames = frame_images(folder)
        if frames:
            return VideoMedia(folder.name, folder, frames)
    if listed is None:
        for ext in sorted(VIDEO_EXTENSIONS):
            candidate = path_without_ext.with_name(path_without_ext.name + ext)
            if candidate.is_file():
                return VideoMedia(candidate.stem, candidate)
    return None


def scan_videos(folder: Path, recursive: bool = False) -> Iterator[VideoMedia]:
    """Every video under ``folder``: each video file, and each sub-folder that directly holds images
    (a video's extracted frames). Sorted, so manifests are identical from run to run."""
    if not folder.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        here = Path(dirpath)
        for fn in sorted(filenames):
            p = here / fn
            if is_video(p) and not fn.startswith("."):
                yield VideoMedia(p.stem, p)
        for d in list(dirnames):
            frames = frame_images(here / d)
            if frames:
                yield VideoMedia(d, here / d, frames)
        if not recursive:
            # Only the top level and its frame folders: stop walking deeper.
            dirnames[:] = []


def media_rows(
    media: VideoMedia,
    *,
    label: int,
    group: str,
    dataset: str,
    method: str,
    split: str = "",
    video: str | None = None,
) -> list[ManifestRow]:
    """Manifest rows for one video: one row for a video file, one row per frame for a frame folder."""
    vid = video if video is not None else media.name
    if not media.frames:
        return [ManifestRow(str(media.path), label, group, dataset, method, split, vid, None)]
    return [
        ManifestRow(str(p), label, group, dataset, method, split, vid, frame_index(p, i))
        for i, p in enumerate(media.frames)
    ]


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise ManifestError(f"{path}: {what} not found")
    return path


def missing_error(root: Path, missing: list[str], hint: str) -> ManifestError:
    shown = ", ".join(missing[:10]) + (f", ... and {len(missing) - 10} more" if len(missing) > 10 else "")
    return ManifestError(f"{root}: {len(missing)} listed video(s) not found ({shown}); {hint}")
