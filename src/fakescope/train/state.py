"""Training state beyond the weights, saved in ``checkpoints/last`` so that ``--resume`` continues a
run to the weights an uninterrupted run reaches: the optimiser's moments and hyper-parameters and the
torch (CPU and CUDA), numpy and Python RNG states.

The file format is :mod:`fakescope.inference.checkpoint`'s: tensors go to ``last.state.safetensors``
(``optim.<param index>.<key>``, ``rng.torch``, ``rng.cuda.<i>``, ``rng.numpy.keys``), scalars to
``last.json`` under ``resume`` (``optimizer``: ``param_groups`` and non-tensor state; ``rng``:
``numpy`` and ``python``). Runs saved before this module existed use the same names and load as they are.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng", "restore_optimizer", "restore_rng", "training_state"]


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Torch (CPU and CUDA), numpy and Python RNG states as (tensors, JSON scalars)."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy.keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, state, gauss = random.getstate()
    scalars = {
        "numpy": [name, int(pos), int(has_gauss), float(cached)],
        "python": [version, list(state), gauss],
    }
    return tensors, scalars


def restore_rng(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    name, pos, has_gauss, cached = scalars["numpy"]
    keys = tensors["rng.numpy.keys"].numpy().astype(np.uint32)
    np.random.set_state((name, keys, pos, has_gauss, cached))
    version, state, gauss = scalars["python"]
    random.setstate((version, tuple(state), gauss))


def _optimizer_to_parts(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": sd["param_groups"], "state": {}}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars["state"].setdefault(str(idx), {})[key] = value
    return tensors, scalars


def _optimizer_from_parts(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for idx, extra in scalars.get("state", {}).items():
        state.setdefault(int(idx), {}).update(extra)
    groups = []
    for g in scalars["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def training_state(
    optimizer: torch.optim.Optimizer, resume: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of ``last.state.safetensors`` and the JSON ``resume`` block: ``resume`` (loop,
    scheduler, scaler) with the optimiser's and the RNGs' scalars added, captured now."""
    opt_tensors, opt_scalars = _optimizer_to_parts(optimizer)
    rng_tensors, rng_scalars = capture_rng()
    return {**opt_tensors, **rng_tensors}, {**resume, "optimizer": opt_scalars, "rng": rng_scalars}


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    optimizer.load_state_dict(_optimizer_from_parts(tensors, meta["resume"]["optimizer"]))
