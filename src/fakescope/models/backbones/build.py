"""Building a backbone by name: the checks every family shares, then the CLIP or the timm builder."""

from __future__ import annotations

from fakescope.errors import ConfigError
from fakescope.models.backbones.clip import build_clip
from fakescope.models.backbones.specs import BACKBONES, ImageBackbone
from fakescope.models.backbones.timm_cnn import build_timm

__all__ = ["build_backbone"]


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
        return build_clip(spec, pretrained, weights_path, hf_cache_dir)
    return build_timm(spec, pretrained, weights_path, in_chans, early_init)
