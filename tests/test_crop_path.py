"""A face crop given to ``detect`` without ``--aligned`` is scored as the crop it is.

Re-aligning a tight crop (a shared DFDC face: the face box covers 57-100 % of the image) takes a
quarter to three quarters of the new crop from outside the image, so a user who forgets ``--aligned``
used to get a score for a mirror-filled, zoomed-out picture. When the detected face fills most of the
image, ``detect`` now scores the image as it is, says so per face (JSON ``path``) and in the note
(JSON ``note``, stderr, the report's banner); video frames, where a face covers a few percent of the
image, are still detected and aligned.

The detector is a small untrained AIRL network: the tests are about which picture gets scored (its
score is a fingerprint of the picture), not about the verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fakescope
from fakescope.cli import main

N_CROPS = 36  # DFDC crops, half real and half fake, spread over the set by name
VIDEO_FRAMES = [0, 150]


def _write_run(run: Path) -> Path:
    import torch

    from fakescope.config import config_from_dict
    from fakescope.inference.checkpoint import save_checkpoint
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector

    cfg = config_from_dict(
        {
            "name": "crop_path",
            "device": "cpu",
            "data": {"image_size": 64},
            "model": {"name": "airl", "backbone": "efficientnet_tiny", "pretrained": False},
            "eval": {"frames_per_video": 2, "bootstrap": 0},
        }
    )
    torch.manual_seed(0)
    model = build_detector(cfg.model, input_spec_for(cfg))
    save_checkpoint(
        run / "checkpoints", "best", model=model, cfg=cfg, detector_name="airl", epoch=0, step=1,
        val_threshold={"frame": 0.5, "video": 0.5},
    )  # fmt: skip
    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return _write_run(tmp_path_factory.mktemp("crop_path") / "run")


def _spread(paths: list[Path], n: int) -> list[Path]:
    return [paths[i] for i in np.linspace(0, len(paths) - 1, n).round().astype(int)]


@pytest.mark.shared_data
def test_dfdc_crops_get_the_aligned_score_without_aligned(shared_data, run):
    """On DFDC crops, detect without --aligned gives the --aligned score on at least 95 % of them, and
    says it took the aligned-crop path; re-aligning those crops would have scored another picture."""
    det = fakescope.load(run)
    folder = shared_data / "dfdc-faces"
    crops = _spread(sorted((folder / "real").glob("*.jpg")), N_CROPS // 2)
    crops += _spread(sorted((folder / "fake").glob("*.jpg")), N_CROPS // 2)
    same, moved = 0, 0
    for path in crops:
        auto, forced = det.predict(path), det.predict(path, aligned=True)
        face = auto.faces[0]
        assert len(auto.faces) == 1 and face.box is not None, path  # still says where the face is
        if face.path == "aligned-crop" and abs(auto.score - forced.score) < 1e-6:
            same += 1
            assert auto.error and "scored as an aligned face crop" in auto.error, path
            assert face.to_dict()["path"] == "aligned-crop" and face.outside_frame is None
            # the path it no longer takes: the re-aligned (mirror-filled) crop scores differently
            from fakescope.data.images import load_image_rgb

            realigned = det.find_faces(load_image_rgb(path))[0]
            assert realigned.outside_frame is not None and realigned.outside_frame > 0.2, path
            moved += abs(float(det.score_crops([realigned.crop])[0][0]) - auto.score) > 1e-4
    assert same >= 0.95 * len(crops), f"{same}/{len(crops)} crops scored as --aligned"
    assert moved >= 0.5 * same, f"re-aligning changed the score of only {moved}/{same} crops"


@pytest.mark.shared_data
def test_video_frames_are_still_detected_and_aligned(shared_data, run):
    """Full DFDC frames (a face covers a few percent of them) go the detect-and-align path: the score is
    that of the aligned crop of the detected face, and a whole video says ``detected`` too."""
    from fakescope.preprocess.video import read_frames

    det = fakescope.load(run)
    videos = sorted((shared_data / "dfdc-videos").glob("*.mp4"))[:3]
    for video in videos:
        for frame in read_frames(video, VIDEO_FRAMES):
            pred = det.predict(frame.image)
            face = pred.faces[0]
            assert face.path is None and face.to_dict()["path"] == "detected", video
            x1, y1, x2, y2 = face.box
            h, w = frame.image.shape[:2]
            assert (x2 - x1) * (y2 - y1) < 0.1 * h * w and not pred.error, video
            aligned = det.find_faces(frame.image)[0]
            assert aligned.crop.shape == (224, 224, 3) and aligned.outside_frame < 0.05
            assert float(det.score_crops([aligned.crop])[0][0]) == pytest.approx(face.score, abs=1e-6)
    det.options.frames_per_video = 2
    pred = det.predict(videos[0])
    assert pred.kind == "video" and all(f.to_dict()["path"] == "detected" for f in pred.faces)


@pytest.mark.shared_data
def test_json_and_report_say_which_path(shared_data, run, tmp_path, capsys):
    """What the user sees: ``path`` per face in the JSON, the note on stderr and in the report; a frame
    says ``detected`` with no note; ``--aligned`` forces the aligned-crop path (no box, no note)."""
    from PIL import Image

    from fakescope.preprocess.video import read_frames

    crop = sorted((shared_data / "dfdc-faces" / "real").glob("*.jpg"))[0]
    frame_png = tmp_path / "frame.png"
    Image.fromarray(read_frames(shared_data / "dfdc-videos" / "lynaeydofd.mp4", [112])[0].image).save(
        frame_png
    )
    report = tmp_path / "report"
    rc = main(["detect", str(crop), str(frame_png), "--model", str(run), "--json", "--report", str(report)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    by_source = {Path(r["source"]).name: r for r in json.loads(out)["results"]}
    on_crop, on_frame = by_source[crop.name], by_source["frame.png"]
    assert on_crop["faces"][0]["path"] == "aligned-crop" and on_crop["faces"][0]["box"] is not None
    assert "scored as an aligned face crop" in on_crop["note"] and "outside_frame" not in on_crop["faces"][0]
    assert f"note: {crop}: the face fills most of the image" in err
    assert on_frame["faces"][0]["path"] == "detected" and "note" not in on_frame
    page = next(report.glob("000_*")) / "index.html"
    assert "scored as an aligned face crop, as with --aligned" in page.read_text(encoding="utf-8")
    frame_page = (next(report.glob("001_*")) / "index.html").read_text(encoding="utf-8")
    assert "scored as an aligned face crop" not in frame_page

    rc = main(["detect", str(crop), "--model", str(run), "--json", "--aligned"])
    out, err = capsys.readouterr()
    forced = json.loads(out)["results"][0]
    assert rc == 0 and forced["faces"][0]["path"] == "aligned-crop" and forced["faces"][0]["box"] is None
    assert "note" not in forced and forced["score"] == on_crop["score"]


def test_a_crop_and_the_same_face_in_a_larger_picture(standin_set, run):
    """Without ../shared: a stand-in face crop takes the aligned-crop path (the --aligned score); the same
    face pasted into a picture four times its width is small there, so it is detected and aligned."""
    from fakescope.data.images import load_image_rgb

    det = fakescope.load(run)
    checked = 0
    for path in standin_set.real[:4] + standin_set.fake[:4]:
        crop = load_image_rgb(path)
        if not det.find_faces(crop):
            continue  # the detector misses the odd synthetic face
        auto = det.predict(path)
        assert auto.faces[0].path == "aligned-crop", path
        assert auto.score == pytest.approx(det.predict(path, aligned=True).score, abs=1e-6)
        h, w = crop.shape[:2]
        scene = np.full((3 * h, 4 * w, 3), 128, np.uint8)
        scene[h : 2 * h, w : 2 * w] = crop
        placed = det.predict(scene)
        assert placed.faces[0].to_dict()["path"] == "detected" and not placed.error, path
        x1, y1, x2, y2 = placed.faces[0].box
        assert w - 10 < (x1 + x2) / 2 < 2 * w + 10 and h - 10 < (y1 + y2) / 2 < 2 * h + 10
        checked += 1
    assert checked >= 4, f"the detector found only {checked} of 8 stand-in faces"
