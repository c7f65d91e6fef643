"""Reading weight files (safetensors, or ``torch.load`` with ``weights_only``) and loading them
strictly: every key present, none extra, every shape right, or one
:class:`~fakescope.errors.ModelLoadError` that says which."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from fakescope.errors import ModelLoadError

__all__ = ["first_line", "load_state_dict_strict", "read_state_dict"]


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise ModelLoadError(f"model.weights_path: file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            # weights_only=True: tensors only, no arbitrary unpickling.
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelLoadError(f"{path}: cannot read weights ({first_line(err)})") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ModelLoadError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return dict(state)


def load_state_dict_strict(model: nn.Module, state: Mapping[str, Tensor], path: Path) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} with another shape (e.g. {wrong[0]})")
        raise ModelLoadError(f"{path}: weights do not fit {type(model).__name__}: {', '.join(parts)}")
    model.load_state_dict(state, strict=True)
