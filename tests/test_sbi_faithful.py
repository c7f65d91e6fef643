"""Faithful SBI (Shiohara & Yamasaki, CVPR 2022, §3): 68-point landmarks from dlib's shape predictor
(``train.synthetic_landmarks: dlib68``) make a mask that follows each face's jaw, turned faces included,
and the released code's source alteration (``train.sbi_augment: sbi_code``) changes colour far less
than fakescope's first reading (``strong``), whose casts a detector could learn instead of the blend."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from fakescope.data.images import load_image_rgb
from fakescope.data.manifest import read_manifest
from fakescope.data.synthetic import (
    TIGHT_LANDMARKS,
    face_mask,
    five_points,
    make_sbi,
    sbi_source,
    synthetic_rng,
)
from fakescope.errors import InputError

needs_dlib = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None,
    reason="dlib / face-recognition-models not installed (pip install 'fakescope[sbi]')",
)


def _width_asymmetry(mask: np.ndarray, row: int, centre_x: float) -> float:
    """(left extent - right extent) / width of the mask's row ``row``, measured from ``centre_x``."""
    xs = np.nonzero(mask[row] > 0)[0]
    return float(((centre_x - xs.min()) - (xs.max() - centre_x)) / (xs.max() - xs.min()))


@needs_dlib
@pytest.mark.shared_data
def test_68_point_mask_follows_the_jaw_of_turned_faces(shared_data):
    """Which way a face is turned is read off an independent detector (RetinaFace's 5 points: the nose
    tip's offset from the eyes' midpoint, in eye distances). On every clearly turned face among the
    first 80 real DFDC crops, the 68-point mask is wider on the side the face turns away from, at the
    mouth's height, as the jaw is; the tight layout's fixed mask is the same for every face."""
    from fakescope.preprocess.detectors import RetinaFaceDetector
    from fakescope.preprocess.landmarks import crop_landmarks
    from fakescope.preprocess.landmarks68 import JAW, Landmarks68

    rows = [r for r in read_manifest(shared_data / "dfdc-faces" / "manifest.csv") if r.label == 0][:80]
    finder, retina = Landmarks68(), RetinaFaceDetector(0.9)
    found, turned = 0, []
    for r in rows:
        image = load_image_rgb(r.path)
        side = image.shape[0]
        dense, five = finder(image), crop_landmarks(image, retina)
        if dense is None or five is None:
            continue
        found += 1
        pts, p5 = dense[0], five[0]
        # The same face as the independent detector sees it: the 68 points' eyes, nose and mouth
        # corners lie near RetinaFace's.
        assert np.abs(five_points(pts) - p5).max() < 0.12 * side, r.path
        mask = face_mask(side, pts)
        chin = pts[8]
        assert pts[33, 1] < pts[57, 1] < chin[1], r.path  # nose above mouth above chin
        inside = mask[np.clip(np.rint(pts[list(JAW), 1]).astype(int), 0, side - 1),
                      np.clip(np.rint(pts[list(JAW), 0]).astype(int), 0, side - 1)]  # fmt: skip
        assert inside.all(), f"{r.path}: a jaw point lies outside the mask"
        below = int(np.ceil(pts[list(JAW), 1].max())) + 2
        assert below >= side or not mask[below:].any(), f"{r.path}: the mask reaches below the jaw"
        eyes_mid = (p5[0] + p5[1]) / 2
        yaw = (p5[2, 0] - eyes_mid[0]) / np.linalg.norm(p5[1] - p5[0])
        if abs(yaw) >= 0.2:
            turned.append((r.path, yaw, _width_asymmetry(mask, int(round(pts[51, 1])), pts[30, 0])))
    assert found >= 70, f"68 landmarks found on only {found} of 80 tight crops"
    assert len(turned) >= 4, f"only {len(turned)} clearly turned faces among the first 80"
    for path, yaw, asym in turned:
        assert np.sign(asym) == np.sign(yaw) and abs(asym) > 0.2, (path, yaw, asym)
    layout = face_mask(224, TIGHT_LANDMARKS * 224)
    assert abs(_width_asymmetry(layout, int(0.75 * 224), 0.508 * 224)) < 0.1  # fixed, near symmetric


def _cast(source: np.ndarray, real: np.ndarray) -> float:
    """A colour cast, not a brightness change: how far the mean chroma moved, i.e. the larger shift of
    mean(R - G) and mean(B - G) (0-255 levels; adding a brightness to every channel leaves it at 0)."""

    def chroma(img: np.ndarray) -> np.ndarray:
        m = img.reshape(-1, 3).astype(np.float64).mean(0)
        return np.array([m[0] - m[1], m[2] - m[1]])

    return float(np.abs(chroma(source) - chroma(real)).max())


@pytest.mark.shared_data
def test_sbi_code_source_casts_less_colour_than_the_strong_reading(shared_data):
    rows = [r for r in read_manifest(shared_data / "dfdc-faces" / "manifest.csv") if r.label == 0][:4]
    strong, code = [], []
    for i, r in enumerate(rows):
        real = load_image_rgb(r.path)
        for k in range(50):
            strong.append(_cast(sbi_source(real, synthetic_rng(0, k, i), None, "strong"), real))
            code.append(_cast(sbi_source(real, synthetic_rng(0, k, i), None, "sbi_code"), real))
    strong, code = np.array(strong), np.array(code)
    # Both share the RGB shift (±20 at p 0.3), which makes the largest casts of either; the strong
    # reading adds hue turns of up to 17 degrees and saturation changes of 30 % to every third source.
    assert np.median(code) < 0.7 * np.median(strong), (np.median(code), np.median(strong))
    assert code.mean() < 0.85 * strong.mean(), (code.mean(), strong.mean())
    assert code.max() <= 2 * 20 * 1.1 + 1  # two channels shifted ±20 apart, then contrast ±10 %


def test_sbi_code_fake_equals_the_real_face_outside_the_mask_and_is_reproducible():
    rng = np.random.default_rng(3)
    real = rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    a = make_sbi(real, synthetic_rng(7, 1, 2), None, "sbi_code")
    b = make_sbi(real, synthetic_rng(7, 1, 2), None, "sbi_code")
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    outside = a.mask == 0
    assert outside.any() and np.array_equal(a.image[outside], real[outside])
    assert not np.array_equal(a.image, real)
    with pytest.raises(ValueError, match="unknown SBI augmentation 'faint'"):
        sbi_source(real, rng, None, "faint")


def test_missing_68_point_model_is_one_clear_error(monkeypatch):
    from fakescope.preprocess import landmarks68

    monkeypatch.setattr(landmarks68.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"pip install 'fakescope\[sbi\]'"):
        landmarks68.predictor_path()
