"""Self-blended fakes (SBI / Face X-ray, fakescope.data.synthetic): deterministic given a seed, the
fake differs from its real face only inside the blending mask, the mask is a soft face region in
[0, 1], and the trainer trains a detector from real faces alone with ``train.synthetic_fakes``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fakescope.config import load_config
from fakescope.data.dataset import FaceDataset
from fakescope.data.images import load_image_rgb
from fakescope.data.manifest import ManifestRow, read_manifest, write_manifest
from fakescope.data.synthetic import (
    CANONICAL_LANDMARKS,
    TIGHT_LANDMARKS,
    SyntheticFakes,
    face_mask,
    make_sbi,
    make_xray,
    synthetic_rng,
    xray_boundary,
)

REPO = Path(__file__).resolve().parents[1]


def _faces(n: int = 6) -> list[np.ndarray]:
    """Synthetic 'faces' (a bright ellipse on a gradient, plus each one's own texture), so the test runs
    without shared data."""
    yy, xx = np.mgrid[0:96, 0:96] / 96.0
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        base = np.stack([xx * 200 + 20 * i, yy * 180 + 10, (xx + yy) * 90 + 5 * i], axis=-1)
        face = ((xx - 0.5) / 0.3) ** 2 + ((yy - 0.55) / 0.38) ** 2 < 1
        base[face] += 40
        base += rng.normal(0, 12, size=base.shape)
        out.append(np.clip(base, 0, 255).astype(np.uint8))
    return out


def test_canonical_landmarks_are_the_alignment_template():
    from fakescope.preprocess.align import template_landmarks

    np.testing.assert_allclose(CANONICAL_LANDMARKS, template_landmarks(1, 0.3), atol=1e-5)


@pytest.mark.parametrize("kind", ["sbi", "xray"])
def test_same_seed_same_fake_other_seed_other_fake(kind):
    faces = _faces()

    def make(seed):
        rng = synthetic_rng(seed, 0, 3)
        return make_sbi(faces[0], rng) if kind == "sbi" else make_xray(faces[0], faces[1:], rng)

    a, b, c = make(0), make(0), make(1)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not (np.array_equal(a.image, c.image) and np.array_equal(a.mask, c.mask))


@pytest.mark.parametrize("kind", ["sbi", "xray"])
@pytest.mark.parametrize("seed", range(4))
def test_fake_differs_only_inside_the_mask(kind, seed):
    faces = _faces()
    rng = synthetic_rng(seed, 2, 0)
    res = make_sbi(faces[0], rng) if kind == "sbi" else make_xray(faces[0], faces[1:], rng)
    assert res.image.shape == faces[0].shape and res.image.dtype == np.uint8
    assert res.mask.dtype == np.float32 and res.mask.min() >= 0 and res.mask.max() <= 1
    changed = np.any(res.image != faces[0], axis=-1)
    assert changed.any(), "the fake equals the real face"
    assert not np.any(changed & (res.mask == 0)), "a pixel outside the blending mask changed"
    # The mask is the face region: its weight sits in the middle of the crop, not at its border.
    h = res.mask.shape[0]
    assert res.mask[h // 4 : 3 * h // 4, h // 4 : 3 * h // 4].mean() > 4 * res.mask[:, :4].mean()
    b = xray_boundary(res.mask)
    assert b.min() >= 0 and b.max() <= 1


def test_mask_follows_the_landmarks():
    aligned, tight = face_mask(128, CANONICAL_LANDMARKS * 128), face_mask(128, TIGHT_LANDMARKS * 128)
    assert set(np.unique(aligned)) <= {0.0, 1.0}
    # Tight crops: the face fills more of the crop than in prepare's aligned crops (30 % margin).
    assert tight.mean() > aligned.mean() > 0.15


def test_dataset_yields_each_real_face_and_its_fake(tmp_path):
    faces = _faces(4)
    rows = []
    for i, f in enumerate(faces):
        p = tmp_path / f"r{i}.png"
        import cv2

        cv2.imwrite(str(p), f[..., ::-1])
        rows.append(ManifestRow(path=str(p), label=0, group=f"g{i}"))
    syn = SyntheticFakes("sbi", [r.path for r in rows], [r.group for r in rows], seed=5)
    ds = FaceDataset(rows, 64, synthetic=syn)
    assert len(ds) == 8
    assert [ds[i]["label"] for i in range(8)] == [0] * 4 + [1] * 4
    assert ds.rows[5].path == rows[1].path + "#sbi" and ds.rows[5].video_id != rows[1].video_id
    e0 = ds.load_crop(5)
    ds.set_epoch(1)
    assert not np.array_equal(ds.load_crop(5), e0), "per-epoch blends should change with the epoch"
    ds.set_epoch(0)
    assert np.array_equal(ds.load_crop(5), e0)
    fixed = FaceDataset(rows, 64, synthetic=syn, synthetic_per_epoch=False)
    fixed.set_epoch(3)
    assert np.array_equal(fixed.load_crop(5), e0)
    with pytest.raises(ValueError, match="real rows only"):
        FaceDataset([*rows[:3], ManifestRow(path=rows[3].path, label=1, group="g3")], 64, synthetic=syn)


@pytest.mark.shared_data
@pytest.mark.parametrize("kind", ["sbi", "xray"])
def test_blends_real_dfdc_faces(shared_data, kind):
    rows = [r for r in read_manifest(shared_data / "dfdc-faces" / "manifest.csv") if r.label == 0][:5]
    crops = [load_image_rgb(r.path) for r in rows]
    syn = SyntheticFakes(kind, [r.path for r in rows], [r.group for r in rows], seed=0)
    for i, crop in enumerate(crops):
        res = syn.make(i, crop, 0, lambda j: crops[j])
        changed = np.any(res.image != crop, axis=-1)
        assert changed.mean() > 0.05
        assert not np.any(changed & (res.mask == 0))
        if kind == "xray":
            assert res.donor is not None and rows[res.donor].group != rows[i].group


def test_trains_from_real_faces_alone(face_set, tmp_path):
    """airl_freq with SBI fakes on 24 real faces (train 16, val 8; DFDC, or the stand-in set without
    ../shared), one short epoch: the run sees no real fake, and its validation scores both real faces
    and their blends."""
    from fakescope.train.trainer import train

    reals = [r for r in read_manifest(face_set.manifest) if r.label == 0][:24]
    fake = next(r for r in read_manifest(face_set.manifest) if r.label == 1)
    rows = [ManifestRow(path=r.path, label=0, group=r.group, split="train" if i < 16 else "val")
            for i, r in enumerate(reals)]  # fmt: skip
    rows.append(ManifestRow(path=fake.path, label=1, group=fake.group + "-x", split="train"))
    manifest = write_manifest(rows, tmp_path / "m.csv", relative_to=tmp_path / "nowhere")
    cfg = load_config(
        REPO / "configs" / "cpu" / "airl_freq.yaml",
        [f"data.manifest={manifest}", "data.image_size=64", "train.epochs=1", "train.batch_size=8",
         "train.max_steps_per_epoch=3", "train.progress=false", "eval.bootstrap=0",
         "train.synthetic_fakes=sbi"],
    )  # fmt: skip
    res = train(cfg, tmp_path / "run")
    assert res.steps == 3 and 0.0 <= res.best_val_auc <= 1.0
    with open(tmp_path / "run" / "seen_rows.csv", newline="") as fh:
        seen = list(csv.DictReader(fh))
    assert fake.path not in {r["path"] for r in seen}, "the split's real fake was trained on"
