"""DCT coefficient-importance map (fakescope.explain.dct_importance, benchmarks/dct_importance.py): the
gradient reaches exactly the coefficients a detector can see, and the benchmark maps a trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench_support import load_benchmark
from fakescope.config import load_config
from fakescope.explain.dct_importance import dct_importance, importance_figure
from fakescope.inference.spec import input_spec_for
from fakescope.models.registry import build_detector

REPO = Path(__file__).resolve().parents[1]


def _detector(name: str, cutoff: int = 4):
    torch.manual_seed(0)
    cfg = load_config(None, [f"model.name={name}", "model.backbone=efficientnet_tiny", "model.pretrained=false",
                             f"model.dct_cutoff={cutoff}"])  # fmt: skip
    return build_detector(cfg.model, input_spec_for(cfg))


@pytest.mark.parametrize("cutoff", [2, 4])
def test_frequency_only_model_gets_no_importance_in_the_removed_corner(cutoff):
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    grid, n = dct_importance(_detector("airl_freq", cutoff), [images[:1], images[1:]])
    assert n == 2 and grid.shape == (8, 8)
    # Zero up to float32 rounding of the DCT round trip (~1e-9 here against ~1e-1 outside the corner).
    assert np.all(grid[:cutoff, :cutoff] < 1e-6 * grid.max()), "the DCT stream never sees u, v < cutoff"
    outside = np.ones((8, 8), bool)
    outside[:cutoff, :cutoff] = False
    assert np.all(grid[outside] > 0)


def test_rgb_stream_makes_the_low_corner_count():
    grid, _ = dct_importance(_detector("airl"), [torch.rand(2, 3, 32, 32)])
    assert grid[0, 0] > 0 and grid[:4, :4].sum() > 0
    fig = importance_figure(grid, "t", cutoff=4)
    assert len(fig.axes) == 2  # the grid and its colour bar


def test_rejects_sizes_that_are_not_whole_blocks():
    with pytest.raises(ValueError, match="multiples of 8"):
        dct_importance(_detector("airl_freq"), [torch.rand(1, 3, 30, 30)])


def test_benchmark_maps_a_tiny_trained_run(face_set, tmp_path):
    from fakescope.train.trainer import train

    cfg = load_config(REPO / "configs" / "cpu" / "airl_freq.yaml",
                      [f"data.manifest={face_set.manifest}", "data.image_size=32",
                       "data.max_per_split=16", "train.epochs=1", "train.batch_size=8", "train.progress=false",
                       "eval.bootstrap=0", f"data.crop_cache_dir={tmp_path / 'crops'}"])  # fmt: skip
    train(cfg, tmp_path / "run")
    assert any((tmp_path / "crops").iterdir())  # the crop cache, not the config's cache/crops in the checkout
    bench = load_benchmark("dct_importance")
    assert bench.main(["--run", str(tmp_path / "run"), "--data", str(face_set.root),
                       "--max-images", "8", "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    rec = json.loads((tmp_path / "out" / "run.json").read_text())
    assert rec["images"] == 8 and rec["split"] == "test" and rec["share_in_removed_corner"] < 1e-6
    assert (tmp_path / "out" / "run.png").stat().st_size > 1000
