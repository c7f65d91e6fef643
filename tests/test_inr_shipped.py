"""The shipped learned INR initialisation (fakescope.inr.shipped; issue 15): what a new run starts from
by default, what old runs keep, and that it does cut the fitting steps on faces it never saw."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from fakescope.errors import ConfigError, InputError
from fakescope.inr import HeatmapCache, InrConfig
from fakescope.inr.cache import config_key
from fakescope.inr.config import INIT_MATCHING_FIELDS
from fakescope.inr.engine import fit_resized, resize_for_inr
from fakescope.inr.models import init_params, load_init
from fakescope.inr.shipped import SEEDED_LR, SHIPPED_RESOLUTIONS, fit_lr, resolve_init_file, shipped_init_path


@pytest.mark.parametrize("res", SHIPPED_RESOLUTIONS)
def test_each_supported_resolution_ships_a_small_init_with_its_provenance(res):
    path = shipped_init_path(InrConfig(resolution=res))
    assert path is not None and path.name == f"inr_init_siren_{res}px.safetensors"
    assert path.stat().st_size < 300_000  # a few hundred KB for all three together
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    assert int(meta["resolution"]) == res
    made_for = json.loads(meta["inr"])
    assert made_for == {k: getattr(InrConfig(), k) for k in INIT_MATCHING_FIELDS}
    provenance = json.loads(meta["provenance"])
    assert "dfdc" in provenance["data"].lower() and "train" in provenance["data"]
    assert "learn-inr-init" in provenance["command"] and f"inr.resolution={res}" in provenance["command"]
    holdout = json.loads(meta["holdout"])
    assert holdout["learned_init"]["mean_steps"] < holdout["seeded_init"]["mean_steps"]
    assert float(meta["fit_lr"]) == pytest.approx(3e-3) and "validation" in meta["fit_lr_reason"]
    # It is a different init from the seeded one, and it loads for the default INR.
    learned = load_init(InrConfig(resolution=res))
    assert not torch.equal(learned.weights[1], init_params(InrConfig(resolution=res)).weights[1])


def test_defaults_start_from_the_nearest_shipped_init_at_its_own_rate():
    assert resolve_init_file(InrConfig(resolution=64)).name == "inr_init_siren_64px.safetensors"
    assert resolve_init_file(InrConfig(resolution=32)).name == "inr_init_siren_64px.safetensors"
    assert resolve_init_file(InrConfig(resolution=112)).name == "inr_init_siren_128px.safetensors"
    assert resolve_init_file(InrConfig(resolution=512)).name == "inr_init_siren_224px.safetensors"
    assert fit_lr(InrConfig()) == pytest.approx(3e-3)  # the shipped files' fit_lr, chosen on validation
    assert fit_lr(InrConfig(lr=2e-3)) == pytest.approx(2e-3)  # an explicit rate always wins


@pytest.mark.parametrize("change", [{"activation": "gauss"}, {"activation": "wire"}, {"width": 64},
                                    {"depth": 4}, {"target_range": "unit"}])  # fmt: skip
def test_another_inr_falls_back_to_its_seeded_init_and_shares_its_cache(change, tmp_path):
    cfg = InrConfig(resolution=16, **change)
    assert resolve_init_file(cfg) is None and fit_lr(cfg) == SEEDED_LR
    explicit = InrConfig(resolution=16, init_file=None, lr=SEEDED_LR, **change)
    assert config_key(cfg) == config_key(explicit)
    assert HeatmapCache(tmp_path, cfg).root == HeatmapCache(tmp_path, explicit).root


def test_old_run_configs_keep_the_seeded_init_and_their_cache_key():
    # What a run made before the shipped init records: init_file null, lr 0.003.
    old = InrConfig.model_validate({"resolution": 64, "init_file": None, "lr": 0.003})
    assert resolve_init_file(old) is None and fit_lr(old) == pytest.approx(3e-3)
    assert torch.equal(load_init(old).weights[0], init_params(old).weights[0])
    assert config_key(old) != config_key(InrConfig(resolution=64))  # the new default makes other maps


def test_an_unreadable_init_file_is_one_clear_error_at_its_own_rate(tmp_path):
    # lr null reads the file's rate before any fit: a broken file must still be one InputError line.
    bad = tmp_path / "init.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="init.safetensors: not a readable safetensors initialisation"):
        HeatmapCache(tmp_path / "cache", InrConfig(resolution=16, init_file=str(bad)))


def test_a_missing_shipped_file_is_one_clear_error(monkeypatch, tmp_path):
    import fakescope.inr.shipped as shipped

    monkeypatch.setattr(
        shipped, "_shipped_file", lambda res: tmp_path / f"inr_init_siren_{res}px.safetensors"
    )
    with pytest.raises(ConfigError, match="missing from this installation.*inr.init_file=null"):
        load_init(InrConfig(resolution=64))


# benchmarks/inr_shipped_init.py: 51.3 -> 27.7 mean steps on 6 other DFDC validation faces at 64 px.
STEP_RATIO_64 = 0.75


def _fit_steps(faces, cfg):
    return [fit_resized([f], cfg, torch.device("cpu"))[0].record for f in faces]


@pytest.mark.shared_data
def test_the_shipped_init_cuts_the_steps_on_video_faces_it_never_saw(shared_data):
    """DFDC faces of the validation split (other people than the train split it was learned on), 64 px."""
    from fakescope.data.config import DataConfig
    from fakescope.data.images import load_image_rgb
    from fakescope.data.splits import load_splits

    rows = load_splits(DataConfig(manifest=str(shared_data / "dfdc-faces" / "manifest.csv")))["val"][-4:]
    faces = [resize_for_inr(load_image_rgb(r.path), 64) for r in rows]
    seeded = _fit_steps(faces, InrConfig(resolution=64, init_file=None))
    shipped = _fit_steps(faces, InrConfig(resolution=64))
    assert all(r.reached for r in seeded + shipped)
    assert np.mean([r.steps for r in shipped]) < STEP_RATIO_64 * np.mean([r.steps for r in seeded])


@pytest.mark.shared_data
def test_the_shipped_init_is_no_slower_on_sharp_photographs(shared_data):
    """FFHQ photographs (sharp, not video frames; another source) at 128 px: at its inner rate 1e-3 the
    init needed 3-5x the seeded init's steps here, which is why the shipped files record fit_lr 3e-3."""
    from fakescope.data.images import load_image_rgb
    from fakescope.data.manifest import read_manifest

    rows = [r for r in read_manifest(shared_data / "ffhq-stylegan" / "manifest.csv") if r.label == 0][200:202]
    faces = [resize_for_inr(load_image_rgb(r.path), 128) for r in rows]
    seeded = _fit_steps(faces, InrConfig(resolution=128, init_file=None))
    shipped = _fit_steps(faces, InrConfig(resolution=128))
    assert all(r.reached for r in seeded + shipped)
    assert np.mean([r.steps for r in shipped]) < 1.15 * np.mean([r.steps for r in seeded])
