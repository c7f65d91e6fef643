"""Decoding the sampled frames of a video, one at a time and rotated for display: planned decoding
(:mod:`fakescope.preprocess.video.plan`), the legacy seek-and-decode-forward path, and decoding
everything and counting, the fallback when timestamps cannot be trusted."""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import av
import numpy as np

from fakescope.errors import ConfigError, InputError
from fakescope.preprocess.config import FrameSamplingConfig
from fakescope.preprocess.video.plan import DecodePlan, h264_nonref_test
from fakescope.preprocess.video.probe import (
    InexactSeek,
    VideoProbe,
    configure_decoder,
    ffmpeg_reason,
    open_video,
    probe_video,
)

__all__ = ["DECODE_STRATEGIES", "DecodedFrame", "iter_frames", "read_frames", "video_frames"]

#: ``preprocess.frames.decode`` values (see :func:`iter_frames`).
DECODE_STRATEGIES = ("auto", "seek", "sequential", "legacy")


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame, rotated for display. ``image`` is HxWx3 uint8 RGB."""

    index: int
    pts: int | None
    time: float | None
    image: np.ndarray = field(repr=False)


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


def _iter_by_decoding(
    path: str | os.PathLike[str], wanted: list[int], threads: int
) -> Iterator[DecodedFrame]:
    want = set(wanted)
    last = max(wanted)
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        configure_decoder(stream, threads)
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
                f"{path}: decoding failed after frame {index} ({ffmpeg_reason(err)}); "
                "the file is truncated or corrupt"
            ) from None
        missing = sorted(i for i in want if i > index)
        if missing:
            raise InputError(
                f"{path}: truncated: only {index + 1} frames decode, frame {missing[0]} was asked for"
            )
    finally:
        container.close()


def _iter_by_seeking(
    path: str | os.PathLike[str], probe: VideoProbe, wanted: list[int], threads: int
) -> Iterator[DecodedFrame]:
    assert probe.frame_pts is not None and probe.keyframe_pts is not None
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        configure_decoder(stream, threads)
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
                        raise InexactSeek
                    last_pts = int(frame.pts)
                    if last_pts == target:
                        found = frame
                        break
                    if last_pts > target:
                        raise InexactSeek
            except av.error.FFmpegError as err:
                raise InputError(
                    f"{path}: decoding failed near frame {index} ({ffmpeg_reason(err)}); "
                    "the file is truncated or corrupt"
                ) from None
            if found is None:
                raise InexactSeek
            time = float(found.pts * tb) if tb else None
            yield DecodedFrame(index, found.pts, time, _to_rgb(found, stream))
    finally:
        container.close()


def _iter_planned(
    path: str | os.PathLike[str],
    probe: VideoProbe,
    wanted: list[int],
    threads: int,
    strategy: str,
    drop_nonref: bool,
    seek_min_gap: int,
) -> Iterator[DecodedFrame]:
    """Decode packet by packet, giving the decoder only what the sampled frames need.

    For the next sampled frame ``t`` the needed keyframe ``K`` is the last one at or before it. When
    ``K`` has not been read yet, nothing before it is needed: the decoder is reset and the packets
    before ``K`` are read past (``sequential``) or seeked over (``seek``; ``auto`` when that skips at
    least ``seek_min_gap`` frames). From ``K`` on every packet is decoded except, with
    ``drop_nonref``, H.264 non-reference pictures that are not sampled. A sampled frame that does not
    come out where the timestamps say raises :class:`InexactSeek` (the caller then decodes
    everything), as on the legacy path.
    """
    plan = DecodePlan(probe, wanted, strategy, seek_min_gap)
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        configure_decoder(stream, threads)
        cc = stream.codec_context
        nonref = h264_nonref_test(cc) if drop_nonref else None
        tb = float(stream.time_base) if stream.time_base else None
        packets = container.demux(stream)

        def jump() -> Iterator[av.Packet]:
            if plan.should_seek():
                # PyAV's seek also flushes the decoder (frame-threaded ones included).
                container.seek(plan.need_key[plan.ti], stream=stream, backward=True, any_frame=False)
                plan.reset()
                return container.demux(stream)
            if plan.fed_key is not None:
                cc.flush_buffers()
            plan.reset()
            return packets

        index = wanted[0]
        try:
            packets = jump()
            while not plan.done:
                index = wanted[plan.ti]
                packet = next(packets, None)
                if packet is None:
                    plan.take(cc.decode(None))  # end of file: drain what the decoder still holds
                elif packet.size == 0 or not plan.admit(packet, nonref):
                    continue
                else:
                    plan.take(cc.decode(packet))
                for frame in plan.ready():
                    time = float(frame.pts * tb) if tb else None
                    yield DecodedFrame(plan.index_of[frame.pts], frame.pts, time, _to_rgb(frame, stream))
                if packet is None and not plan.done:
                    raise InexactSeek
                if plan.needs_jump():
                    packets = jump()
        except av.error.FFmpegError as err:
            raise InputError(
                f"{path}: decoding failed near frame {index} ({ffmpeg_reason(err)}); "
                "the file is truncated or corrupt"
            ) from None
    finally:
        container.close()


def iter_frames(
    path: str | os.PathLike[str],
    indices: list[int] | tuple[int, ...],
    *,
    probe: VideoProbe | None = None,
    seek: bool = True,
    threads: int = 0,
    decode: str = "auto",
    drop_nonref: bool = True,
    seek_min_gap: int = 300,
) -> Iterator[DecodedFrame]:
    """Yield the frames at ``indices`` (presentation order, ascending, no repeats) one at a time, so
    ``policy=all`` on a long video never holds more than one frame in memory.

    ``decode`` (``preprocess.frames.decode``): ``auto``, ``seek`` and ``sequential`` decode only what
    the sampled frames need (:func:`_iter_planned`); ``legacy`` is the seek-and-decode-forward path
    of before. ``seek=False`` never calls the demuxer's seek: with ``legacy`` it decodes every frame,
    otherwise it means ``sequential``. All return the same frames; without usable timestamps every
    strategy decodes the whole video and counts.
    """
    if decode not in DECODE_STRATEGIES:
        raise ConfigError(f"preprocess.frames.decode: unknown strategy {decode!r}")
    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        return
    if wanted[0] < 0:
        raise ValueError(f"negative frame index {wanted[0]}")
    if decode != "legacy":
        probe = probe or probe_video(path)
        if probe.seekable and wanted[-1] < probe.n_frames:
            # A seek that lands off target (MPEG-TS, files without an index) is retried by reading
            # from the start, which never seeks; only if that fails too is everything decoded.
            strategies = ["sequential"] if not seek or decode == "sequential" else [decode, "sequential"]
            for strategy in strategies:
                done = 0
                try:
                    for frame in _iter_planned(
                        path, probe, wanted, threads, strategy, drop_nonref, seek_min_gap
                    ):
                        done += 1
                        yield frame
                    return
                except InexactSeek:
                    wanted = wanted[done:]
        yield from _iter_by_decoding(path, wanted, threads)
        return
    if seek:
        probe = probe or probe_video(path)
        if probe.seekable and wanted[-1] < probe.n_frames:
            done = 0
            try:
                for frame in _iter_by_seeking(path, probe, wanted, threads):
                    done += 1
                    yield frame
                return
            except InexactSeek:
                # Resume by full decoding from the first frame not yet delivered.
                wanted = wanted[done:]
    yield from _iter_by_decoding(path, wanted, threads)


def read_frames(
    path: str | os.PathLike[str],
    indices: list[int] | tuple[int, ...],
    *,
    seek: bool = True,
    threads: int = 0,
    decode: str = "auto",
    drop_nonref: bool = True,
    seek_min_gap: int = 300,
) -> list[DecodedFrame]:
    """All of :func:`iter_frames` as a list (convenient for a few frames)."""
    return list(
        iter_frames(
            path, indices, seek=seek, threads=threads, decode=decode, drop_nonref=drop_nonref,
            seek_min_gap=seek_min_gap,
        )
    )  # fmt: skip


def video_frames(
    path: str | os.PathLike[str],
    indices: list[int] | tuple[int, ...],
    sampling: FrameSamplingConfig,
    *,
    probe: VideoProbe | None = None,
) -> Iterator[DecodedFrame]:
    """:func:`iter_frames` with the decode fields of ``preprocess.frames`` (not ``prefetch``)."""
    return iter_frames(
        path,
        indices,
        probe=probe,
        seek=sampling.seek,
        threads=sampling.decode_threads,
        decode=sampling.decode,
        drop_nonref=sampling.drop_nonref,
        seek_min_gap=sampling.seek_min_gap,
    )
