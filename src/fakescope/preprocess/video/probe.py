"""Opening a video and probing it: the container header and the exact presentation timestamps of its
frames (demuxed, not decoded), or the frame count by decoding when the container has none usable.
Empty, truncated and non-video files raise :class:`~fakescope.errors.InputError` naming the file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from fakescope.errors import InputError
from fakescope.utils.paths import not_a_file_reason

__all__ = [
    "VIDEO_EXTENSIONS", "InexactSeek", "VideoProbe", "configure_decoder", "count_frames_by_decoding",
    "ffmpeg_reason", "is_video_path", "open_video", "probe_video",
]  # fmt: skip


VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp", ".h264"}
)


def is_video_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoProbe:
    """What the container says about a video, plus the exact presentation timestamps of its frames."""

    path: str
    n_frames: int
    fps: float | None
    duration_s: float | None
    width: int
    height: int
    codec: str
    frame_pts: tuple[int, ...] | None = field(repr=False)
    keyframe_pts: tuple[int, ...] | None = field(repr=False)
    variable_frame_rate: bool

    @property
    def seekable(self) -> bool:
        return bool(self.frame_pts) and bool(self.keyframe_pts)


class InexactSeek(Exception):
    pass


def open_video(path: str | os.PathLike[str]) -> av.container.InputContainer:
    p = Path(path)
    reason = not_a_file_reason(p)
    if reason is not None:
        raise InputError(f"{p}: {'video file not found' if reason == 'no such file' else reason}")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: empty file (0 bytes)")
    try:
        container = av.open(str(p), mode="r")
    except av.error.FFmpegError as err:
        raise InputError(
            f"{p}: cannot open as a video ({ffmpeg_reason(err)}); the file is truncated, corrupt or not a video"
        ) from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{p}: no video stream in the file")
    return container


def ffmpeg_reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return str(text).split(":")[0].strip() or type(err).__name__


def configure_decoder(stream: av.video.stream.VideoStream, threads: int) -> None:
    stream.thread_type = "AUTO"
    if threads > 0:
        stream.codec_context.thread_count = threads


def probe_video(path: str | os.PathLike[str]) -> VideoProbe:
    """Read the container header and demux (not decode) every packet to get exact frame timestamps.

    Raises :class:`InputError` for empty, unreadable and truncated files.
    """
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        declared = int(stream.frames or 0)
        pts: list[int] = []
        key_pts: list[int] = []
        missing_pts = False
        n_packets = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's final flush packet
                n_packets += 1
                if packet.is_discard:
                    continue  # decoded as a reference, but an edit list cuts its frame away
                if packet.pts is None:
                    missing_pts = True
                    continue
                pts.append(int(packet.pts))
                if packet.is_keyframe:
                    key_pts.append(int(packet.pts))
        except av.error.FFmpegError as err:
            raise InputError(
                f"{path}: the video stream breaks off after {n_packets} packets ({ffmpeg_reason(err)}); "
                "the file is truncated or corrupt"
            ) from None
        if declared and n_packets < declared:
            raise InputError(
                f"{path}: truncated: the header declares {declared} frames but only "
                f"{n_packets} are present in the file"
            )
        frame_pts = tuple(sorted(pts)) if pts and not missing_pts and len(set(pts)) == len(pts) else None
        keyframes = tuple(sorted(key_pts)) if frame_pts else None
        fps = float(stream.average_rate) if stream.average_rate else None
        tb = float(stream.time_base) if stream.time_base else None
        vfr = False
        if frame_pts and len(frame_pts) > 2:
            gaps = np.diff(np.asarray(frame_pts, dtype=np.int64))
            vfr = bool(gaps.max() > 1.5 * np.median(gaps))
        duration = None
        if stream.duration is not None and tb:
            duration = float(stream.duration * tb)
        elif container.duration:
            duration = container.duration / 1e6
        if frame_pts:
            n_frames = len(frame_pts)
        else:
            # No usable timestamps (raw streams, some AVIs): only decoding can tell the frame count.
            container.close()
            n_frames = count_frames_by_decoding(path)
        return VideoProbe(
            path=str(path),
            n_frames=n_frames,
            fps=fps,
            duration_s=duration,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            codec=stream.codec_context.name,
            frame_pts=frame_pts,
            keyframe_pts=keyframes,
            variable_frame_rate=vfr,
        )
    finally:
        container.close()


def count_frames_by_decoding(path: str | os.PathLike[str], threads: int = 0) -> int:
    """Decode every frame and count them: the ground truth when the container has no usable index."""
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        configure_decoder(stream, threads)
        n = 0
        try:
            for _ in container.decode(stream):
                n += 1
        except av.error.FFmpegError as err:
            raise InputError(f"{path}: decoding failed after frame {n} ({ffmpeg_reason(err)})") from None
        return n
    finally:
        container.close()
