"""DDP: `fakescope train` under torchrun with 2 CPU processes (Gloo) on face crops (``face_set``: DFDC, or the
stand-in set without ../shared)."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fakescope.data.manifest import read_manifest, split_by_group, write_manifest
from fakescope.inference.checkpoint import load_detector


def small_manifest(face_set, folder: Path, groups: int) -> Path:
    rows = read_manifest(face_set.manifest)
    keep = set(list(dict.fromkeys(r.group for r in rows))[:groups])
    return write_manifest(
        [r for r in rows if r.group in keep], folder / "manifest.csv", relative_to=folder / "x"
    )


@pytest.mark.slow
def test_two_process_ddp_training_on_cpu(face_set, tmp_path):
    manifest = small_manifest(face_set, tmp_path, groups=40)
    cfg = {
        "seed": 1,
        "device": "cpu",
        "data": {"manifest": str(manifest), "image_size": 32},
        "model": {"name": "airl", "backbone": "efficientnet_tiny", "pretrained": False},
        "train": {"epochs": 2, "batch_size": 4, "progress": False, "ddp_backend": "gloo"},
        "eval": {"bootstrap": 0},
    }
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "fakescope", "train", "--config", str(cfg_path), "--out", str(run)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    n_train = len(split_by_group(read_manifest(manifest))["train"])
    with open(run / "steps.csv", newline="") as fh:
        steps = list(csv.DictReader(fh))
    # Each of the 2 ranks takes 4 of every global batch of 8: half the steps of one process.
    per_epoch = math.ceil(n_train / (4 * 2))
    assert len(steps) == 2 * per_epoch
    with open(run / "log.csv", newline="") as fh:
        log = list(csv.DictReader(fh))
    assert [row["epoch"] for row in log] == ["1", "2"]  # rank 0 alone writes the logs
    assert 0.0 <= float(log[-1]["val_auc"]) <= 1.0
    det, _, meta = load_detector(run, "cpu")
    # The best checkpoint counts global steps (whichever epoch validation picked).
    assert meta["step"] == meta["epoch"] * per_epoch and det.name == "airl"
