"""Video decoding and frame sampling with PyAV (DESIGN.md "Preprocessing"; INFER §3.1, AIRL §IV-B).

Frame indices always mean *presentation order* (0 = first displayed frame), whatever the frame rate:
for a variable-frame-rate video "evenly spaced" is evenly spaced in frame count. The sampler finds a
frame by seeking to the keyframe before it and decoding forward until the frame's exact timestamp
(taken from the demuxed packets, which costs no decoding). When the container gives no timestamps,
or a seek lands somewhere unexpected, it falls back to decoding the whole video and counting frames,
so both paths return the same frames (the tests check this on the real DFDC videos).

That seek-and-decode-forward path is kept as ``decode="legacy"``. The default (``"auto"``, issue 15)
plans the work per video from the probe: it feeds the decoder packet by packet and leaves out the
packets no sampled frame can depend on. A stretch with no sampled frame up to the next needed keyframe is
skipped (read past, or seeked over when it is long), and H.264 non-reference pictures that are not
sampled are not decoded at all: nothing is predicted from them, so every sampled frame is
bit-identical to the one full decoding returns (tested), for about two thirds of the decoding CPU
time on the DFDC files. ``prefetch`` overlaps decoding with the caller's face detection in a background thread
(PyAV and onnxruntime both release the GIL).

Rotation metadata (the display matrix, or the legacy ``rotate`` tag) is applied, so frames come out
the way a player shows them. Empty, truncated and non-video files raise :class:`InputError` naming
the file; a caller processing many files catches it and goes on with the others.
"""

from __future__ import annotations

import bisect
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import av
import numpy as np

from fakescope.data.images import IMAGE_EXTENSIONS
from fakescope.errors import ConfigError, InputError
from fakescope.preprocess.config import FrameSamplingConfig
from fakescope.utils.paths import not_a_file_reason

T = TypeVar("T")

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
    "prefetch",
    "Prefetch",
    "video_frames",
    "DECODE_STRATEGIES",
]

#: ``preprocess.frames.decode`` values (see :func:`iter_frames`).
DECODE_STRATEGIES = ("auto", "seek", "sequential", "legacy")

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


# ---- planned decoding (decode = auto | seek | sequential) -----------------------------------------

_SLICE_NAL_TYPES = frozenset({1, 2, 3, 4, 5})  # coded slice (non-IDR, partitions A-C, IDR)


def _h264_nonref_test(codec_context: av.codec.context.CodecContext) -> Callable[[bytes], bool] | None:
    """A test telling whether an H.264 packet holds only non-reference slices (``nal_ref_idc == 0``).

    Such a picture is never used to predict another one (H.264 §7.4.1) and carries no reference
    marking, so not decoding it changes no other decoded picture: this is FFmpeg's
    ``skip_frame=NONREF``, applied per packet so that a sampled non-reference picture is still
    decoded. Any packet the parser is unsure about is kept. None for other codecs.
    """
    if codec_context.name != "h264":
        return None
    extra = bytes(codec_context.extradata or b"")
    if len(extra) >= 7 and extra[0] == 1:  # avcC (MP4, MOV, MKV): length-prefixed NAL units
        size_len = (extra[4] & 3) + 1

        def length_prefixed(data: bytes) -> bool:
            i, n, seen = 0, len(data), False
            while i + size_len < n:
                size = int.from_bytes(data[i : i + size_len], "big")
                header = data[i + size_len]
                if (header & 0x1F) in _SLICE_NAL_TYPES:
                    if header & 0x60:
                        return False
                    seen = True
                i += size_len + size
            return seen and i == n

        return length_prefixed

    def annex_b(data: bytes) -> bool:  # start-code delimited (raw .h264, MPEG-TS)
        i, seen = data.find(b"\x00\x00\x01"), False
        while i >= 0 and i + 3 < len(data):
            header = data[i + 3]
            if (header & 0x1F) in _SLICE_NAL_TYPES:
                if header & 0x60:
                    return False
                seen = True
            i = data.find(b"\x00\x00\x01", i + 3)
        return seen

    return annex_b


