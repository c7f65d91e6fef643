"""Issue 15, "Faster training on a CPU": the uint8 crop cache (``data.crop_cache``), DataLoader workers
and ``train.channels_last`` change how fast a step runs, not what it computes.

- The cache returns exactly the crops the decode path returns, on real DFDC crops.
- Its build is atomic and resumable: a crash mid-build leaves no ``.npy``, and the rerun decodes only
  what was not flushed yet; a change of ``image_size`` or of a file gives another cache.
- A short training run with all new options on (cache, one persistent worker, channels_last) logs the
  same losses as the old path within float rounding (see ``test_new_options_train_like_the_old_path``).

No timings here: speed targets live in ``benchmarks/train_speed.py --variants old new``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from fakescope.config import load_config
from fakescope.data.config import AugmentConfig
from fakescope.data.crop_cache import build_crop_cache, crop_cache_key
from fakescope.data.dataset import FaceDataset, collate_batch
from fakescope.data.manifest import ManifestRow, read_manifest, write_manifest
from fakescope.train.trainer import train

OPTS = {"max_pixels": 64_000_000, "background": "black"}


def _rows(paths: list[str]) -> list[ManifestRow]:
    return [ManifestRow(path=p, label=i % 2, group=f"g{i // 2}") for i, p in enumerate(paths)]


def _write_images(folder: Path, n: int, size: int = 40) -> list[str]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"im{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size + i % 3, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_cache_returns_exactly_the_decoded_crops_on_dfdc(face_set, tmp_path):
    rows = read_manifest(face_set.manifest)[:48]  # DFDC, or the stand-in set without ../shared
    for size in (128, 256):  # down (INTER_AREA) and up (INTER_CUBIC) from the stored 224 px
        ds = FaceDataset(rows, size)
        cache = build_crop_cache([r.path for r in rows], size, tmp_path, ds.load_crop, OPTS)
        assert len(cache) == len(rows)
        cached = FaceDataset(rows, size, crops=cache)
        for i in range(len(rows)):
            a, b = ds.load_crop(i), cached.load_crop(i)
            assert a.dtype == b.dtype == np.uint8 and np.array_equal(a, b), rows[i].path
        # Training items (augmented, seeded per index) are the same tensors too.
        aug_ds = FaceDataset(rows, size, augment=AugmentConfig())
        aug_cached = FaceDataset(rows, size, augment=aug_ds.augment, crops=cache)
        for i in (0, 7, 31):
            assert torch.equal(aug_ds[i]["image"], aug_cached[i]["image"])


def test_crash_mid_build_is_atomic_and_resumes(tmp_path):
    paths = _write_images(tmp_path / "img", 40)
    ds = FaceDataset(_rows(paths), 32)
    calls: list[int] = []

    def crashing(i: int) -> np.ndarray:
        if i == 21:
            raise RuntimeError("killed")
        calls.append(i)
        return ds.load_crop(i)

    with pytest.raises(RuntimeError, match="killed"):
        build_crop_cache(paths, 32, tmp_path / "cache", crashing, OPTS, flush_every=8)
    key = crop_cache_key(paths, 32, OPTS)
    assert not (tmp_path / "cache" / f"{key}.npy").exists()  # never a half-written final file
    assert (tmp_path / "cache" / f"{key}.progress").read_text().strip() == "16"

    calls.clear()

    def counting(i: int) -> np.ndarray:
        calls.append(i)
        return ds.load_crop(i)

    cache = build_crop_cache(paths, 32, tmp_path / "cache", counting, OPTS, flush_every=8)
    assert calls == list(range(16, 40))  # resumed after the last flushed crop
    assert (tmp_path / "cache" / f"{key}.npy").is_file()
    assert not (tmp_path / "cache" / f"{key}.npy.partial").exists()
    for i in range(40):
        assert np.array_equal(cache[i], ds.load_crop(i))
    calls.clear()  # a finished cache is reused as is
    build_crop_cache(paths, 32, tmp_path / "cache", counting, OPTS)
    assert calls == []


def test_cache_invalidates_on_image_size_and_file_changes(tmp_path):
    paths = _write_images(tmp_path / "img", 6)
    key = crop_cache_key(paths, 32, OPTS)
    assert crop_cache_key(paths, 32, OPTS) == key
    assert crop_cache_key(paths, 48, OPTS) != key
    assert crop_cache_key(paths, 32, {**OPTS, "background": "white"}) != key
    assert crop_cache_key(paths[:-1], 32, OPTS) != key
    assert crop_cache_key(list(reversed(paths)), 32, OPTS) != key
    ds = FaceDataset(_rows(paths), 32)
    old = build_crop_cache(paths, 32, tmp_path / "cache", ds.load_crop, OPTS)
    old_crop = old[2]
    Image.fromarray(np.full((40, 40, 3), 7, np.uint8)).save(paths[2])  # new bytes
    st = os.stat(paths[2])
    os.utime(paths[2], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # coarse-mtime filesystems
    assert crop_cache_key(paths, 32, OPTS) != key
    new = build_crop_cache(paths, 32, tmp_path / "cache", FaceDataset(_rows(paths), 32).load_crop, OPTS)
    assert new.file != old.file
    assert np.all(new[2] == 7) and not np.array_equal(new[2], old_crop)


def test_cache_refused_with_perturbations(tmp_path):
    paths = _write_images(tmp_path / "img", 4)
    ds = FaceDataset(_rows(paths), 32, perturbation="jpeg_q50")
    with pytest.raises(ValueError, match="perturbations"):
        ds.use_crops([np.zeros((32, 32, 3), np.uint8)] * 4)


def test_workers_read_the_cache_like_the_main_process(tmp_path):
    """Cache read in a worker, and the worker follows set_epoch: a persistent worker keeps the dataset
    it was started with, so the epoch (which seeds augmentation) is shared with it, not copied."""
    paths = _write_images(tmp_path / "img", 12)
    plain = FaceDataset(_rows(paths), 32, seed=5, augment=AugmentConfig())
    cache = build_crop_cache(paths, 32, tmp_path / "cache", plain.load_crop, OPTS)
    ds = FaceDataset(_rows(paths), 32, seed=5, augment=AugmentConfig(), crops=cache)
    loader = DataLoader(ds, batch_size=4, num_workers=1, persistent_workers=True, prefetch_factor=2,
                        collate_fn=collate_batch)  # fmt: skip
    for epoch in range(2):  # two epochs through the same persistent worker
        plain.set_epoch(epoch)
        ds.set_epoch(epoch)
        ref = [collate_batch([plain[i] for i in range(j, j + 4)])["image"] for j in (0, 4, 8)]
        got = [b["image"] for b in loader]
        assert all(torch.equal(a, b) for a, b in zip(ref, got, strict=True)), f"epoch {epoch}"


TINY = ["model.name=airl", "model.backbone=efficientnet_tiny", "model.pretrained=false", "data.image_size=32",
        "train.progress=false", "eval.bootstrap=0", "seed=3", "train.epochs=1", "train.batch_size=6",
        "train.max_steps_per_epoch=4"]  # fmt: skip


def _losses(run: Path) -> np.ndarray:
    with open(run / "steps.csv", newline="") as fh:
        return np.array([float(r["loss"]) for r in csv.DictReader(fh)])


@pytest.mark.slow
def test_new_options_train_like_the_old_path(face_set, tmp_path):
    """Same data order, augmentation draws, dropout masks and initial weights; the only difference is
    NHWC vs NCHW convolution/BatchNorm kernels, i.e. the order of float32 sums. On DFDC crops with
    the real Lite0 that moved the first loss by 5e-6 (relative 2e-6); after 4 Adam steps each step's
    differences compound, so the check is 1e-3 relative, far below the step-to-step change of the loss
    (~1e-1), which a wrong crop, a wrong augmentation or a wrong worker order would show."""
    rows = read_manifest(face_set.manifest)
    keep = set(list(dict.fromkeys(r.group for r in rows))[:20])
    manifest = write_manifest(
        [r for r in rows if r.group in keep], tmp_path / "manifest.csv", relative_to=tmp_path / "x"
    )
    base = [*TINY, f"data.manifest={manifest}"]
    train(load_config(None, base), tmp_path / "old")
    new = [*base, "data.crop_cache=true", "data.num_workers=1", "data.persistent_workers=true",
           "train.channels_last=true", f"data.crop_cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    result = train(load_config(None, new), tmp_path / "new")
    old_l, new_l = _losses(tmp_path / "old"), _losses(tmp_path / "new")
    assert len(old_l) == len(new_l) == 4
    np.testing.assert_allclose(new_l, old_l, rtol=1e-3)
    assert np.isfinite(result.best_val_auc)
    assert list((tmp_path / "cache").glob("*.npy"))  # the run read its crops from the cache
