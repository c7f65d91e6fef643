"""Trainer: per-group learning rates and a schedule that moves every step, exact mid-epoch resume,
validation-only model selection, early stopping, and checkpoint loading errors.

All on a few dozen face crops at 32 px (``face_set``: DFDC when ../shared/data is there, else the
stand-in set) with the registered AIRL detector and a tiny random
backbone (or the real pretrained Lite0 where the 0.1x backbone rate must apply)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fakescope.config import load_config
from fakescope.data.manifest import read_manifest, split_by_group, write_manifest
from fakescope.errors import ConfigError, ModelLoadError
from fakescope.inference.checkpoint import load_detector
from fakescope.train.trainer import TrainingInterrupted, train

TINY = ["model.name=airl", "model.backbone=efficientnet_tiny", "model.pretrained=false", "data.image_size=32",
        "train.progress=false", "eval.bootstrap=0", "seed=3"]  # fmt: skip


def small_manifest(face_set, folder: Path, groups: int = 40) -> Path:
    """The first ``groups`` groups of the face set (one real + one fake face each), absolute paths."""
    rows = read_manifest(face_set.manifest)
    keep = list(dict.fromkeys(r.group for r in rows))[:groups]
    sub = [r for r in rows if r.group in set(keep)]
    return write_manifest(sub, folder / "manifest.csv", relative_to=folder / "nowhere")


@pytest.fixture(scope="module")
def manifest(face_set, tmp_path_factory) -> Path:
    return small_manifest(face_set, tmp_path_factory.mktemp("data"))


def _cfg(manifest: Path, *extra: str):
    return load_config(None, [*TINY, f"data.manifest={manifest}", *extra])


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_lr_groups_and_cosine_schedule_change_every_step(tmp_path, manifest):
    # Lite0 has real pretrained weights in a pip package, so its group gets the paper's 0.1x rate.
    cfg = _cfg(manifest, "model.backbone=lite0", "model.pretrained=true", "train.epochs=2", "train.batch_size=4",
               "train.max_steps_per_epoch=4", "train.restart_period=1", "train.lr=1e-3", "train.min_lr=1e-5",
               "train.augment=null")  # fmt: skip
    train(cfg, tmp_path / "run")
    steps = _csv(tmp_path / "run" / "steps.csv")
    iters = 4
    assert len(steps) == 2 * iters
    lr_bb = np.array([float(s["lr_backbone"]) for s in steps])
    lr_head = np.array([float(s["lr_head"]) for s in steps])
    # Closed-form SGDR with T_0 = 1 epoch: step i of an epoch uses the rate at fraction i / iters.
    t = np.array([i % iters for i in range(len(steps))]) / iters
    expect = lambda base: 1e-5 + (base - 1e-5) * (1 + np.cos(np.pi * t)) / 2  # noqa: E731
    assert np.allclose(lr_head, expect(1e-3), rtol=1e-6)
    assert np.allclose(lr_bb, expect(1e-4), rtol=1e-6)  # the pretrained backbone at 0.1x
    # Within an epoch the LR falls at every single step; at the restart it jumps back up.
    assert np.all(np.diff(lr_head[:iters]) < 0) and np.all(np.diff(lr_head[iters:]) < 0)
    assert lr_head[iters] == pytest.approx(1e-3)
    assert lr_head[iters] > lr_head[iters - 1]


@pytest.mark.slow
def test_kill_and_resume_reaches_the_same_weights(tmp_path, manifest):
    cfg = _cfg(
        manifest,
        "train.epochs=2",
        "train.batch_size=6",
        "train.max_steps_per_epoch=5",
        "train.checkpoint_every_steps=2",
    )
    full = train(cfg, tmp_path / "full")
    total = full.steps
    with pytest.raises(TrainingInterrupted):
        train(
            cfg, tmp_path / "cut", stop_after_steps=total // 2 + 1
        )  # mid-epoch 2, one step past a checkpoint
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, tmp_path / "cut")  # refuses to overwrite silently
    resumed = train(cfg, tmp_path / "cut", resume=True)
    assert resumed.steps == total
    for name in ("last", "best"):
        a = load_file(tmp_path / "full" / "checkpoints" / f"{name}.safetensors")
        b = load_file(tmp_path / "cut" / "checkpoints" / f"{name}.safetensors")
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    # The resumed log is the uninterrupted log: no duplicated or missing steps.
    assert _csv(tmp_path / "full" / "steps.csv") == _csv(tmp_path / "cut" / "steps.csv")
    assert [r["val_auc"] for r in _csv(tmp_path / "full" / "log.csv")] == [
        r["val_auc"] for r in _csv(tmp_path / "cut" / "log.csv")
    ]


def test_max_minutes_cuts_a_run_between_epochs_labels_it_and_resume_finishes_it(tmp_path, manifest):
    cfg = _cfg(manifest, "train.epochs=3", "train.batch_size=6", "train.max_steps_per_epoch=2",
               "train.max_minutes=1e-6")  # fmt: skip
    cut = train(cfg, tmp_path / "run")
    # The first epoch always runs (no estimate before it); the second would pass the budget.
    assert (cut.epochs_run, cut.time_cut, cut.stopped_early) == (1, True, False)
    assert len(_csv(tmp_path / "run" / "log.csv")) == 1
    done = train(_cfg(manifest, "train.epochs=3", "train.batch_size=6", "train.max_steps_per_epoch=2"),
                 tmp_path / "run", resume=True)  # fmt: skip
    assert (done.epochs_run, done.time_cut) == (3, False)
    assert [int(r["epoch"]) for r in _csv(tmp_path / "run" / "log.csv")] == [1, 2, 3]


@pytest.mark.slow
def test_best_checkpoint_is_chosen_on_validation_only(tmp_path, manifest):
    cfg = _cfg(manifest, "train.epochs=4", "train.batch_size=8", "train.early_stopping_patience=2",
               "train.lr=3e-3")  # fmt: skip
    # Make every test-split image unreadable: training must never open one.
    rows = read_manifest(manifest)
    test_groups = {r.group for r in split_by_group(rows, cfg.data.split)["test"]}
    data = tmp_path / "data"
    data.mkdir()
    moved = []
    for r in rows:
        if r.group in test_groups:
            bad = data / Path(r.path).name
            bad.write_bytes(b"not a jpeg")
            r.path = str(bad)
            moved.append(r)
    assert moved
    m = write_manifest(rows, data / "manifest.csv")
    cfg = _cfg(m, "train.epochs=4", "train.batch_size=8", "train.early_stopping_patience=2", "train.lr=3e-3",
               "train.max_steps_per_epoch=3")  # fmt: skip
    res = train(cfg, tmp_path / "run")
    log = _csv(tmp_path / "run" / "log.csv")
    aucs = [float(r["val_auc"]) for r in log]
    best_epoch = int(np.argmax(aucs)) + 1  # first maximum wins ties
    meta = json.loads((tmp_path / "run" / "checkpoints" / "best.json").read_text())
    assert meta["epoch"] == res.best_epoch == best_epoch
    assert math.isclose(meta["val_metrics"]["auc"], max(aucs), abs_tol=1e-6)
    assert set(meta["val_threshold"]) == {"frame", "video"}
    # Early stopping: it stops `patience` epochs after the best one (or at the epoch cap).
    assert len(log) == min(4, best_epoch + 2)
    assert res.stopped_early == (len(log) < 4)


def test_load_detector_roundtrip_and_clear_errors(tmp_path, manifest):
    cfg = _cfg(manifest, "train.epochs=1", "train.batch_size=8")
    train(cfg, tmp_path / "run")
    det, cfg2, meta = load_detector(tmp_path / "run", "cpu")
    assert cfg2.model.name == "airl" and not det.training
    state = load_file(tmp_path / "run" / "checkpoints" / "best.safetensors")
    for k, v in det.state_dict().items():
        assert torch.equal(v, state[k])
    with pytest.raises(ModelLoadError, match="no such run"):
        load_detector(tmp_path / "missing", "cpu")
    # Weights of one detector under the name of another: one line naming the mismatch.
    meta_path = tmp_path / "run" / "checkpoints" / "best.json"
    meta = json.loads(meta_path.read_text())
    meta["detector"] = meta["config"]["model"]["name"] = "airl_freq"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="do not fit this detector"):
        load_detector(meta_path, "cpu")


@pytest.mark.slow
def test_infer_family_precomputes_heatmaps_once_into_a_shared_cache(face_set, tmp_path):
    manifest = small_manifest(face_set, tmp_path, groups=12)
    cache = tmp_path / "cache"
    cfg = load_config(None, [
        "model.name=infer", "model.backbone=clip_tiny", "model.pretrained=false", "data.image_size=32",
        f"data.manifest={manifest}", "train.epochs=1", "train.batch_size=4", "train.progress=false",
        "inr.resolution=16", "inr.max_steps=20", "inr.cpu_path=batched", f"train.feature_cache_dir={cache}",
    ])  # fmt: skip
    train(cfg, tmp_path / "a")
    splits = split_by_group(read_manifest(manifest), cfg.data.split)
    fitted = sorted(cache.rglob("*.safetensors"))
    assert len(fitted) == len(splits["train"]) + len(splits["val"])  # one entry per image, test never fitted
    fits = _csv(tmp_path / "a" / "inr_fits_train.csv")  # every image's fit is recorded, none dropped
    assert len(fits) == len(splits["train"]) and all(0 < int(f["steps"]) <= 20 for f in fits)
    stamps = {p: p.stat().st_mtime_ns for p in fitted}
    train(cfg, tmp_path / "b")  # a second run with the same INR config fits nothing again
    assert {p: p.stat().st_mtime_ns for p in sorted(cache.rglob("*.safetensors"))} == stamps


def _noise_faces(folder: Path, groups: int, fake: str | None) -> Path:
    """``groups`` groups of one real noise PNG each, plus one fake each when ``fake`` is ``"png"`` (a
    decodable image) or ``"corrupt"`` (bytes that are no image); absolute paths."""
    import cv2

    from fakescope.data.manifest import ManifestRow

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for g in range(groups):
        for label in (0, 1) if fake else (0,):
            path = folder / f"g{g:02d}_{label}.png"
            if label == 1 and fake == "corrupt":
                path.write_bytes(b"not a png")
            else:
                cv2.imwrite(str(path), rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
            rows.append(ManifestRow(str(path), label, f"g{g:02d}"))
    return write_manifest(rows, folder / "manifest.csv")


@pytest.mark.parametrize("fake", [None, "corrupt"], ids=["one-class-manifest", "one-class-after-the-scan"])
@pytest.mark.parametrize("out_exists", [False, True], ids=["new-out", "existing-empty-out"])
def test_a_refused_run_writes_nothing(tmp_path, fake, out_exists):
    """A run refused for its rows (one class in the manifest, or one class left once the unreadable
    images are out) leaves --out as it found it: no config.yaml, no skipped_rows.csv, no folder."""
    from fakescope.errors import InputError

    manifest = _noise_faces(tmp_path / "data", 12, fake)
    out = tmp_path / "run"
    if out_exists:
        out.mkdir()
    with pytest.raises(InputError, match="one class"):
        train(_cfg(manifest, "train.epochs=1", "train.batch_size=4"), out)
    assert (sorted(out.iterdir()) == []) if out_exists else not out.exists()
