"""Detectors that detect: every detector family can overfit 32 real DFDC faces through the real trainer.

A detector that cannot separate 16 real from 16 fake faces it is trained on has a fault (an input it
cannot see, a scale it cannot learn from, a gradient that does not reach it), whatever its test-set
numbers would say. Each family is trained with :func:`fakescope.train.trainer.train` from its
``configs/cpu/<name>.yaml`` (CPU-sized: 64 px crops, a tiny random backbone where the family has one,
INR heatmaps at 16 px) on 32 faces from 32 distinct DFDC groups, with no augmentation. The manifest
puts the same 32 faces in ``val`` as well (byte-identical copies, since a path may appear once), so
the per-epoch ``val_auc`` in the run's ``log.csv`` is the *training* AUC. One epoch is two optimiser
steps (32 faces, batch 16).

The criterion: training AUC >= 0.95 within the step budget stated per family. A rate too small to
move the weights must miss it (``test_criterion_fails_when_the_model_cannot_learn``), so the
criterion is not met by an untrained model or by a leak between labels and scores.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from fakescope.config import load_config
from fakescope.data.manifest import ManifestRow, read_manifest, write_manifest
from fakescope.train.trainer import train

REPO = Path(__file__).resolve().parents[1]
TARGET_AUC = 0.95
FACES_PER_CLASS = 16
BATCH = 16
STEPS_PER_EPOCH = 2 * FACES_PER_CLASS // BATCH

# Common to every family: 64 px crops, no augmentation, batch 16, one cosine cycle over the budget, no early
# stop before it, the run's seed fixed.
COMMON = ["data.image_size=64", "train.augment=null", f"train.batch_size={BATCH}", "train.progress=false",
          "eval.bootstrap=0", "seed=0"]  # fmt: skip
# AIRL family: a tiny random EfficientNet for the RGB stream (the frequency stream is always from scratch),
# trained at 1e-3 -- the rate for weights trained from scratch; the configs' 1e-4 is the paper's rate for
# fine-tuning a pretrained EfficientNet-B4 and would need several times the steps here.
AIRL = ["model.backbone=efficientnet_tiny", "model.pretrained=false", "train.lr=1e-3"]
# INFER family: the configs' frozen pretrained Lite0 (its embeddings are computed once and cached); the
# random clip_tiny carries almost nothing (32-d, mean pairwise correlation 0.85 on these faces) and a
# frozen random backbone would test the test, not the detector. INR heatmaps at 16 px (~45 steps a fit).
FAST_INR = ["inr.resolution=16", "inr.max_steps=50", "inr.cpu_path=batched"]

# family -> (overrides, optimiser-step budget to reach TARGET_AUC). First step at >= 0.95 seen on these
# faces over seeds 0-2: airl 6-14, airl_freq 6-12, airl_early 16-22, airl_rgb 24-32, clip / heatmaps / infer
# 2; the budgets leave 1.5-5x that. airl_rgb is the slowest because its BatchNorm running statistics lag
# the fast-moving random backbone: after 8 steps its train-mode (batch-statistics) AUC on these faces is
# already 1.0, eval-mode 0.66. With the DCT input at the old [0, 1] scale (model.dct_input_scale=1)
# airl and airl_freq miss these budgets (best 0.85 and 0.82): the frequency stream's input scale fault.
FAMILIES: dict[str, tuple[list[str], int]] = {
    "airl": (AIRL, 24),
    "airl_rgb": (AIRL, 48),
    "airl_freq": (AIRL, 24),
    "airl_early": (AIRL, 32),
    "clip": ([], 10),
    "infer": (FAST_INR, 10),
    "heatmaps": (FAST_INR, 10),
    # Baselines (issue 14). First step at >= 0.95 on these faces, seed 0, with a 40-step cosine: spsl 12,
    # univfd 10 (frozen Lite0, like clip).
    "spsl": ([], 24),
    "univfd": ([], 30),
    "wavelet_clip": ([], 30),
    # The Xception-trunk baselines with the AIRL family's tiny random backbone at 1e-3 (the same reason).
    # First step at >= 0.95, seeds 0 / 1: xception 24 / 20, srm 26 / 20, f3net 22 / 22.
    "xception": (AIRL, 48),
    "srm": (AIRL, 48),
    "f3net": (AIRL, 48),
    # MesoNet from scratch at 3e-3. It fits these faces in train mode within ~30 steps, but the criterion
    # reads eval mode, whose BatchNorm running statistics lag the fast-moving weights until the cosine
    # slows them: first step at >= 0.95 over seeds 0-2 was 48-58 (meso4) and 56-74 (mesoinception4) of
    # 80-120.
    "meso4": (["train.lr=3e-3"], 120),
    "mesoinception4": (["train.lr=3e-3"], 120),
    # NPR's ResNet stages from scratch at 1e-3 (the paper's 2e-4 is for its 50 epochs of ProGAN images). As
    # with MesoNet, train-mode loss falls within ~10 steps while eval mode waits for the BatchNorm statistics:
    # first step at >= 0.95 over seeds 0-2 was 54-60 of 100 at 64 px; a 60-step budget ends at 0.94 (seed 0).
    # At 32 px (NPR reads the residual of a 2x down-and-up-sampling, which 32 px still has) it was 48-54
    # over seeds 0-2 in half the time (16-20 s instead of 37 s).
    "npr": (["train.lr=1e-3", "data.image_size=32"], 100),
}
# ~20-45 s each on an idle 2-core CPU (npr ~20 s: 100 steps at 32 px); the others take 3-15 s (the
# five Xception-trunk and MesoNet baselines 3-6 s each). Beside another training job they take 10-30x that:
# two processes' OpenMP threads contend.
SLOW = {"airl", "airl_rgb", "npr"}


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def overfit_manifest(shared_data: Path, tmp_path_factory) -> Path:
    """16 real + 16 fake DFDC faces, each from its own group, listed as ``train`` and again (as copies)
    as ``val``."""
    rows = read_manifest(shared_data / "dfdc-faces" / "manifest.csv")
    groups = list(dict.fromkeys(r.group for r in rows))
    real_groups = set(groups[:FACES_PER_CLASS])
    fake_groups = set(groups[FACES_PER_CLASS : 2 * FACES_PER_CLASS])
    chosen = [
        r
        for r in rows
        if (r.label == 0 and r.group in real_groups) or (r.label == 1 and r.group in fake_groups)
    ]
    assert len(chosen) == 2 * FACES_PER_CLASS and len({r.group for r in chosen}) == 2 * FACES_PER_CLASS
    folder = tmp_path_factory.mktemp("overfit")
    out: list[ManifestRow] = []
    for r in chosen:
        out.append(ManifestRow(path=r.path, label=r.label, group=r.group, split="train"))
    for r in chosen:
        copy = folder / "val" / r.label_name / Path(r.path).name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(r.path, copy)
        out.append(ManifestRow(path=str(copy), label=r.label, group=f"{r.group}-val", split="val"))
    return write_manifest(out, folder / "manifest.csv", relative_to=folder / "nowhere")


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory) -> Path:
    """INR heatmaps and Lite0 embeddings, content-addressed: fitted once for the whole module."""
    return tmp_path_factory.mktemp("features")


def overfit(name: str, manifest: Path, run_dir: Path, cache: Path, steps: int, *extra: str) -> dict:
    """Train ``name`` for ``steps`` optimiser steps with the real trainer; return the per-epoch training
    AUC, the step at which it first reached TARGET_AUC (None if never) and the per-step log."""
    epochs = steps // STEPS_PER_EPOCH
    cfg = load_config(
        REPO / "configs" / "cpu" / f"{name}.yaml",
        [*COMMON, *FAMILIES[name][0], f"data.manifest={manifest}", f"train.epochs={epochs}",
         f"train.early_stopping_patience={epochs}", f"train.restart_period={epochs}",
         f"train.feature_cache_dir={cache}", f"data.crop_cache_dir={cache / 'crops'}", *extra],
    )  # fmt: skip
    t0 = time.time()
    train(cfg, run_dir)
    seconds = time.time() - t0
    log = _csv(run_dir / "log.csv")
    aucs = [float(r["val_auc"]) for r in log]
    at_step = [int(r["step"]) for r in log]
    reached = next((s for s, a in zip(at_step, aucs, strict=True) if a >= TARGET_AUC), None)
    return {"aucs": aucs, "steps": at_step, "reached": reached, "seconds": seconds,
            "step_log": _csv(run_dir / "steps.csv")}  # fmt: skip


def _describe(name: str, res: dict, budget: int) -> str:
    return (f"{name}: training AUC per epoch (2 steps each) {[round(a, 3) for a in res['aucs']]}; "
            f"reached {TARGET_AUC} at step {res['reached']} of {budget}; {res['seconds']:.0f} s")  # fmt: skip


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in FAMILIES]
)
def test_family_overfits_32_real_faces(name, shared_data, overfit_manifest, feature_cache, tmp_path):
    budget = FAMILIES[name][1]
    res = overfit(name, overfit_manifest, tmp_path / "run", feature_cache, budget)
    assert len(res["step_log"]) == budget
    print(_describe(name, res, budget))
    assert res["reached"] is not None, (
        f"{name} cannot overfit 32 faces: training AUC never reached {TARGET_AUC} within {budget} "
        f"optimiser steps ({_describe(name, res, budget)})"
    )
    if name == "airl":
        # SupCon pulls same-label embeddings together: its term falls as the faces are learnt.
        supcon = np.array([float(s["supcon"]) for s in res["step_log"]])
        q = len(supcon) // 4
        first, last = supcon[:q].mean(), supcon[-q:].mean()
        print(f"airl supcon: first-quarter mean {first:.4f}, last-quarter mean {last:.4f}")
        assert last < first, f"supcon did not fall: first quarter {first:.4f}, last quarter {last:.4f}"


@pytest.mark.parametrize("name", ["airl_freq", "clip", "heatmaps"])
def test_criterion_fails_when_the_model_cannot_learn(
    name, shared_data, overfit_manifest, feature_cache, tmp_path
):
    """The same runs with a rate that leaves the weights where they started (only BatchNorm statistics
    move): the criterion must not be met, so it is not met by an untrained model or by a label leak."""
    budget = FAMILIES[name][1]
    res = overfit(name, overfit_manifest, tmp_path / "run", feature_cache, budget, "train.lr=1e-12",
                  "train.min_lr=0")  # fmt: skip
    print(_describe(name, res, budget))
    assert res["reached"] is None, (
        f"a model that cannot learn met the criterion: {_describe(name, res, budget)}"
    )