class _Plan:
    """The state of one planned decode (see :func:`_iter_planned`)."""

    def __init__(self, probe: VideoProbe, wanted: list[int], strategy: str, seek_min_gap: int) -> None:
        assert probe.frame_pts is not None and probe.keyframe_pts is not None
        self.frame_pts, keys = probe.frame_pts, probe.keyframe_pts
        self.targets = [self.frame_pts[i] for i in wanted]
        self.index_of = dict(zip(self.targets, wanted, strict=True))
        self.need_key = [keys[max(bisect.bisect_right(keys, t) - 1, 0)] for t in self.targets]
        self.strategy, self.seek_min_gap = strategy, seek_min_gap
        self.ti = 0  # the next sampled frame to hand out
        self.got: dict[int, av.VideoFrame] = {}
        self.newest = -(2**62)  # largest pts the decoder put out since it was last reset
        self.fed_key: int | None = None  # the keyframe the decoder's current run started from
        self.last_read = self.frame_pts[0] - 1  # pts of the last packet read, decoded or not
        self.skip_until: int | None = None

    @property
    def done(self) -> bool:
        return self.ti >= len(self.targets)

    def should_seek(self) -> bool:
        """Whether to seek to the next needed keyframe rather than read up to it."""
        key = self.need_key[self.ti]
        gap = bisect.bisect_left(self.frame_pts, key) - bisect.bisect_right(self.frame_pts, self.last_read)
        return self.strategy == "seek" or (self.strategy == "auto" and gap >= self.seek_min_gap)

    def reset(self) -> None:
        """The decoder was reset: skip to the keyframe the next sampled frame needs."""
        self.skip_until, self.newest, self.fed_key = self.need_key[self.ti], -(2**62), None

    def needs_jump(self) -> bool:
        """The next sampled frame needs a keyframe not yet read: nothing before it is needed."""
        return (
            not self.done
            and self.skip_until is None
            and self.fed_key is not None
            and self.need_key[self.ti] > self.fed_key
        )

    def admit(self, packet: av.Packet, nonref: Callable[[bytes], bool] | None) -> bool:
        """Whether to decode ``packet``; raises :class:`_InexactSeek` when the needed keyframe was
        never read."""
        pts = packet.pts
        if pts is not None:
            self.last_read = max(self.last_read, int(pts))
        if self.skip_until is not None:
            if not packet.is_keyframe or pts is None or pts < self.skip_until:
                return False
            if pts > self.skip_until:
                raise _InexactSeek
            self.skip_until = None
        if packet.is_keyframe and pts is not None:
            self.fed_key = int(pts)
        # A keyframe is always decoded: the run after it starts from it.
        return nonref is None or packet.is_keyframe or pts in self.index_of or not nonref(bytes(packet))

    def take(self, frames: list[av.VideoFrame]) -> None:
        for frame in frames:
            if frame.pts is None:
                raise _InexactSeek
            self.newest = max(self.newest, int(frame.pts))
            if frame.pts in self.index_of and frame.pts >= self.targets[self.ti]:
                self.got[int(frame.pts)] = frame

    def ready(self) -> Iterator[av.VideoFrame]:
        """The sampled frames now complete, in order; raises :class:`_InexactSeek` when the decoder
        went past a sampled frame without putting it out."""
        while not self.done and self.targets[self.ti] in self.got:
            yield self.got.pop(self.targets[self.ti])
            self.ti += 1
        if not self.done and self.newest > self.targets[self.ti]:
            raise _InexactSeek


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
    come out where the timestamps say raises :class:`_InexactSeek` (the caller then decodes
    everything), as on the legacy path.
    """
    plan = _Plan(probe, wanted, strategy, seek_min_gap)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        _configure_decoder(stream, threads)
        cc = stream.codec_context
        nonref = _h264_nonref_test(cc) if drop_nonref else None
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
                    raise _InexactSeek
                if plan.needs_jump():
                    packets = jump()
        except av.error.FFmpegError as err:
            raise InputError(
                f"{path}: decoding failed near frame {index} ({_reason(err)}); "
                "the file is truncated or corrupt"
            ) from None
    finally:
        container.close()


_END = object()


class Prefetch(Iterator[T]):
    """Run ``frames`` in a background thread, at most ``depth`` items ahead of the consumer; the
    thread starts at once, so decoding can begin before the consumer asks for the first frame.

    Decoding then overlaps whatever the caller does with each frame (face detection): PyAV's decoder,
    its pixel conversion and onnxruntime all release the GIL. ``on_exhausted`` runs in the thread
    once the last item has been produced (while the consumer still works on the last ones): the
    pipeline starts decoding the next video there. Errors are re-raised in the consumer's thread, in
    order; :meth:`close` (also on an early stop or an error) stops the thread and closes the video.
    """

    def __init__(
        self, frames: Iterator[T], depth: int, on_exhausted: Callable[[], None] | None = None
    ) -> None:
        self._frames = frames
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(
            target=self._work, args=(on_exhausted,), name="fakescope-decode", daemon=True
        )
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, on_exhausted: Callable[[], None] | None) -> None:
        try:
            for item in self._frames:
                if not self._put((item, None)):
                    return
            if on_exhausted is not None:
                on_exhausted()
            self._put((_END, None))
        except BaseException as err:  # handed to the consumer, raised there
            self._put((_END, err))
        finally:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item, err = self._queue.get()
        if item is _END:
            self.close()
            if err is not None:
                raise err
            raise StopIteration
        return item

    def close(self) -> None:
        self._finished = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


def prefetch(frames: Iterator[T], depth: int, on_exhausted: Callable[[], None] | None = None) -> Iterator[T]:
    """``frames`` decoded ``depth`` items ahead in a background thread (:class:`Prefetch`); with
    ``depth`` 0 the iterator itself (then ``on_exhausted`` is not called)."""
    if depth <= 0:
        return frames
    return Prefetch(frames, depth, on_exhausted)


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
                except _InexactSeek:
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
