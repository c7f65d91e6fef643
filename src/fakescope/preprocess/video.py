"""Video decoding and frame sampling with PyAV (DESIGN.md "Preprocessing"; INFER §3.1, AIRL §IV-B).

Frame indices always mean *presentation order* (0 = first displayed frame), whatever the frame rate:
for a variable-frame-rate video "evenly spaced" is evenly spaced in frame count. The sampler finds a
frame by seeking to the keyframe before it and decoding forward until the frame's exact timestamp
(taken from the demuxed packets, which costs no decoding). When the container gives no timestamps,
or a seek lands somewhere unexpected, it falls back to decoding the whole video and counting frames,
so both paths return the same frames (the tests check this on the real DFDC videos).

Rotation metadata (the display matrix, or the legacy ``rotate`` tag) is applied, so frames come out
the way a player shows them. Empty, truncated and non-video files raise :class:`InputError` naming
the file; a caller processing many files catches it and goes on with the others.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from fakescope.data.images import IMAGE_EXTENSIONS
from fakescope.errors import ConfigError, InputError
from fakescope.preprocess.config import FrameSamplingConfig
from fakescope.utils.paths import not_a_file_reason

__all__ = [
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "DecodedFrame",
    "VideoProbe",
    "FrameSelection",
    "is_video_path",
    "probe_video",
    "select_frame_indices",
    "iter_frames",
    "read_frames",
    "count_frames_by_decoding",
]

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp", ".h264"}
)


def is_video_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame, rotated for display. ``image`` is HxWx3 uint8 RGB."""

    index: int
    pts: int | None
    time: float | None
    image: np.ndarray = field(repr=False)


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


@dataclass(frozen=True)
class FrameSelection:
    """The frame indices a sampling policy picked. ``short`` is True when the video has fewer frames
    than asked for, in which case every frame is used and the shortfall is reported."""

    indices: tuple[int, ...]
    requested: int | None
    short: bool


def _open(path: str | os.PathLike[str]) -> av.container.InputContainer:
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
            f"{p}: cannot open as a video ({_reason(err)}); the file is truncated, corrupt or not a video"
        ) from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{p}: no video stream in the file")
    return container


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return str(text).split(":")[0].strip() or type(err).__name__


