"""INR fitting speed-ups that change the fit: a Reptile-learned shared init, and the bf16 warm-up.

Both are optional (defaults off) and measured in README "INR engine"; these tests check what a user
relies on: fewer steps on unseen faces, the target still met in fp32, resumable learning, and clear
errors when an init file does not fit the config.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fakescope.cli import main as cli_main
from fakescope.config import load_config
from fakescope.errors import ConfigError
from fakescope.inr import InrConfig
from fakescope.inr import learned_init as li
from fakescope.inr.config import InrInitConfig
from fakescope.inr.engine import _targets, fit_resized, resize_for_inr
from fakescope.inr.fitting import psnr_scale
from fakescope.inr.models import coordinate_grid, forward, init_params, load_init

R = 32
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def faces(face_set) -> tuple[list[np.ndarray], list[str]]:
    """60 face crops (real and fake; DFDC, or the stand-in set without ../shared) at 32 px with their
    groups, in manifest order."""
    from fakescope.data.images import load_image_rgb

    with open(face_set.manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))[:60]
    images = [resize_for_inr(load_image_rgb(face_set.root / r["path"]), R) for r in rows]
    return images, [r["group"] for r in rows]


def _init_cfg(**kw) -> InrInitConfig:
    base = {"outer_steps": 12, "inner_steps": 15, "images_per_step": 4, "holdout_images": 6}
    return InrInitConfig(**{**base, **kw})


def test_learned_init_needs_fewer_steps_on_held_out_faces(shared_data, faces, tmp_path):
    # shared_data: how fast an INR fits is a property of real faces, not of the stand-in set.
    images, groups = faces
    inr = InrConfig(resolution=R)
    out = tmp_path / "init.safetensors"
    summary = li.learn_init(images, groups, inr, _init_cfg(), out, progress=False)
    hold = summary.holdout
    assert hold["n"] == 6
    # The held-out faces reach 35 dB from both inits, and clearly sooner from the learned one.
    assert hold["seeded_init"]["share_reached"] == 1.0 and hold["learned_init"]["share_reached"] == 1.0
    assert hold["learned_init"]["mean_steps"] < 0.8 * hold["seeded_init"]["mean_steps"]
    # The file is a usable init: fitting from it with the recorded lr reaches the target.
    cfg = inr.model_copy(update={"init_file": str(out), "lr": 1e-3})
    (res,) = fit_resized(images[-1:], cfg, CPU, load_init(cfg))
    assert res.record.reached


def test_learned_init_held_out_groups_never_feed_learning(faces):
    _, groups = faces
    learn, hold = li._split_holdout(groups, 6, seed=0)
    assert len(hold) == 6
    assert not {groups[i] for i in learn} & {groups[i] for i in hold}


def test_learned_init_resumes_after_a_crash_to_the_same_file(faces, tmp_path, monkeypatch):
    images, groups = faces
    inr = InrConfig(resolution=R)
    cfg = _init_cfg(outer_steps=6, checkpoint_every=2, holdout_images=0)
    whole = tmp_path / "whole.safetensors"
    li.learn_init(images, groups, inr, cfg, whole, progress=False)

    crashed = tmp_path / "crashed.safetensors"
    real_fit = li.fit_batch
    calls = {"n": 0}

    def dying_fit(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 5:  # meta-update 5: the checkpoint after update 4 is on disk
            raise KeyboardInterrupt
        return real_fit(*a, **kw)

    monkeypatch.setattr(li, "fit_batch", dying_fit)
    with pytest.raises(KeyboardInterrupt):
        li.learn_init(images, groups, inr, cfg, crashed, progress=False)
    assert not crashed.exists() and (tmp_path / "crashed.safetensors.state").is_file()
    monkeypatch.setattr(li, "fit_batch", real_fit)
    summary = li.learn_init(images, groups, inr, cfg, crashed, progress=False)
    assert summary.resumed_from == 4
    assert not (tmp_path / "crashed.safetensors.state").exists()
    a, b = load_file(str(whole)), load_file(str(crashed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # A finished file with the same settings is not learned again.
    again = li.learn_init(images, groups, inr, cfg, crashed, progress=False)
    assert again.wall_seconds == 0.0 and again.resumed_from == cfg.outer_steps


def test_learned_init_for_another_inr_is_refused(faces, tmp_path):
    images, groups = faces
    out = tmp_path / "init.safetensors"
    li.learn_init(images, groups, InrConfig(resolution=R), _init_cfg(outer_steps=2, holdout_images=0), out,
                  progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match=r"omega0=30\.0 \(config: 20\.0\)"):
        load_init(InrConfig(resolution=R, omega0=20.0, init_file=str(out)))
    with pytest.raises(ConfigError, match="target_range='symmetric'"):
        load_init(InrConfig(resolution=R, target_range="unit", init_file=str(out)))
    # A different resolution is allowed: coordinates are always [-1, 1]^2.
    assert load_init(InrConfig(resolution=64, init_file=str(out))).weights[0].shape == (1, 128, 2)


def test_learn_inr_init_command(face_set, tmp_path, capsys):
    out = tmp_path / "init.safetensors"
    rc = cli_main(["learn-inr-init", "--manifest", str(face_set.manifest),
                   "--out", str(out), "--quiet", "--set", f"inr.resolution={R}",
                   "--set", "inr_init.outer_steps=3", "--set", "inr_init.max_images=20",
                   "--set", "inr_init.holdout_images=2"])  # fmt: skip
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["n_train_images"] == 20 and printed["holdout"]["n"] == 2
    assert load_init(InrConfig(resolution=R, init_file=str(out))).batch == 1


def test_bf16_warmup_meets_the_target_in_fp32(shared_data, faces):
    # shared_data: how fast an INR fits is a property of real faces, not of the stand-in set.
    images, _ = faces
    cfg = InrConfig(resolution=R, bf16_warmup_margin_db=4.0)
    results = fit_resized(images[:2], cfg, CPU)
    coords = coordinate_grid(R)
    for res in results:
        rec = res.record
        assert rec.reached and rec.final_psnr >= 35.0
        assert 0 < rec.bf16_steps < rec.steps  # part of the fit ran in bf16, the end in fp32
    # The recorded PSNR is an fp32 one: refit the first image and recompute it independently.
    from fakescope.inr.fitting import fit_batch
    from fakescope.inr.models import load_init as li_load

    tgt, _ = _targets(images[:1], cfg, CPU)
    params, (rec,) = fit_batch(tgt, li_load(cfg), cfg, coords)
    with torch.no_grad():
        rgb, _ = forward(params, coords, cfg)
        mse = (rgb.double() - tgt.double()).square().mean()
    assert abs(10 * np.log10(psnr_scale(cfg) / float(mse)) - rec.final_psnr) < 0.01


def test_bf16_warmup_is_refused_for_wire(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inr:\n  activation: wire\n  bf16_warmup_margin_db: 3\n")
    with pytest.raises(ConfigError, match="bf16_warmup_margin_db"):
        load_config(path)


def test_sine_layer_gradients_match_autograd():
    # The hand-written sine backward against autograd on the plain formula, in float64.
    cfg = InrConfig(resolution=8)
    params = init_params(cfg)
    params = type(params)([w.double().requires_grad_(True) for w in params.weights],
                          [b.double().requires_grad_(True) for b in params.biases])  # fmt: skip
    coords = coordinate_grid(8).double()
    target = torch.rand(1, 64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rgb, _ = forward(params, coords, cfg)
    grads = torch.autograd.grad((rgb - target).square().mean(), params.tensors())

    h = coords[None]
    for w, b in zip(params.weights[:-1], params.biases[:-1], strict=True):
        h = torch.sin(cfg.omega0 * (h @ w.transpose(1, 2) + b[:, None]))
    plain = h @ params.weights[-1].transpose(1, 2) + params.biases[-1][:, None]
    ref = torch.autograd.grad((plain - target).square().mean(), params.tensors())
    assert torch.allclose(plain, rgb, rtol=0, atol=1e-12)
    for g, r in zip(grads, ref, strict=True):
        assert torch.allclose(g, r, rtol=1e-9, atol=1e-12)


def test_bf16_backward_reaches_the_target_in_similar_steps(shared_data, faces):
    # shared_data: how fast an INR fits is a property of real faces, not of the stand-in set.
    images, _ = faces
    fp32 = fit_resized(images[:3], InrConfig(resolution=R), CPU)
    bf16 = fit_resized(images[:3], InrConfig(resolution=R, bf16_backward=True), CPU)
    assert all(r.record.reached for r in bf16)
    steps32 = np.mean([r.record.steps for r in fp32])
    steps16 = np.mean([r.record.steps for r in bf16])
    assert steps16 <= 1.25 * steps32


def test_learned_init_does_not_resume_a_checkpoint_of_other_faces(faces, tmp_path, monkeypatch):
    images, groups = faces
    inr = InrConfig(resolution=R)
    cfg = _init_cfg(outer_steps=4, checkpoint_every=2, holdout_images=0)
    out = tmp_path / "init.safetensors"
    real_fit = li.fit_batch
    calls = {"n": 0}

    def dying_fit(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_fit(*a, **kw)

    monkeypatch.setattr(li, "fit_batch", dying_fit)
    with pytest.raises(KeyboardInterrupt):
        li.learn_init(images[:30], groups[:30], inr, cfg, out, progress=False)
    monkeypatch.setattr(li, "fit_batch", real_fit)
    # Same number of faces, different faces: the checkpoint is not theirs, so learning starts over.
    summary = li.learn_init(images[30:], groups[30:], inr, cfg, out, progress=False)
    assert summary.resumed_from == 0
