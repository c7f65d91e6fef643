"""``timm`` CNN backbones (EfficientNet-B4, Xception, Lite0, a tiny test network), pooled and without
a classifier, and the 4th input channel of AIRL's early-fusion ablation (:class:`SplitStem`)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import Tensor, nn

from fakescope.errors import ConfigError, ModelLoadError
from fakescope.models.backbones.lite0 import lite0_weights_file, load_lite0_state_dict
from fakescope.models.backbones.specs import LITE0_PACKAGE, BackboneSpec, ImageBackbone
from fakescope.models.backbones.weights import first_line, load_state_dict_strict, read_state_dict

__all__ = [
    "SplitStem", "TimmBackbone", "add_input_channel", "build_timm", "first_conv", "set_first_conv",
    "standardize_per_image",
]  # fmt: skip

_TIMM_ARCH = {
    "efficientnet_b4": "efficientnet_b4",
    "efficientnet_tiny": "test_efficientnet",
    "lite0": "tf_efficientnet_lite0",
    "xception": "legacy_xception",
}


class TimmBackbone(ImageBackbone):
    """A ``timm`` CNN with global average pooling and no classifier.

    ``in_chans = 4`` adds one extra input channel for AIRL's early-fusion ablation (AIRL (Parihar), §V-C,
    Table III "Both (Early Fusion)"). Two things make that channel count (see :class:`SplitStem`):

    - **Scale.** The RGB channels are normalised with fixed ImageNet statistics (std ≈ 1 on faces); the
      extra map is **standardised per image** (zero mean, unit std) inside ``forward``. A fixed scale
      would have to be tuned per map type: the raw high-pass DCT coefficients of a ``[0,1]`` face have
      std ≈ 0.01 (0.007× the RGB channels' contribution to the stem on DFDC faces), at 0-255 ≈ 2.4, in
      log mode ≈ 0.35 around a non-zero mean, and all are heavy-tailed across images. Per-image
      standardisation puts every map in the range the pretrained stem expects, whatever
      ``model.dct_input_scale`` / ``dct_log_magnitude`` say, and makes it invariant to global
      contrast changes (the training augmentation's ±20%). The absolute high-frequency energy is thereby
      dropped from this channel; the RGB channels still carry it.
    - **Learning rate.** The extra channel's stem filter is new, not pretrained, so it must train at
      the head's rate, not the backbone's 0.1×. Adam parameter groups cannot split one tensor, so the
      stem is two convolutions whose outputs add up; :meth:`extra_input_parameters` lists the new one.
    """

    def __init__(self, spec: BackboneSpec, model: nn.Module, pretrained: bool, weights_source: str) -> None:
        super().__init__(spec, pretrained, weights_source)
        self.model = model
        self.in_chans = first_conv(model).in_channels

    def forward(self, images: Tensor, extra: Tensor | None = None) -> Tensor:
        x = self.normalize(images)
        if extra is not None:
            x = torch.cat([x, standardize_per_image(extra.to(x.dtype))], dim=1)
        if x.shape[1] != self.in_chans:
            raise ValueError(f"backbone {self.spec.name} takes {self.in_chans} channels, got {x.shape[1]}")
        return self.model(x)

    def extra_input_parameters(self) -> list[nn.Parameter]:
        """The parameters that read the extra input channel (trained from scratch; empty for RGB only)."""
        stem = first_conv(self.model)
        return list(stem.extra.parameters()) if isinstance(stem, SplitStem) else []

    def gradcam_layer(self) -> nn.Module:
        # timm EfficientNets end with conv_head -> bn2 (BatchNorm + activation): the last spatial map;
        # Xception with conv4 -> bn4 -> act4.
        return self.model.act4 if hasattr(self.model, "act4") else self.model.bn2


def standardize_per_image(x: Tensor, eps: float = 1e-6) -> Tensor:
    """``(x - mean) / std`` over each image's ``C×H×W`` values (the std clamped at ``eps``)."""
    flat = x.float().flatten(1)
    mean = flat.mean(dim=1).view(-1, *([1] * (x.dim() - 1)))
    std = flat.std(dim=1).clamp_min(eps).view(-1, *([1] * (x.dim() - 1)))
    return ((x.float() - mean) / std).to(x.dtype)


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The stem convolution of a timm EfficientNet (``conv_stem``) or Xception (``conv1``)."""
    return model.conv_stem if hasattr(model, "conv_stem") else model.conv1  # type: ignore[return-value]


def set_first_conv(model: nn.Module, conv: nn.Module) -> None:
    """Replace the stem convolution found by :func:`first_conv`."""
    setattr(model, "conv_stem" if hasattr(model, "conv_stem") else "conv1", conv)


class SplitStem(nn.Module):
    """A 4-input-channel stem convolution stored as two: the pretrained RGB conv and a 1-channel conv
    for the extra map, with the same kernel, stride and padding, whose outputs are summed. Convolution
    is linear in its input channels, so this is exactly one conv with ``weight`` = the two filters
    concatenated; keeping them apart lets the optimiser give the new filter its own learning rate."""

    def __init__(self, rgb: nn.Conv2d, extra_weight: Tensor) -> None:
        super().__init__()
        self.rgb = rgb
        extra = copy.deepcopy(rgb)  # same class (timm's Conv2dSame pads like TF), kernel, stride
        extra.weight = nn.Parameter(extra_weight)
        extra.in_channels = extra_weight.shape[1]
        extra.bias = None  # the RGB conv's bias (if any) is added once
        self.extra = extra
        self.in_channels = rgb.in_channels + extra.in_channels
        self.out_channels = rgb.out_channels

    @property
    def weight(self) -> Tensor:
        """The equivalent single conv's ``[out, 4, k, k]`` filter (a view for inspection, not a parameter)."""
        return torch.cat([self.rgb.weight, self.extra.weight], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        n = self.rgb.in_channels
        return self.rgb(x[:, :n]) + self.extra(x[:, n:])


def add_input_channel(model: nn.Module, init: str = "mean") -> None:
    """Give ``model.conv_stem`` a 4th input channel (a :class:`SplitStem`), keeping the pretrained RGB
    filters (``model.early_fusion_init``).

    ``mean``: the new channel's filter is the mean of the RGB filters (it responds to the extra map as
    the network responds to gray intensity; the map is standardised per image, so its scale matches the
    normalised RGB channels); ``zeros``: the network starts exactly as the pretrained one and the extra
    channel's filter is learned from zero (its gradient is not zero).
    """
    conv = first_conv(model)
    old = conv.weight.data
    extra = old.mean(dim=1, keepdim=True) if init == "mean" else torch.zeros_like(old[:, :1])
    set_first_conv(model, SplitStem(conv, extra.clone()))


def build_timm(
    spec: BackboneSpec, pretrained: bool, weights_path: str | None, in_chans: int, early_init: str
) -> TimmBackbone:
    import timm

    arch = _TIMM_ARCH[spec.name]
    source = "random"
    if not pretrained:
        model = timm.create_model(arch, pretrained=False, num_classes=0)
    elif weights_path is not None or spec.name == "lite0":
        model = timm.create_model(arch, pretrained=False, num_classes=0)
        path = Path(weights_path) if weights_path is not None else lite0_weights_file()
        state = load_lite0_state_dict(path) if spec.name == "lite0" else read_state_dict(path)
        state = {k: v for k, v in state.items() if not k.startswith(("classifier.", "fc.", "head."))}
        load_state_dict_strict(model, state, path)
        source = str(path) if weights_path is not None else LITE0_PACKAGE
    else:
        try:
            model = timm.create_model(arch, pretrained=True, num_classes=0)
        except Exception as err:
            raise ModelLoadError(
                f"cannot load ImageNet weights '{spec.source}' for {spec.name} from the Hugging Face hub or cache "
                f"({first_line(err)}); pass --set model.weights_path=FILE with a timm '{arch}' state dict "
                "(.safetensors or .pth), or model.pretrained=false for random weights"
            ) from None
        source = spec.source
    if in_chans == 4:
        add_input_channel(model, early_init)
    elif in_chans != 3:
        raise ConfigError(f"backbone {spec.name}: in_chans must be 3 or 4, got {in_chans}")
    return TimmBackbone(spec, model, pretrained, source)
