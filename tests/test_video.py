"""Video decoding and frame sampling (fakescope.preprocess.video)."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import pytest

from fakescope.errors import ConfigError, InputError
from fakescope.preprocess.config import FrameSamplingConfig
from fakescope.preprocess.video import probe_video, read_frames, select_frame_indices

LEVEL = 8  # frame i is painted with grey level 8*i, so a decoded frame tells its own index


def write_video(
    path: Path,
    n: int = 30,
    gop: int = 5,
    pts: list[int] | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """A small H.264 clip with B-frames and a keyframe every ``gop`` frames; a white band on the left."""
    c = av.open(str(path), "w", options=options or {})
    s = c.add_stream("libx264", rate=25, options={"g": str(gop), "bf": "2", "preset": "ultrafast"})
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    if pts is not None:
        s.time_base = fractions.Fraction(1, 1000)
    if rotation is not None:
        s.set_display_rotation(rotation)
    for i in range(n):
        img = np.full((48, 64, 3), LEVEL * i, np.uint8)
        img[:, :8] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        if pts is not None:
            frame.pts, frame.time_base = pts[i], fractions.Fraction(1, 1000)
        for p in s.encode(frame):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def painted_index(image: np.ndarray) -> int:
    return int(round(float(image[:, 8:].mean()) / LEVEL))


@pytest.mark.parametrize("indices", [[0], [3, 7, 21, 29], [4, 5, 6], [29], list(range(0, 30, 4))])
def test_seeking_returns_the_frames_full_decoding_returns(tmp_path, indices):
    video = write_video(tmp_path / "gop5.mp4")
    seek = read_frames(video, indices, seek=True)
    decode = read_frames(video, indices, seek=False)
    assert [f.index for f in seek] == indices == [f.index for f in decode]
    assert [painted_index(f.image) for f in seek] == indices
    for a, b in zip(seek, decode, strict=True):
        assert a.pts == b.pts
        assert np.array_equal(a.image, b.image)


def test_probe_counts_frames_and_keyframes(tmp_path):
    probe = probe_video(write_video(tmp_path / "v.mp4"))
    assert probe.n_frames == 30 and probe.seekable and not probe.variable_frame_rate
    assert len(probe.keyframe_pts) == 6  # one every 5 frames
    assert probe.fps == pytest.approx(25.0)


def test_stream_without_timestamps_falls_back_to_decoding(tmp_path):
    path = tmp_path / "raw.h264"  # an elementary stream: packets carry no timestamps
    c = av.open(str(path), "w", format="h264")
    s = c.add_stream("libx264", rate=25, options={"g": "5", "bf": "2", "preset": "ultrafast"})
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    for i in range(20):
        for p in s.encode(
            av.VideoFrame.from_ndarray(np.full((48, 64, 3), LEVEL * i, np.uint8), format="rgb24")
        ):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    probe = probe_video(path)
    assert probe.n_frames == 20 and not probe.seekable
    frames = read_frames(path, [0, 7, 19])
    assert [f.index for f in frames] == [0, 7, 19]
    assert [int(round(float(f.image.mean()) / LEVEL)) for f in frames] == [0, 7, 19]


def test_variable_frame_rate_indices_are_presentation_order(tmp_path):
    gaps = [40 if i % 3 else 120 for i in range(29)]
    video = write_video(tmp_path / "vfr.mp4", pts=np.cumsum([0, *gaps]).tolist())
    probe = probe_video(video)
    assert probe.variable_frame_rate and probe.n_frames == 30
    sel = select_frame_indices(probe.n_frames, FrameSamplingConfig(policy="even", count=5))
    frames = read_frames(video, sel.indices)
    assert [painted_index(f.image) for f in frames] == list(sel.indices)
    times = [f.time for f in frames]
    assert times == sorted(times) and times[-1] == pytest.approx(
        sum(gaps[: sel.indices[-1]]) / 1000, abs=0.02
    )


def test_display_rotation_is_applied(tmp_path):
    video = write_video(tmp_path / "rot.mp4", n=3, rotation=90)
    image = read_frames(video, [1])[0].image
    # 64x48 coded, rotated 90 degrees counter-clockwise for display: 48 wide, 64 high, and the
    # white band that was on the left edge is now along the bottom.
    assert image.shape == (64, 48, 3)
    assert image[-6:].mean() > 240 and image[:6].mean() < 60


def test_legacy_rotate_tag_is_applied(tmp_path):
    path = tmp_path / "tagged.mkv"  # Matroska keeps a plain ROTATE tag (clockwise), no display matrix
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    s.metadata["rotate"] = "90"
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :8] = 255
    for _ in range(3):
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    image = read_frames(path, [1])[0].image
    # Turned 90 degrees clockwise: the left band is now along the top.
    assert image.shape == (64, 48, 3)
    assert image[:6].mean() > 240 and image[-6:].mean() < 60


def test_selection_policies():
    even = select_frame_indices(300, FrameSamplingConfig(policy="even", count=4))
    assert even.indices == (37, 112, 187, 262) and not even.short
    assert select_frame_indices(10, FrameSamplingConfig(policy="every_k", every_k=4)).indices == (0, 4, 8)
    assert select_frame_indices(5, FrameSamplingConfig(policy="all")).indices == tuple(range(5))
    per_label = FrameSamplingConfig(policy="per_label", real_count=40, fake_count=10)
    assert len(select_frame_indices(300, per_label, label=0).indices) == 40
    assert len(select_frame_indices(300, per_label, label=1).indices) == 10
    with pytest.raises(ConfigError, match="per_label"):
        select_frame_indices(300, per_label, label=None)


def test_short_clip_gives_all_frames_and_says_so(tmp_path):
    video = write_video(tmp_path / "short.mp4", n=5)
    sel = select_frame_indices(probe_video(video).n_frames, FrameSamplingConfig(policy="even", count=10))
    assert sel.indices == (0, 1, 2, 3, 4) and sel.short and sel.requested == 10
    assert [painted_index(f.image) for f in read_frames(video, sel.indices)] == [0, 1, 2, 3, 4]


def test_empty_and_truncated_files_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.mp4: empty file"):
        probe_video(empty)
    # moov atom first ("faststart"): the header survives, the frames do not.
    full = write_video(tmp_path / "fast.mp4", options={"movflags": "faststart"})
    cut = tmp_path / "cut_fast.mp4"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    with pytest.raises(InputError, match=r"cut_fast\.mp4: truncated"):
        probe_video(cut)
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    with pytest.raises(InputError, match=r"notes\.mp4: cannot open as a video"):
        read_frames(not_video, [0])


def test_real_dfdc_video_seeking_matches_full_decoding(shared_data):
    video = shared_data / "dfdc-videos" / "lynaeydofd.mp4"
    probe = probe_video(video)
    assert probe.n_frames == 300 and probe.seekable
    sel = select_frame_indices(probe.n_frames, FrameSamplingConfig(policy="even", count=4))
    seek = read_frames(video, sel.indices, seek=True)
    decode = read_frames(video, sel.indices, seek=False)
    assert [f.index for f in seek] == list(sel.indices)
    for a, b in zip(seek, decode, strict=True):
        assert a.pts == b.pts and np.array_equal(a.image, b.image)
    assert seek[0].image.shape == (1080, 1920, 3)


def test_real_truncated_copy_is_a_clear_error(shared_data, tmp_path):
    src = shared_data / "dfdc-videos" / "abofeumbvv.mp4"
    cut = tmp_path / "abofeumbvv_cut.mp4"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(InputError, match=r"abofeumbvv_cut\.mp4: .*truncated"):
        probe_video(cut)
