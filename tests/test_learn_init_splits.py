"""``learn-inr-init`` splits its manifest like ``train`` (fakescope.data.splits.load_splits): it learns
from the train split only, its hold-out check uses the val split, and it never reads a test face."""

from __future__ import annotations

import json

import pytest
import torch

from fakescope.cli import main as cli_main
from fakescope.config import load_config
from fakescope.data.splits import load_splits
from fakescope.inr import InrConfig
from fakescope.inr.models import load_init

R = 32


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_learn_inr_init_reads_no_test_face(face_set, tmp_path, monkeypatch, capsys):
    import fakescope.data.images as images_mod

    manifest = face_set.manifest
    overrides = [f"inr.resolution={R}", "inr_init.outer_steps=2", "inr_init.max_images=24",
                 "inr_init.holdout_images=4", "inr_init.images_per_step=4"]  # fmt: skip
    cfg = load_config(None, [f"data.manifest={manifest}", *overrides])
    splits = load_splits(cfg.data)
    where = {r.path: name for name, rows in splits.items() for r in rows}
    assert splits["test"], "the default split must hold test faces for this test to mean anything"

    read: list[str] = []
    real_loader = images_mod.load_image_rgb

    def spy(src, *args, **kwargs):
        read.append(str(src))
        return real_loader(src, *args, **kwargs)

    monkeypatch.setattr(images_mod, "load_image_rgb", spy)
    out = tmp_path / "init.safetensors"
    argv = ["learn-inr-init", "--manifest", str(manifest), "--out", str(out), "--quiet"]
    rc = cli_main(argv + [a for o in overrides for a in ("--set", o)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["n_train_images"] == 24 and printed["holdout"]["n"] == 4
    assert load_init(InrConfig(resolution=R, init_file=str(out))).batch == 1

    sides = [where.get(p, "unknown") for p in read]
    assert len(read) == 28
    assert "test" not in sides and "unknown" not in sides
    assert sides.count("train") == 24 and sides.count("val") == 4
