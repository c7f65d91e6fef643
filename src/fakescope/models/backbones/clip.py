"""CLIP vision backbones through ``transformers``: OpenAI ViT-L/14 (from a local folder or file, the
Hugging Face cache, or the hub) and a tiny random one for tests."""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from fakescope.errors import ModelLoadError
from fakescope.models.backbones.specs import CLIP_HUB_ID, BackboneSpec, ImageBackbone
from fakescope.models.backbones.weights import first_line, load_state_dict_strict, read_state_dict

__all__ = ["ClipBackbone", "build_clip", "clip_vit_l14_config"]


class ClipBackbone(ImageBackbone):
    """CLIP vision tower + visual projection (``CLIPVisionModelWithProjection``): the projected
    ``image_embeds`` (768-d for ViT-L/14), as INFER uses (INFER §3.2, anonymous NeurIPS-format submission)."""

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


def build_clip(
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
                    f"model.weights_path={path}: not a transformers CLIP folder ({first_line(err)})"
                ) from None
        else:
            model = CLIPVisionModelWithProjection(config)
            load_state_dict_strict(model, read_state_dict(path), path)
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
            f"{f' {hf_cache_dir}' if hf_cache_dir else ''} ({first_line(err)}); download them on a machine "
            "with network access (CLIPVisionModelWithProjection.from_pretrained(...).save_pretrained(DIR)) and "
            "pass --set model.weights_path=DIR, or --set model.hf_cache_dir=DIR for an HF cache that holds them "
            "(or model.pretrained=false for random weights)"
        ) from None
