"""Training state in ``checkpoints/last`` (:mod:`fakescope.train.state`): optimiser moments and RNG
states round-trip through the checkpoint files under the names every run so far was saved with, so a
run saved before this module existed still resumes."""

from __future__ import annotations

import random

import numpy as np
import torch
from safetensors.torch import load_file

from fakescope.config import load_config
from fakescope.inference.checkpoint import load_train_state, read_checkpoint_meta, save_checkpoint
from fakescope.train.state import restore_optimizer, restore_rng, training_state


def _stepped_adam() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, opt


def test_last_checkpoint_restores_optimiser_and_rng_from_the_saved_names(tmp_path):
    model, opt = _stepped_adam()
    tensors, resume = training_state(opt, {"loop": {"step": 1}})
    save_checkpoint(tmp_path, "last", model=model, cfg=load_config(None, []), detector_name="airl", epoch=0,
                    step=1, state_tensors=tensors, resume=resume)  # fmt: skip
    draws = (torch.rand(3), np.random.rand(3), random.random())  # what comes next after the save
    moments = {k: v.clone() for k, v in opt.state_dict()["state"][0].items()}

    # The file format of fakescope-checkpoint/1, as runs saved before this module have it.
    stored = load_file(tmp_path / "last.state.safetensors")
    names = {"optim.0.exp_avg", "optim.0.exp_avg_sq", "optim.1.exp_avg", "rng.torch", "rng.numpy.keys"}
    assert names <= set(stored)
    meta = read_checkpoint_meta(tmp_path / "last.json")
    assert set(meta["resume"]) == {"loop", "optimizer", "rng"}
    assert set(meta["resume"]["rng"]) == {"numpy", "python"} and "param_groups" in meta["resume"]["optimizer"]

    torch.rand(7), np.random.rand(7), random.random()  # move every generator on
    fresh = torch.optim.Adam(model.parameters(), lr=0.5)
    state = load_train_state(tmp_path / "last.json", meta)
    restore_optimizer(fresh, state, meta)
    restore_rng(state, meta["resume"]["rng"])

    assert fresh.param_groups[0]["lr"] == 0.1 and fresh.param_groups[0]["betas"] == (0.9, 0.999)
    for key, value in moments.items():
        assert torch.equal(fresh.state_dict()["state"][0][key], value), key
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(again[0], draws[0]) and np.array_equal(again[1], draws[1]) and again[2] == draws[2]
