"""Runs saved before detectors took a ``ModelConfig`` plus an ``InputSpec`` still load and score the same.

Until then a detector was built from the whole experiment config (``build_detector(cfg)``). The saved
config did not change with it (a run folder holds the same ``config.yaml`` and checkpoint), but a
detector that took its crop size or heatmap count from the wrong place would no longer fit the saved
weights, or would score differently. tests/fixtures/before_input_spec/ holds what the old code wrote
and scored (see make_fixtures.py there): two run folders, and for every registered detector its
state-dict signature and its logits with deterministic weights.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

import fakescope
from fakescope.config import load_config
from fakescope.inference.checkpoint import load_detector
from fakescope.inference.spec import input_spec_for
from fakescope.models.registry import build_detector, list_detectors
from old_run_support import (
    FIXTURES,
    HEATMAP_COUNT,
    crops,
    fill_deterministic,
    heatmaps,
    images,
    signature,
    tiny_overrides,
)

OLD_RUNS = ["heatmaps", "airl_freq"]
DETECTORS = json.loads((FIXTURES / "detectors.json").read_text())


@pytest.fixture
def old_run(request, tmp_path):
    """A copy of an old run folder (loading must not depend on, or touch, the fixture's place)."""
    run = tmp_path / request.param
    shutil.copytree(FIXTURES / "runs" / request.param, run)
    return run


def _batch() -> dict[str, torch.Tensor]:
    return {"image": images(), "heatmaps": heatmaps()}


@pytest.mark.parametrize("old_run", OLD_RUNS, indirect=True)
def test_an_old_run_folder_loads_and_gives_the_logits_it_gave_before(old_run):
    expected = json.loads((old_run / "expected.json").read_text())
    detector, cfg, meta = load_detector(old_run)
    assert meta["detector"] == old_run.name and cfg.model.name == old_run.name
    with torch.no_grad():
        logits = detector(_batch())["logits"]
    np.testing.assert_allclose(logits.numpy(), np.array(expected["logits"]), rtol=1e-5, atol=1e-6)


#: (section, field, default): config fields added after the fixtures were written, off by default
ADDED_SINCE = [
    ("train", "balance_sources", False),
    ("train", "sbi_augment", "strong"),
    ("train", "amp_fp32_depthwise", True),
    ("model", "members", []),
    ("model", "member_temperatures", []),
]


@pytest.mark.parametrize("old_run", OLD_RUNS, indirect=True)
def test_an_old_run_config_yaml_reads_back_unchanged(old_run):
    """The config format did not change: today's schema reads the old file and writes the same values."""
    saved = yaml.safe_load((old_run / "config.yaml").read_text())
    cfg = load_config(old_run / "config.yaml")
    dumped = cfg.model_dump(mode="json")
    # Fields added since, whose defaults are the old behaviour, are the only difference.
    for section, key, default in ADDED_SINCE:
        assert dumped[section].pop(key) == default and key not in saved[section]
    assert dumped == saved
    assert saved == json.loads((old_run / "checkpoints" / "best.json").read_text())["config"]
    assert input_spec_for(cfg).heatmap_count == HEATMAP_COUNT


@pytest.mark.parametrize("old_run", ["airl_freq"], indirect=True)
def test_an_old_run_scores_the_same_crops_the_same_through_fakescope_load(old_run):
    expected = json.loads((old_run / "expected.json").read_text())
    scores, _, _ = fakescope.load(old_run).score_crops(crops())
    np.testing.assert_allclose(scores, np.array(expected["scores"]), rtol=1e-5, atol=1e-6)


def test_the_old_heatmap_run_does_not_fit_a_detector_built_for_another_heatmap_count(tmp_path):
    """The check above can fail: the old weights refuse a detector built with the default three maps."""
    from fakescope.errors import ModelLoadError

    run = tmp_path / "heatmaps"
    shutil.copytree(FIXTURES / "runs" / "heatmaps", run)
    meta_path = run / "checkpoints" / "best.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["inr"]["depth"] = 3
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="weights do not fit this detector: .*wrong shape"):
        load_detector(run)


def test_every_detector_of_the_fixtures_is_still_registered():
    assert set(DETECTORS) <= set(list_detectors())


@pytest.mark.parametrize("name", [n for n in list_detectors() if n in DETECTORS])
def test_every_detector_built_from_an_old_config_matches_the_old_build(name):
    """Same state-dict keys, shapes and dtypes as the old ``build_detector(cfg)``, and with the same
    deterministic weights the same logits, at 32 px with two INR heatmaps (detectors registered after
    the fixtures were written have no old build to match)."""
    old = DETECTORS[name]
    cfg = load_config(None, tiny_overrides(name))
    detector = build_detector(cfg.model, input_spec_for(cfg))
    assert signature(detector.state_dict()) == {"entries": old["entries"], "sha256": old["sha256"]}
    fill_deterministic(detector)
    with torch.no_grad():
        logits = detector.eval()(_batch())["logits"]
    np.testing.assert_allclose(logits.numpy(), np.array(old["logits"]), rtol=1e-4, atol=1e-5)