def _display_rotation(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    """Counter-clockwise degrees to turn the decoded frame so it displays upright."""
    rot = int(round(frame.rotation or 0))
    if rot == 0:
        # Old muxers write a clockwise ``rotate`` tag instead of a display matrix.
        tag = next((v for k, v in stream.metadata.items() if k.lower() == "rotate"), None)
        if tag:
            try:
                rot = -int(float(tag))
            except ValueError:
                rot = 0
    return rot


def _to_rgb(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> np.ndarray:
    image = frame.to_ndarray(format="rgb24")
    quarter_turns = int(round(_display_rotation(frame, stream) / 90.0)) % 4
    if quarter_turns:
        image = np.ascontiguousarray(np.rot90(image, k=quarter_turns))
    return image


def _configure_decoder(stream: av.video.stream.VideoStream, threads: int) -> None:
    stream.thread_type = "AUTO"
    if threads > 0:
        stream.codec_context.thread_count = threads


def probe_video(path: str | os.PathLike[str]) -> VideoProbe:
    """Read the container header and demux (not decode) every packet to get exact frame timestamps.

    Raises :class:`InputError` for empty, unreadable and truncated files.
    """
    container = _open(path)
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
                f"{path}: the video stream breaks off after {n_packets} packets ({_reason(err)}); "
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


def select_frame_indices(
    n_frames: int, sampling: FrameSamplingConfig, label: int | None = None
) -> FrameSelection:
    """Pick frame indices by ``sampling.policy`` (DESIGN.md: INFER 10 fake / 40 real, AIRL 10 even).

    ``even`` takes the centre of each of ``count`` equal segments, which skips the first and last
    frames (often fades or black) and never repeats a frame.
    """
    if n_frames <= 0:
        return FrameSelection((), None, False)
    policy = sampling.policy
    if policy == "all":
        return FrameSelection(tuple(range(n_frames)), None, False)
    if policy == "every_k":
        return FrameSelection(tuple(range(0, n_frames, sampling.every_k)), None, False)
    if policy == "even":
        count = sampling.count
    elif policy == "per_label":
        if label not in (0, 1):
            raise ConfigError("preprocess.frames.policy=per_label needs a real/fake label for every input")
        count = sampling.real_count if label == 0 else sampling.fake_count
    else:  # pragma: no cover - pydantic restricts the literal
        raise ConfigError(f"preprocess.frames.policy: unknown policy {policy!r}")
    if count >= n_frames:
        return FrameSelection(tuple(range(n_frames)), count, count > n_frames)
    idx = np.floor((np.arange(count) + 0.5) * n_frames / count).astype(int)
    return FrameSelection(tuple(int(i) for i in idx), count, False)


def _iter_by_decoding(
    path: str | os.PathLike[str], wanted: list[int], threads: int
) -> Iterator[DecodedFrame]:
    want = set(wanted)
    last = max(wanted)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        _configure_decoder(stream, threads)
        tb = float(stream.time_base) if stream.time_base else None
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                if index in want:
                    time = float(frame.pts * tb) if frame.pts is not None and tb else None
                    yield DecodedFrame(index, frame.pts, time, _to_rgb(frame, stream))
                if index >= last:
                    return
        except av.error.FFmpegError as err:
            raise InputError(
                f"{path}: decoding failed after frame {index} ({_reason(err)}); "
                "the file is truncated or corrupt"
            ) from None
        missing = sorted(i for i in want if i > index)
        if missing:
            raise InputError(
                f"{path}: truncated: only {index + 1} frames decode, frame {missing[0]} was asked for"
            )
    finally:
        container.close()


class _InexactSeek(Exception):
    pass


def _iter_by_seeking(
    path: str | os.PathLike[str], probe: VideoProbe, wanted: list[int], threads: int
) -> Iterator[DecodedFrame]:
    assert probe.frame_pts is not None and probe.keyframe_pts is not None
    container = _open(path)
    try:
        stream = container.streams.video[0]
        _configure_decoder(stream, threads)
        tb = float(stream.time_base) if stream.time_base else None
        decoder: Iterator[av.VideoFrame] | None = None
        last_pts: int | None = None
        for index in wanted:
            target = probe.frame_pts[index]
            k = bisect.bisect_right(probe.keyframe_pts, target) - 1
            key = probe.keyframe_pts[max(k, 0)]
            # Keep decoding forward when no keyframe lies between the last frame and the target:
            # a seek would land on the same keyframe and redo that work.
            if decoder is None or last_pts is None or last_pts >= target or key > last_pts:
                container.seek(key, stream=stream, backward=True, any_frame=False)
                decoder = container.decode(stream)
                last_pts = None
            found = None
            try:
                for frame in decoder:
                    if frame.pts is None:
                        raise _InexactSeek
                    last_pts = int(frame.pts)
                    if last_pts == target:
                        found = frame
                        break
                    if last_pts > target:
                        raise _InexactSeek
            except av.error.FFmpegError as err:
                raise InputError(
                    f"{path}: decoding failed near frame {index} ({_reason(err)}); "
                    "the file is truncated or corrupt"
                ) from None
            if found is None:
                raise _InexactSeek
            time = float(found.pts * tb) if tb else None
            yield DecodedFrame(index, found.pts, time, _to_rgb(found, stream))
    finally:
        container.close()


def iter_frames(
    path: str | os.PathLike[str],
    indices: list[int] | tuple[int, ...],
    *,
    probe: VideoProbe | None = None,
    seek: bool = True,
    threads: int = 0,
) -> Iterator[DecodedFrame]:
    """Yield the frames at ``indices`` (presentation order, ascending, no repeats) one at a time, so
    ``policy=all`` on a long video never holds more than one frame in memory."""
    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        return
    if wanted[0] < 0:
        raise ValueError(f"negative frame index {wanted[0]}")
    if seek:
        probe = probe or probe_video(path)
        if probe.seekable and wanted[-1] < probe.n_frames:
            done = 0
            try:
                for frame in _iter_by_seeking(path, probe, wanted, threads):
                    done += 1
                    yield frame
                return
            except _InexactSeek:
                # Resume by full decoding from the first frame not yet delivered.
                wanted = wanted[done:]
    yield from _iter_by_decoding(path, wanted, threads)


def read_frames(
    path: str | os.PathLike[str],
    indices: list[int] | tuple[int, ...],
    *,
    seek: bool = True,
    threads: int = 0,
) -> list[DecodedFrame]:
    """All of :func:`iter_frames` as a list (convenient for a few frames)."""
    return list(iter_frames(path, indices, seek=seek, threads=threads))


def count_frames_by_decoding(path: str | os.PathLike[str], threads: int = 0) -> int:
    """Decode every frame and count them: the ground truth when the container has no usable index."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        _configure_decoder(stream, threads)
        n = 0
        try:
            for _ in container.decode(stream):
                n += 1
        except av.error.FFmpegError as err:
            raise InputError(f"{path}: decoding failed after frame {n} ({_reason(err)})") from None
        return n
    finally:
        container.close()
