"""INFER trains without augmentation (INFER §2.1); AIRL with it (AIRL (Parihar), §IV-B).
``train.augment: auto`` gives each family its paper's choice, and a mixed setting is warned about."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fakescope.config import config_from_dict
from fakescope.data.config import AugmentConfig
from fakescope.models.registry import detector_class, list_detectors
from fakescope.train.setup import resolve_augment


def _inputs(name: str) -> frozenset[str]:
    return frozenset(detector_class(name).inputs)


@pytest.mark.parametrize("name", list_detectors())
def test_auto_is_none_for_stored_input_detectors_and_airl_augmentation_otherwise(name):
    cfg = config_from_dict({"model": {"name": name}})
    assert cfg.train.augment == "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aug = resolve_augment(cfg, _inputs(name))
    if {"heatmaps", "clip"} & _inputs(name):
        assert aug is None
    else:
        assert aug == AugmentConfig()


def test_the_infer_family_defaults_to_no_augmentation():
    cfg = config_from_dict({"model": {"name": "infer"}})
    assert resolve_augment(cfg, _inputs("infer")) is None


def test_explicit_augmentation_for_the_infer_family_is_warned_about():
    cfg = config_from_dict({"model": {"name": "infer"}, "train": {"augment": {"hflip_p": 0.5}}})
    with pytest.warns(UserWarning, match="computed once from un-augmented crops"):
        aug = resolve_augment(cfg, _inputs("infer"))
    assert aug is not None and aug.hflip_p == 0.5


def test_null_turns_augmentation_off_for_airl():
    cfg = config_from_dict({"model": {"name": "airl"}, "train": {"augment": None}})
    assert resolve_augment(cfg, _inputs("airl")) is None


def test_blur_and_rescale_are_off_by_default_and_leave_the_old_draws_alone():
    from fakescope.data.augment import augment_image, augment_rng
    from fakescope.data.config import AugmentConfig

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    base = AugmentConfig()
    on = AugmentConfig(blur_p=1.0, rescale_p=1.0, rescale_min=0.25, blur_sigma_max=3.0)
    same = [np.array_equal(augment_image(img, base, augment_rng(7, 0, i)),
                           augment_image(img, base.model_copy(update={"blur_sigma_max": 1.0}), augment_rng(7, 0, i)))
            for i in range(8)]  # fmt: skip
    assert all(same)
    # Switched on, the augmented crops lose high-frequency energy (noise off, so only blur/rescale act).
    quiet = {"noise_p": 0.0, "jpeg_p": 0.0, "brightness": 0.0, "contrast": 0.0, "hflip_p": 0.0}
    a = np.stack([augment_image(img, base.model_copy(update=quiet), augment_rng(7, 0, i)) for i in range(16)])
    b = np.stack([augment_image(img, on.model_copy(update=quiet), augment_rng(7, 0, i)) for i in range(16)])
    assert np.abs(np.diff(b, axis=1)).mean() < 0.7 * np.abs(np.diff(a, axis=1)).mean()
    assert b.shape == a.shape
