"""Landmarks re-detected on tight face crops for the SBI / X-ray blend masks (fakescope.preprocess.
landmarks, ``train.synthetic_landmarks``): the face nearest the centre, in the crop's own pixels, on
real DFDC crops; saved in the run and read back; a missing file is one clear error."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fakescope.config import load_config
from fakescope.data.images import load_image_rgb
from fakescope.data.manifest import ManifestRow, read_manifest, write_manifest
from fakescope.data.synthetic import TIGHT_LANDMARKS, face_mask, read_aligned_landmarks
from fakescope.errors import InputError
from fakescope.preprocess.detectors import FaceDetection
from fakescope.preprocess.landmarks import crop_landmarks, detect_crop_landmarks, write_landmarks_csv

REPO = Path(__file__).resolve().parents[1]


class _Fixed:
    """A detector that reports fixed faces in the padded image it is given."""

    name = "fixed"

    def __init__(self, faces):
        self.faces = faces
        self.seen_shape = None

    def detect(self, image):
        self.seen_shape = image.shape
        return list(self.faces)


def _face(cx, cy, score=0.99):
    marks = np.array([[cx - 10, cy - 10], [cx + 10, cy - 10], [cx, cy], [cx - 8, cy + 12], [cx + 8, cy + 12]])
    return FaceDetection((cx - 20, cy - 20, cx + 20, cy + 20), score, marks.astype(np.float32))


def test_keeps_the_face_nearest_the_centre_in_crop_pixels():
    img = np.zeros((100, 100, 3), np.uint8)
    det = _Fixed([_face(30, 30, 0.999), _face(75, 75, 0.95)])  # padded by 25: the crop centre is (75, 75)
    pts, score = crop_landmarks(img, det, pad=0.25)
    assert det.seen_shape == (150, 150, 3)
    assert score == pytest.approx(0.95)
    assert np.allclose(pts[2], [50, 50])  # the nose, back in the unpadded crop's pixels
    assert crop_landmarks(img, _Fixed([]), pad=0.25) is None


def test_unreadable_crop_is_left_out_and_the_batch_goes_on(tmp_path, caplog):
    def load(path):
        if "bad" in path:
            raise OSError("truncated file")
        return np.zeros((64, 64, 3), np.uint8)

    found = detect_crop_landmarks(["a.png", "bad.png", "c.png"], _Fixed([_face(48, 48)]), load, pad=0.25)
    assert sorted(found) == ["a.png", "c.png"]
    assert "bad.png: cannot read it (truncated file)" in caplog.text
    out = tmp_path / "marks.csv"
    write_landmarks_csv(out, found)
    back = read_aligned_landmarks(out)
    assert np.allclose(back[str(Path("a.png").resolve())], found["a.png"][0])


@pytest.mark.shared_data
def test_detects_landmarks_on_tight_dfdc_crops(shared_data):
    from fakescope.preprocess.detectors import RetinaFaceDetector

    rows = [r for r in read_manifest(shared_data / "dfdc-faces" / "manifest.csv") if r.label == 0][:12]
    found = detect_crop_landmarks([r.path for r in rows], RetinaFaceDetector(0.9), load_image_rgb)
    assert len(found) >= 11, f"a face was found on only {len(found)} of 12 tight crops"
    for path, (pts, score) in found.items():
        side = load_image_rgb(path).shape[0]
        le, re, nose, lm, rm = pts / side
        assert score >= 0.9 and le[0] < re[0] and lm[0] < rm[0], path
        assert max(le[1], re[1]) < nose[1] < min(lm[1], rm[1]), path  # eyes above the nose above the mouth
        assert np.all(pts / side > -0.1) and np.all(pts / side < 1.1), path
    # The faces are not all the median face: the detected points move the mask with each face.
    dev = [np.abs(pts / load_image_rgb(p).shape[0] - TIGHT_LANDMARKS).max() for p, (pts, _) in found.items()]
    assert max(dev) > 0.03
    p0, (pts0, _) = next(iter(found.items()))
    side = load_image_rgb(p0).shape[0]
    assert not np.array_equal(face_mask(side, pts0), face_mask(side, TIGHT_LANDMARKS * side))


def _sbi_config(face_set, tmp_path, extra):
    reals = [r for r in read_manifest(face_set.manifest) if r.label == 0][:12]
    rows = [ManifestRow(path=r.path, label=0, group=r.group, split="train" if i < 8 else "val")
            for i, r in enumerate(reals)]  # fmt: skip
    manifest = write_manifest(rows, tmp_path / "m.csv", relative_to=tmp_path / "nowhere")
    return reals, load_config(
        REPO / "configs" / "cpu" / "airl_freq.yaml",
        [f"data.manifest={manifest}", "data.image_size=32", "train.epochs=1", "train.batch_size=8",
         "train.max_steps_per_epoch=1", "train.progress=false", "eval.bootstrap=0",
         "train.synthetic_fakes=sbi", "data.crop_cache=false", "data.num_workers=0", *extra],
    )  # fmt: skip


def test_training_detects_and_saves_the_landmarks_once(face_set, tmp_path, monkeypatch):
    from fakescope.preprocess import landmarks as lm_mod
    from fakescope.train.trainer import train

    reals, cfg = _sbi_config(face_set, tmp_path, [])  # train.synthetic_landmarks: auto, no landmarks.csv
    train(cfg, tmp_path / "run")
    with open(tmp_path / "run" / "synthetic_landmarks.csv", newline="") as fh:
        saved = list(csv.DictReader(fh))
    # Train and val real crops with a face: most of them (the rate on real crops is the test above's).
    assert len(saved) >= 0.8 * len(reals)
    assert {r["path"] for r in saved} <= {str(Path(r.path).resolve()) for r in reals}

    def no_detection(*a, **k):
        raise AssertionError("landmarks were detected again on resume")

    monkeypatch.setattr(lm_mod, "detect_crop_landmarks", no_detection)
    _, cfg2 = _sbi_config(face_set, tmp_path, ["train.epochs=2"])
    train(cfg2, tmp_path / "run", resume=True)


def test_layout_and_a_missing_file(face_set, tmp_path):
    from fakescope.train.trainer import train

    _, cfg = _sbi_config(face_set, tmp_path, ["train.synthetic_landmarks=layout"])
    train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "synthetic_landmarks.csv").exists()
    _, cfg = _sbi_config(face_set, tmp_path, [f"train.synthetic_landmarks={tmp_path / 'none.csv'}"])
    with pytest.raises(InputError, match=r"train.synthetic_landmarks: .*none.csv: file not found"):
        train(cfg, tmp_path / "run2")


@pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None,
    reason="dlib / face-recognition-models not installed (pip install 'fakescope[sbi]')",
)
def test_training_with_dlib68_saves_68_points_once_and_a_file_of_them_is_reused(
    face_set, tmp_path, monkeypatch
):
    from fakescope.preprocess import landmarks68
    from fakescope.train.trainer import train

    reals, cfg = _sbi_config(
        face_set, tmp_path, ["train.synthetic_landmarks=dlib68", "train.sbi_augment=sbi_code"]
    )
    train(cfg, tmp_path / "run")
    saved = landmarks68.read_landmarks68_csv(tmp_path / "run" / "synthetic_landmarks68.csv")
    assert len(saved) >= 0.6 * len(reals)  # the rate on real crops is test_sbi_faithful's (>= 70 of 80)
    assert set(saved) <= {str(Path(r.path).resolve()) for r in reals}
    assert all(pts.shape == (68, 2) for pts in saved.values())
    assert not (tmp_path / "run" / "synthetic_landmarks.csv").exists()

    def no_detection(*a, **k):
        raise AssertionError("landmarks were detected again")

    # A resumed run (the same folder) and another run given the saved file read the 68 points back
    # (what train calls to plan its fakes, without training twice).
    from fakescope.rows.landmarks import synthetic_landmarks

    monkeypatch.setattr(landmarks68, "detect_crop_landmarks68", no_detection)
    resumed = synthetic_landmarks(cfg, tmp_path / "run", reals, progress=False)
    assert resumed.dense and resumed.detected is None
    assert {str(Path(p).resolve()) for p in resumed.by_path} == set(saved)
    file = tmp_path / "run" / "synthetic_landmarks68.csv"
    _, cfg3 = _sbi_config(face_set, tmp_path, [f"train.synthetic_landmarks={file}"])
    marks = synthetic_landmarks(cfg3, tmp_path / "run3", reals, progress=False)
    assert marks.dense and len(marks.by_path) == len(saved)
    assert all(np.allclose(marks.by_path[p], resumed.by_path[p]) for p in marks.by_path)
