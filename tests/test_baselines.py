"""The papers' baselines (issue 14) beyond the registry-wide contract of tests/test_models.py: each is
the architecture its paper describes (parameter counts, fixed filters, frozen parts), and the
pretrained ones fail clearly offline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fakescope.config import load_config
from fakescope.errors import ConfigError, ModelLoadError
from fakescope.inference.spec import input_spec_for
from fakescope.models.registry import build_detector


def _build(name: str, *extra: str):
    cfg = load_config(None, [f"model.name={name}", "model.pretrained=false", *extra])
    return build_detector(cfg.model, input_spec_for(cfg))


@pytest.mark.parametrize(("name", "paper_params"), [("meso4", 27_977), ("mesoinception4", 28_615)])
def test_mesonet_parameter_counts_match_the_paper(name, paper_params):
    """Afchar et al. §3 give 27,977 (Meso-4) and 28,615 (MesoInception-4) trainable parameters with one
    sigmoid output; two logits add one weight row (16) and one bias."""
    det = _build(name)
    assert sum(p.numel() for p in det.parameters()) == paper_params + 17
    det.eval()
    with torch.no_grad():
        for size in (64, 256):  # any input size: adaptive pooling to the paper's 8x8 at 256 px
            assert det({"image": torch.rand(2, 3, size, size)})["logits"].shape == (2, 2)


def test_srm_filters_are_fixed_high_pass():
    from fakescope.models.srm import SrmFilter

    srm = SrmFilter()
    assert not list(srm.parameters()), "SRM kernels must not train"
    flat = srm(torch.full((1, 3, 16, 16), 0.7))
    assert flat[..., 2:-2, 2:-2].abs().max() < 1e-5, "a high-pass filter must give 0 on a flat image"
    noisy = srm(torch.rand(1, 3, 16, 16))
    assert noisy.abs().max() > 0.1 and noisy.abs().max() <= 3.0


def test_srm_frozen_streams_stay_frozen():
    det = _build("srm", "model.backbone=efficientnet_tiny", "model.freeze_backbone=true")
    det.train()
    assert not det.backbone.training and not det.noise_backbone.training
    assert {id(p) for g in det.param_groups(1e-4, 0.1) for p in g["params"]} == {
        id(p) for p in det.head.parameters()
    }


def test_spsl_phase_image_ignores_the_amplitude():
    from fakescope.models.spsl import phase_only_image

    x = torch.rand(1, 3, 32, 32)
    # Scaling the image scales the amplitude spectrum only: the phase-only image is unchanged.
    torch.testing.assert_close(phase_only_image(x), phase_only_image(x * 0.5), atol=1e-4, rtol=1e-4)


def test_univfd_trains_one_linear_layer_on_the_frozen_embedding():
    det = _build("univfd", "model.backbone=clip_tiny")
    trainable = [p for g in det.param_groups(1e-4, 0.1) for p in g["params"]]
    assert sum(p.numel() for p in trainable) == det.backbone.out_dim * 2 + 2
    cached = torch.randn(3, det.backbone.out_dim)
    out = det({"clip": cached})
    torch.testing.assert_close(out["logits"], det.classifier(cached))


def test_xception_pretrained_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = load_config(None, ["model.name=xception", "model.backbone=xception", "model.pretrained=true"])
    with pytest.raises(ModelLoadError, match="legacy_xception.*model.weights_path"):
        build_detector(cfg.model, input_spec_for(cfg))


@pytest.mark.filterwarnings("ignore:Level value")  # the tiny backbone's 32-d embedding is short for db6
def test_wavelet_clip_is_pywavelets_dwt_refine_and_inverse_then_a_linear_layer():
    import pywt

    det = _build("wavelet_clip", "model.backbone=clip_tiny", "model.wavelet_levels=2").eval()
    dim = det.backbone.out_dim
    trainable = {id(p) for g in det.param_groups(1e-4, 0.1) for p in g["params"]}
    assert trainable == {id(p) for p in [*det.refine.parameters(), *det.classifier.parameters()]}
    x = torch.randn(3, dim, dtype=torch.float64)
    # Reference: PyWavelets on each embedding, the refinement on the coarsest approximation only.
    expected = []
    for row in x.numpy():
        coeffs = pywt.wavedec(row, "db6", mode="zero", level=2)
        approx = torch.from_numpy(coeffs[0]).float()
        coeffs[0] = det.refine(approx).detach().double().numpy()
        expected.append(pywt.waverec(coeffs, "db6", mode="zero")[:dim])
    with torch.no_grad():
        out = det({"clip": x.float()})
        torch.testing.assert_close(out["logits"], det.classifier(torch.tensor(np.array(expected)).float()),
                                   atol=1e-4, rtol=1e-4)  # fmt: skip
        # With an identity refinement the transform is lossless: the head sees the embedding itself.
        det.refine.weight.copy_(torch.eye(det.approx_len))
        det.refine.bias.zero_()
        torch.testing.assert_close(
            det({"clip": x.float()})["logits"], det.classifier(x.float()), atol=1e-4, rtol=1e-4
        )
    # Only the two linear layers are stored: the transform is rebuilt from the config.
    assert not any(k in det.state_dict() for k in ("analysis", "synthesis"))


def test_wavelet_clip_unknown_wavelet_is_one_config_error():
    with pytest.raises(ConfigError, match="model.wavelet: unknown wavelet 'db99'"):
        _build("wavelet_clip", "model.backbone=clip_tiny", "model.wavelet=db99")


def test_f3net_fad_bands_add_up_to_the_image_and_lfs_reads_a_flat_face_as_dc_only():
    from fakescope.models.f3net import FrequencyAwareDecomposition, LocalFrequencyStatistics

    fad = FrequencyAwareDecomposition(32)
    with torch.no_grad():
        fad.filters.weight.zero_()  # σ(0) = 0: the bands are the paper's binary base filters
    x = torch.randn(2, 3, 32, 32)
    bands = fad(x).view(2, 3, 4, 32, 32)
    torch.testing.assert_close(bands[:, :, :3].sum(2), x, atol=1e-4, rtol=1e-4)  # low + mid + high
    torch.testing.assert_close(bands[:, :, 3], x, atol=1e-4, rtol=1e-4)  # the all-pass band
    assert bands[:, :, 0].std() < bands[:, :, 2].std()  # white noise: little energy in the lowest 1/16

    lfs = LocalFrequencyStatistics(window=10, stride=2, bands=6)
    with torch.no_grad():
        lfs.filters.weight.zero_()
    flat = torch.full((1, 3, 64, 64), 0.5)
    stats = lfs(flat)
    assert stats.shape == (1, 6, 32, 32)  # half the image size, as published (299 px -> 149)
    inner = stats[0, :, 2:-2, 2:-2]  # windows clear of the zero padding
    # A flat window's DCT is its DC term alone, 10 x the grey level (orthonormal DCT).
    torch.testing.assert_close(
        inner[0], torch.full_like(inner[0], math.log10(10 * 0.5 * 255)), atol=1e-3, rtol=0
    )
    assert (inner[1:] < -3).all()  # the AC bands hold (numerically, in float32) nothing


def test_f3net_streams_train_their_widened_stems_at_the_backbone_rate_and_refuse_another_size():
    det = _build("f3net", "model.backbone=efficientnet_tiny", "data.image_size=32")
    assert det.backbone.in_chans == 12 and det.lfs_backbone.in_chans == 6
    backbone = {id(p) for p in det.backbone_parameters()}
    assert {id(p) for p in det.fad.parameters()} | {id(p) for p in det.lfs.parameters()} <= {
        id(p) for g in det.param_groups(1e-4, 0.1) for p in g["params"]
    } - backbone  # the learnable filters train at the base rate
    from fakescope.errors import InputError

    with pytest.raises(InputError, match="built for 32 px"):
        det({"image": torch.rand(1, 3, 48, 48)})
