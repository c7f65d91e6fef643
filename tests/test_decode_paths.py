"""The decode strategies of issue 15 (``preprocess.frames.decode``) return exactly the frames the
legacy path and full decoding return: same frame, same timestamp, same bytes."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from fakescope.errors import InputError
from fakescope.preprocess.config import FrameSamplingConfig
from fakescope.preprocess.video import (
    iter_frames,
    prefetch,
    probe_video,
    read_frames,
    select_frame_indices,
)
from fakescope.preprocess.video.plan import h264_nonref_test
from test_video import LEVEL

STRATEGIES = ("auto", "seek", "sequential")


def painted_index(image: np.ndarray) -> int:
    """The grey level a frame of :func:`write_irregular` was painted with (right of the markers)."""
    return int(round(float(image[:, 16:].mean()) / LEVEL))


def fingerprints(frames) -> list[tuple[int, int, str]]:
    return [(f.index, f.pts, hashlib.sha1(f.image.tobytes()).hexdigest()) for f in frames]


def ground_truth(video: Path, indices) -> list[tuple[int, int, str]]:
    """Decode every frame from the start and count (the legacy path with seek=False)."""
    return fingerprints(read_frames(video, indices, decode="legacy", seek=False))


def write_irregular(path: Path, keyframes: set[int], n: int = 60) -> Path:
    """H.264 with B-pyramid (reference and non-reference B-frames) and keyframes only at ``keyframes``."""
    c = av.open(str(path), "w")
    s = c.add_stream(
        "libx264",
        rate=25,
        options={"g": "1000", "bf": "3", "preset": "ultrafast", "x264-params": "scenecut=0:b-pyramid=normal"},
    )
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    for i in range(n):
        img = np.full((48, 64, 3), LEVEL * (i % 30), np.uint8)
        img[:, :8] = 255
        img[: 1 + i // 2, 8:12] = 0  # frames 30 apart differ too
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pict_type = av.video.frame.PictureType.I if i in keyframes else av.video.frame.PictureType.NONE
        for p in s.encode(frame):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def no_fallback(monkeypatch) -> None:
    """Make falling back to full decoding fail the test, so the planned path is what is checked."""

    def fail(*args, **kwargs):
        raise AssertionError("the planned decode fell back to decoding everything")

    monkeypatch.setattr("fakescope.preprocess.video.decode._iter_by_decoding", fail)


KEYS = {0, 3, 4, 17, 31, 32, 50}


@pytest.mark.parametrize(
    "indices",
    [[0], [2, 3, 5, 16, 17, 18], [1, 30, 31, 33, 59], list(range(0, 60, 2)), [59], [49, 50, 51]],
)
def test_irregular_keyframes_every_strategy_matches_full_decoding(tmp_path, indices, monkeypatch):
    video = write_irregular(tmp_path / "irregular.mp4", KEYS)
    probe = probe_video(video)
    step = probe.frame_pts[1] - probe.frame_pts[0]
    assert {(p - probe.frame_pts[0]) // step for p in probe.keyframe_pts} == KEYS  # the test is real
    truth = ground_truth(video, indices)
    assert [i for i, _, _ in truth] == indices
    no_fallback(monkeypatch)
    assert [painted_index(f.image) for f in read_frames(video, indices)] == [i % 30 for i in indices]
    for strategy in STRATEGIES:
        for gap in (1, 300):  # auto: seek at every jump, or never
            for drop in (True, False):
                got = fingerprints(
                    read_frames(video, indices, decode=strategy, seek_min_gap=gap, drop_nonref=drop)
                )
                assert got == truth, (strategy, gap, drop)
    assert fingerprints(read_frames(video, indices, decode="legacy")) == truth


def test_nonref_packets_are_found_and_never_keyframes(tmp_path):
    video = write_irregular(tmp_path / "irregular.mp4", KEYS)
    with av.open(str(video)) as c:
        stream = c.streams.video[0]
        test = h264_nonref_test(stream.codec_context)
        flags = [(p.is_keyframe, test(bytes(p))) for p in c.demux(stream) if p.size]
    assert any(nonref for _, nonref in flags), "no non-reference B-frames: the drop is never exercised"
    assert not any(key and nonref for key, nonref in flags)


def test_mpeg_ts_start_code_stream_matches(tmp_path, monkeypatch):
    """MPEG-TS carries H.264 with start codes (Annex B), not length prefixes."""
    path = tmp_path / "clip.ts"
    c = av.open(str(path), "w", format="mpegts")
    s = c.add_stream("libx264", rate=25, options={"g": "8", "bf": "2", "preset": "ultrafast"})
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    for i in range(30):
        for p in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), LEVEL * i, np.uint8), "rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    probe = probe_video(path)
    if not probe.seekable:
        pytest.skip("this FFmpeg gives the MPEG-TS packets no timestamps")
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        test = h264_nonref_test(stream.codec_context)
        assert any(test(bytes(p)) for p in c.demux(stream) if p.size)
    indices = [1, 9, 10, 22, 29]
    truth = ground_truth(path, indices)
    no_fallback(monkeypatch)
    for strategy in STRATEGIES:
        assert fingerprints(read_frames(path, indices, decode=strategy, seek_min_gap=1)) == truth, strategy


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
def test_real_dfdc_video_every_strategy_matches(shared_data, dense, monkeypatch):
    video = shared_data / "dfdc-videos" / "abofeumbvv.mp4"  # keyframes at 0 and 163, B-frames
    if not video.is_file():
        pytest.skip(f"{video} not found")
    probe = probe_video(video)
    if dense:
        indices = list(range(150, 200, 2))  # across the keyframe at 163
    else:
        indices = list(select_frame_indices(probe.n_frames, FrameSamplingConfig(count=6)).indices)
    truth = fingerprints(read_frames(video, indices, decode="legacy"))  # today's path ("exact, checked")
    assert [i for i, _, _ in truth] == indices
    no_fallback(monkeypatch)
    for strategy in STRATEGIES:
        got = fingerprints(read_frames(video, indices, decode=strategy, seek_min_gap=100))
        assert got == truth, strategy


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_file_truncated_after_probing_is_one_clear_line(tmp_path, strategy):
    video = write_irregular(tmp_path / "whole.mp4", KEYS)
    probe = probe_video(video)
    # moov first, then cut: the index still lists every frame, the data stops half way.
    faststart = tmp_path / "fast.mp4"
    with av.open(str(video)) as src, av.open(str(faststart), "w", options={"movflags": "faststart"}) as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for p in src.demux(src.streams.video[0]):
            if p.size:
                p.stream = out
                dst.mux(p)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(faststart.read_bytes()[: faststart.stat().st_size * 2 // 3])
    with pytest.raises(InputError) as err:
        list(iter_frames(cut, [5, 58], probe=probe, decode=strategy))
    message = str(err.value)
    assert "cut.mp4" in message and "\n" not in message
    assert "truncated" in message or "corrupt" in message


def test_prefetch_hands_over_errors_and_stops_its_thread(tmp_path):
    video = write_irregular(tmp_path / "v.mp4", KEYS)
    before = threading.active_count()
    frames = prefetch(iter_frames(video, [0, 10, 20, 30, 40]), 1)
    assert next(frames).index == 0
    frames.close()  # the consumer stops early: the decoding thread must end and close the file
    assert threading.active_count() == before
    assert [f.index for f in prefetch(iter_frames(video, [1, 2, 59]), 2)] == [1, 2, 59]
    with pytest.raises(InputError, match=r"frame 99 was asked for"):
        list(prefetch(iter_frames(video, [1, 99]), 2))
    assert threading.active_count() == before


def test_decode_fields_do_not_change_the_output_hash():
    """Folders prepared before these fields existed resume: how frames are found is not hashed."""
    from fakescope.preprocess.config import PreprocessConfig
    from fakescope.preprocess.pipeline import output_config_hash

    default = output_config_hash(PreprocessConfig())
    other = PreprocessConfig.model_validate(
        {
            "frames": {
                "decode": "legacy",
                "prefetch": 0,
                "drop_nonref": False,
                "seek_min_gap": 5,
                "seek": False,
            }
        }
    )
    assert output_config_hash(other) == default


def test_prepare_decoding_ahead_across_videos_matches_legacy(tmp_path):
    """prepare starts each video's decoding while the previous one is still being detected; the
    records (and a bad file's error, charged to that file alone) are those of the legacy path."""
    from fakescope.data.manifest import ManifestRow
    from fakescope.preprocess.config import PreprocessConfig
    from fakescope.preprocess.pipeline import run_prepare

    videos = [write_irregular(tmp_path / f"v{i}.mp4", KEYS if i % 2 else {0, 25}) for i in range(3)]
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    rows = [ManifestRow(str(p), i % 2, f"g{i}") for i, p in enumerate([videos[0], bad, *videos[1:]])]
    out = {}
    for mode, frames in {"legacy": {"decode": "legacy", "prefetch": 0}, "new": {"prefetch": 2}}.items():
        cfg = PreprocessConfig.model_validate({"frames": {"count": 5, **frames}})
        summary = run_prepare(rows, tmp_path / mode, cfg, progress=False)
        assert summary.jobs_failed == 1 and "bad.mp4" in summary.errors[0]["error"]
        assert summary.frames_sampled == 15
        out[mode] = sorted(p.read_text() for p in (tmp_path / mode / "records").glob("*.json"))
    assert out["legacy"] == out["new"]
