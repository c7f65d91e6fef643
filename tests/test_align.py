"""Face alignment (fakescope.preprocess.align) and face selection policies."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fakescope.errors import InputError
from fakescope.preprocess.align import ARCFACE_TEMPLATE_112, align_face, template_landmarks
from fakescope.preprocess.config import AlignConfig
from fakescope.preprocess.detectors import FaceDetection, select_faces


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array(
        [[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]]
    )


def test_template_scaling_and_margin():
    assert np.allclose(template_landmarks(112, 0.0), ARCFACE_TEMPLATE_112)
    t = template_landmarks(224, 0.3)
    # The 30% margin shrinks the face into the centre of the 224 crop: eye spacing 35.2 * 224 / 145.6.
    assert t[1, 0] - t[0, 0] == pytest.approx((73.5318 - 38.2946) * 224 / (112 * 1.3))
    assert (t[0, 0] + t[1, 0]) / 2 == pytest.approx(112, abs=0.2)  # eyes centred horizontally


def test_alignment_puts_landmarks_and_pixels_on_the_template():
    """Landmarks of a face rotated by 20 degrees and scaled land exactly on the template, and so do
    the pixels drawn at those landmarks."""
    cfg = AlignConfig(size=224, margin=0.3)
    target = template_landmarks(cfg.size, cfg.margin)
    forward = np.vstack([_similarity(2.7, 20.0, 300.0, 150.0), [0, 0, 1]])
    landmarks = (np.c_[target, np.ones(5)] @ forward.T)[:, :2]
    image = np.zeros((1080, 1920, 3), np.uint8)
    for x, y in landmarks:
        cv2.circle(image, (int(round(x)), int(round(y))), 4, (255, 255, 255), -1)
    face = align_face(image, landmarks, cfg)
    assert face.image.shape == (224, 224, 3)
    assert np.allclose(face.landmarks_aligned, target, atol=1e-3)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(
        (face.image[..., 0] > 127).astype(np.uint8)
    )
    assert n - 1 == 5
    for p in target:
        assert np.min(np.linalg.norm(centroids[1:] - p, axis=1)) < 1.0


def test_box_method_is_an_axis_aligned_square_crop():
    image = np.zeros((200, 300, 3), np.uint8)
    image[50:150, 100:200] = 255  # a 100x100 "face"
    face = align_face(
        image,
        np.zeros((5, 2)) + 100,
        AlignConfig(method="box", size=130, margin=0.3, border="constant"),
        box=(100, 50, 200, 150),
    )
    # 100 px box + 30% margin = 130 px square -> 1:1 scale, 15 px of border each side
    assert face.image[15:115, 15:115].min() == 255 and face.image[:14].max() == 0


def test_degenerate_landmarks_are_a_clear_error():
    with pytest.raises(InputError, match="degenerate"):
        align_face(np.zeros((64, 64, 3), np.uint8), np.full((5, 2), 10.0))


def _det(x: float, y: float, w: float, score: float) -> FaceDetection:
    return FaceDetection((x, y, x + w, y + w), score, np.zeros((5, 2), np.float32))


def test_face_selection_policies():
    subject = [_det(100, 100, 80, 0.95), _det(110, 105, 78, 0.96), _det(120, 110, 40, 0.97)]
    bystander = [_det(500, 100, 60, 0.999), _det(505, 100, 90, 0.999), _det(510, 100, 60, 0.999)]
    frames = [[subject[0], bystander[0]], [bystander[1], subject[1]], [subject[2], bystander[2]], []]
    assert select_faces(frames, "confident")[:3] == bystander
    assert select_faces(frames, "largest")[:3] == [subject[0], bystander[1], bystander[2]]
    # Tracking starts from the biggest face in the video (the bystander in frame 1), then follows it.
    assert select_faces(frames, "track") == [bystander[0], bystander[1], bystander[2], None]
    frames[1] = [subject[1]]
    assert select_faces(frames, "track") == [subject[0], subject[1], subject[2], None]
