"""Figures and the HTML report, without a trained model."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fakescope.api import FaceResult, FrameScore, Prediction
from fakescope.explain.figures import cam_overlay, dct_residual_map, heatmap_figure, save_figure
from fakescope.explain.report import FaceExplanation, write_report


def _half_textured(size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.full((size, size, 3), 128, np.uint8)
    img[:, size // 2 :] = rng.integers(0, 256, (size, size // 2, 1), dtype=np.uint8)
    return img


def test_dct_residual_is_zero_on_flat_blocks_and_strong_on_texture():
    res = dct_residual_map(_half_textured(), cutoff=4)
    assert res.shape == (64, 64)
    assert np.abs(res[:, :32]).max() < 1e-5  # a flat block has only its DC coefficient
    assert np.abs(res[:, 32:]).mean() > 0.05
    # cutoff 8 removes every coefficient of an 8x8 block
    assert np.abs(dct_residual_map(_half_textured(), cutoff=8)).max() < 1e-5


def test_cam_overlay_colours_the_hot_region_only():
    crop = np.full((32, 32, 3), 100, np.uint8)
    cam = np.zeros((8, 8), np.float32)
    cam[:4, :4] = 1.0  # any size: resized to the crop
    out = cam_overlay(crop, cam, alpha=0.5, cmap="jet")
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert out[2, 2, 0] > out[2, 2, 2]  # jet's top is red
    assert out[30, 30, 2] > out[30, 30, 0]  # jet's bottom is blue


def test_heatmap_figure_has_input_plus_one_panel_per_layer(tmp_path):
    fig = heatmap_figure(_half_textured(), np.random.default_rng(0).normal(size=(3, 16, 16)))
    assert [ax.get_title() for ax in fig.axes] == ["input", "Layer 1", "Layer 2", "Layer 3"]
    save_figure(fig, tmp_path / "f.png")
    assert Image.open(tmp_path / "f.png").size[0] > Image.open(tmp_path / "f.png").size[1] * 3


def test_video_report_lists_frames_without_face_and_escapes_names(tmp_path):
    crop = _half_textured()
    faces = [FaceResult(0.9, "fake", [1, 2, 3, 4], None, 0.99, frame=10, time_s=0.4, crop=crop)]
    pred = Prediction(
        source="<b>clip</b>.mp4", kind="video", model="airl", model_source="run", threshold=0.5,
        threshold_source="validation", faces=faces, score=0.7, label="fake",
        frames=[FrameScore(10, 0.4, 0.9, 1), FrameScore(20, 0.8, 0.5, 0)], frames_sampled=2,
        frames_no_face=1, no_face_policy="score_half", explained=[0],
    )  # fmt: skip
    ex = FaceExplanation(crop=crop, cam=np.ones((64, 64), np.float32), dct_residual=dct_residual_map(crop))
    html = write_report(pred.report_data(), [ex], tmp_path).read_text()
    assert "&lt;b&gt;clip&lt;/b&gt;.mp4" in html and "<b>clip</b>" not in html
    assert "1 with no face (policy: score_half)" in html
    for name in ("score_over_time.png", "face00_crop.png", "face00_gradcam.png", "face00_dct.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_the_score_over_time_legend_covers_no_point():
    from fakescope.explain.figures import score_over_time_figure

    times = np.linspace(0, 10, 32)
    scores = [0.95, 0.9, 0.97, 0.99] + [0.5] * 28  # high scores at the start: where the legend used to sit
    fig = score_over_time_figure(times, scores, 0.5, video_score=0.6)
    fig.canvas.draw()
    ax = fig.axes[0]
    box = ax.get_legend().get_window_extent()
    points = ax.transData.transform(np.column_stack([times, scores]))
    assert not any(box.contains(x, y) for x, y in points)
    assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
