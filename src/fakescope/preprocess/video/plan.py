"""Planned decoding (``decode`` = auto | seek | sequential): from the probe's timestamps, which packets
the sampled frames need, when to seek over a stretch rather than read past it, and which H.264
non-reference pictures can be left undecoded. The decoding loop that follows the plan is
:func:`fakescope.preprocess.video.decode.iter_frames`'s."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

import av

from fakescope.preprocess.video.probe import InexactSeek, VideoProbe

__all__ = ["DecodePlan", "h264_nonref_test"]

_SLICE_NAL_TYPES = frozenset({1, 2, 3, 4, 5})  # coded slice (non-IDR, partitions A-C, IDR)


def h264_nonref_test(codec_context: av.codec.context.CodecContext) -> Callable[[bytes], bool] | None:
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


class DecodePlan:
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
        """Whether to decode ``packet``; raises :class:`InexactSeek` when the needed keyframe was
        never read."""
        pts = packet.pts
        if pts is not None:
            self.last_read = max(self.last_read, int(pts))
        if self.skip_until is not None:
            if not packet.is_keyframe or pts is None or pts < self.skip_until:
                return False
            if pts > self.skip_until:
                raise InexactSeek
            self.skip_until = None
        if packet.is_keyframe and pts is not None:
            self.fed_key = int(pts)
        # A keyframe is always decoded: the run after it starts from it.
        return nonref is None or packet.is_keyframe or pts in self.index_of or not nonref(bytes(packet))

    def take(self, frames: list[av.VideoFrame]) -> None:
        for frame in frames:
            if frame.pts is None:
                raise InexactSeek
            self.newest = max(self.newest, int(frame.pts))
            if frame.pts in self.index_of and frame.pts >= self.targets[self.ti]:
                self.got[int(frame.pts)] = frame

    def ready(self) -> Iterator[av.VideoFrame]:
        """The sampled frames now complete, in order; raises :class:`InexactSeek` when the decoder
        went past a sampled frame without putting it out."""
        while not self.done and self.targets[self.ti] in self.got:
            yield self.got.pop(self.targets[self.ti])
            self.ti += 1
        if not self.done and self.newest > self.targets[self.ti]:
            raise InexactSeek
