"""NPR (Tan et al., CVPR 2024, §3): the residual is what the paper defines, the network is ResNet-50's
first two stages, and a saved NPR run loads and scores as it did in training. Overfitting 32 real faces
is checked with every other family in tests/test_overfit.py."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fakescope.config import load_config
from fakescope.inference.spec import input_spec_for
from fakescope.models.npr import npr_residual
from fakescope.models.registry import build_detector, list_detectors


def _blocks(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A random image made of constant 2×2 blocks (a nearest-neighbour 2× up-sampling)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(2, 3, (h + 1) // 2, (w + 1) // 2, generator=g)
    return small.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :h, :w]


def _detector(*extra: str):
    cfg = load_config(None, ["model.name=npr", *extra])
    return build_detector(cfg.model, input_spec_for(cfg))


@pytest.mark.parametrize(("h", "w"), [(32, 32), (33, 31)])
def test_npr_residual_is_zero_on_2x2_blocks_and_not_otherwise(h, w):
    blocks = _blocks(h, w)
    assert npr_residual(blocks).abs().max() == 0
    # The same picture one pixel off the grid: its blocks straddle two of NPR's windows.
    shifted = F.pad(blocks, (1, 0, 1, 0), mode="replicate")[..., :h, :w]
    assert npr_residual(shifted).abs().max() > 0.1
    noisy = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(1))
    r = npr_residual(noisy)
    assert r.shape == noisy.shape
    # Zero exactly at each block's anchor (top-left pixel), non-zero at the three other pixels.
    assert r[..., ::2, ::2].abs().max() == 0
    assert (r[..., 1::2, :].abs() > 0).float().mean() > 0.99


def test_npr_residual_equals_the_authors_interpolate_twice_at_even_sizes():
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(2))
    down = F.interpolate(x, scale_factor=0.5, mode="nearest", recompute_scale_factor=True)
    up = F.interpolate(down, scale_factor=2.0, mode="nearest", recompute_scale_factor=True)
    torch.testing.assert_close(npr_residual(x), x - up, rtol=0, atol=0)


def test_npr_is_registered_and_blind_to_images_made_of_2x2_blocks():
    """The network sees the residual alone: two different block images score the same, a natural
    image differently."""
    assert "npr" in list_detectors()
    torch.manual_seed(0)
    det = _detector().eval()
    with torch.no_grad():
        a = det({"image": _blocks(64, 64, seed=3)})["logits"]
        b = det({"image": _blocks(64, 64, seed=4)})["logits"]
        c = det({"image": torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))})["logits"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 1e-4


def test_npr_network_is_resnet50_cut_after_its_second_stage():
    from torchvision.models import resnet50

    det = _detector()
    ref = resnet50()
    for ours, theirs in ((det.layer1, ref.layer1), (det.layer2, ref.layer2)):
        assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    stem = 3 * 64 * 3 * 3 + 2 * 64  # the 3×3 stride-2 conv and its BatchNorm
    stages = sum(p.numel() for p in [*ref.layer1.parameters(), *ref.layer2.parameters()])
    assert sum(p.numel() for p in det.parameters()) == stem + stages + 512 * 2 + 2
    assert det.backbone is None and det.gradcam_layer() is det.layer2
    with torch.no_grad():
        out = det.eval()({"image": torch.rand(2, 3, 57, 64)})
    assert out["logits"].shape == (2, 2) and out["features"].shape == (2, 512)


def test_npr_paper_config_is_the_published_setup_and_grad_cam_reads_its_last_stage():
    from pathlib import Path

    from fakescope.explain.gradcam import gradcam

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "npr.yaml")
    t = cfg.train
    assert (cfg.data.image_size, t.batch_size, t.lr, t.weight_decay, t.epochs) == (224, 32, 2e-4, 0.0, 50)
    assert t.augment.hflip_p == 0.5 and t.augment.jpeg_p == t.augment.noise_p == t.augment.blur_p == 0.0
    assert t.augment.brightness == t.augment.contrast == 0.0
    torch.manual_seed(0)
    maps = gradcam(_detector().eval(), {"image": torch.rand(2, 3, 64, 64)})
    assert maps.shape == (2, 64, 64) and maps.min() >= 0.0 and maps.max() <= 1.0


def test_a_saved_npr_run_loads_and_scores_as_in_training(face_set, tmp_path):
    """Train two steps with the real trainer; the saved run loads in ``fakescope.evaluate`` (scoring the
    test split) and in ``fakescope.load``, and both give one face the same score."""
    import fakescope
    from fakescope.data.config import SplitConfig
    from fakescope.data.manifest import read_manifest, split_by_group, write_manifest
    from fakescope.eval.evaluate import evaluate_runs
    from fakescope.train.trainer import train

    rows = read_manifest(face_set.manifest)
    groups = list(dict.fromkeys(r.group for r in rows))[:40]
    sub = [r for r in rows if r.group in set(groups)]
    manifest = write_manifest(sub, tmp_path / "manifest.csv", relative_to=tmp_path / "nowhere")
    cfg = load_config(
        None,
        ["model.name=npr", f"data.manifest={manifest}", "data.image_size=64", "train.epochs=1",
         "train.batch_size=8", "train.max_steps_per_epoch=2", "train.progress=false", "eval.bootstrap=0",
         "device=cpu", "seed=0", f"data.crop_cache_dir={tmp_path / 'crops'}"],
    )  # fmt: skip
    run = tmp_path / "run"
    train(cfg, run)
    meta = json.loads((run / "checkpoints" / "best.json").read_text())
    assert meta["detector"] == "npr"
    summary = evaluate_runs([run], [str(manifest)], out_dir=tmp_path / "eval", split="test", plots=False,
                            device="cpu", progress=False)  # fmt: skip
    rec = summary["cross_dataset"][0]
    assert rec["n"] == len(split_by_group(sub, SplitConfig())["test"]) and 0.0 <= rec["auc"] <= 1.0
    with open(next((tmp_path / "eval" / "predictions").glob("*.csv")), newline="") as fh:
        preds = list(csv.DictReader(fh))
    scores = np.array([float(p["score"]) for p in preds])
    assert np.isfinite(scores).all() and scores.std() > 0, "every test face got the same score"
    face = fakescope.load(run).predict(preds[0]["path"], aligned=True).faces[0]
    assert face.score == pytest.approx(scores[0], abs=1e-5)
