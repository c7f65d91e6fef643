"""Every YAML in configs/ loads, names a registered detector, and builds; the paper configs ask for
the papers' backbones and the CPU configs for the real pretrained lite0 stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fakescope.config import load_config
from fakescope.inference.spec import input_spec_for
from fakescope.models.registry import build_detector, list_detectors

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PAPER = sorted(CONFIGS.glob("*.yaml"))
CPU = sorted((CONFIGS / "cpu").glob("*.yaml"))
# Heavy real backbones are swapped for their tiny test versions to keep this fast; the real
# architectures are built in tests/test_models.py (EfficientNet-B4) and by `fakescope models`.
TINY = {"clip_vit_l14": "clip_tiny", "efficientnet_b4": "efficientnet_tiny", "xception": "efficientnet_tiny"}


def test_every_detector_has_a_paper_config_and_a_cpu_config():
    names = set(list_detectors())
    assert {p.stem for p in PAPER} == names
    assert {p.stem for p in CPU} == names


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_config_loads_and_builds(path):
    cfg = load_config(path)
    assert cfg.model.name == path.stem
    tiny_backbone = TINY.get(cfg.model.backbone, cfg.model.backbone)
    tiny = load_config(
        path, ["model.pretrained=false", f"model.backbone={tiny_backbone}", "data.image_size=32"]
    )
    det = build_detector(tiny.model, input_spec_for(tiny))
    det_cls = type(det)
    det.eval()
    with torch.no_grad():
        out = det(
            {
                "image": torch.rand(2, 3, 32, 32),
                "heatmaps": torch.randn(2, cfg.inr.depth, 32, 32),
                "label": torch.tensor([0, 1]),
            }
        )
    assert out["logits"].shape == (2, 2)
    assert det_cls.name == path.stem
    if det_cls.family == "AIRL" and path.stem != "airl_freq":
        assert cfg.model.backbone == "efficientnet_b4" and cfg.model.pretrained
    if det_cls.family == "INFER" and path.stem != "heatmaps":
        assert cfg.model.backbone == "clip_vit_l14" and cfg.model.pretrained
    if path.stem in ("xception", "srm", "f3net"):
        assert cfg.model.backbone == "xception" and cfg.model.pretrained
    if path.stem == "wavelet_clip":
        assert (cfg.model.backbone, cfg.model.wavelet, cfg.model.wavelet_levels) == ("clip_vit_l14", "db6", 3)
        assert (cfg.train.lr, cfg.train.min_lr, cfg.train.weight_decay) == (1e-5, 1e-5, 5e-4)
    if path.stem == "univfd":
        assert (
            cfg.model.backbone == "clip_vit_l14"
            and cfg.model.pretrained
            and cfg.model.freeze_backbone is None
        )
    if path.stem == "airl":
        assert cfg.train.supcon_weight == 0.5 and cfg.train.supcon_temperature == 0.07
        assert cfg.model.dct_cutoff == 4


@pytest.mark.parametrize("path", CPU, ids=lambda p: f"cpu-{p.stem}")
def test_cpu_config_builds_with_real_lite0_weights(path):
    cfg = load_config(path)
    assert cfg.data.image_size <= 160
    det = build_detector(cfg.model, input_spec_for(cfg))
    if det.backbone is not None:
        assert cfg.model.backbone == "lite0" and det.backbone.pretrained
    if "heatmaps" in det.inputs:
        assert cfg.inr.resolution == 64
    batch = {
        "image": torch.rand(2, 3, cfg.data.image_size, cfg.data.image_size),
        "heatmaps": torch.randn(2, cfg.inr.depth, cfg.inr.resolution, cfg.inr.resolution),
        "label": torch.tensor([0, 1]),
    }
    det.eval()
    with torch.no_grad():
        out = det(batch)
    assert out["logits"].shape == (2, 2)


GPU = sorted((CONFIGS / "gpu").glob("*.yaml"))


@pytest.mark.parametrize("path", GPU, ids=lambda p: f"gpu-{p.stem}")
def test_gpu_config_is_its_cpu_recipe_at_the_papers_size_and_budget(path):
    """configs/gpu changes only size, epochs, patience, workers and device: the rest is the CPU recipe,
    so a GPU figure and a CPU figure differ by budget alone."""
    gpu, cpu = load_config(path), load_config(CONFIGS / "cpu" / path.name)
    assert (gpu.device, gpu.data.image_size, gpu.train.epochs, gpu.train.early_stopping_patience) == (
        "cuda",
        224,
        40,
        10,
    )  # AIRL §III-G and §IV-B
    same = lambda c: c.model_dump(exclude={"name": True, "device": True, "data": {"image_size", "num_workers"},  # noqa: E731
                                           "train": {"epochs", "early_stopping_patience"}})  # fmt: skip
    assert same(gpu) == same(cpu)
    cpu_built = load_config(path, ["device=cpu"])
    build_detector(cpu_built.model, input_spec_for(cpu_built))
