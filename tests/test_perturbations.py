"""Test-time perturbations (AIRL Table V) and training augmentation are deterministic and do what
their names say."""

from __future__ import annotations

import numpy as np
import pytest

from fakescope.data.augment import augment_image, augment_rng
from fakescope.data.config import AugmentConfig
from fakescope.data.images import load_image_rgb
from fakescope.data.perturbations import (
    PERTURBATIONS,
    ROBUSTNESS_SWEEP,
    apply_perturbation,
    blur_kernel_size,
    get_perturbation,
)
from fakescope.errors import ConfigError


@pytest.fixture(scope="module")
def face(face_set) -> np.ndarray:
    return load_image_rgb(face_set.real[0])


def _high_freq_energy(img: np.ndarray) -> float:
    g = img.astype(np.float64).mean(axis=2)
    h, w = g.shape
    # A Hann window: the FFT sees the crop as periodic, and the jump between opposite borders would
    # otherwise fill the high band with energy that no blur removes (it was 40% of it on stand-in faces).
    g = (g - g.mean()) * np.outer(np.hanning(h), np.hanning(w))
    spec = np.abs(np.fft.fftshift(np.fft.fft2(g))) ** 2
    yy, xx = np.ogrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    return float(spec[r > min(h, w) / 4].sum())


def test_sweep_names_match_airl_table_v():
    assert ROBUSTNESS_SWEEP == (
        "clean",
        "blur_s2",
        "blur_s3",
        "jpeg_q70",
        "jpeg_q50",
        "jpeg_q20",
        "blur_s2+jpeg_q50",
    )
    assert blur_kernel_size(2) == 13 and blur_kernel_size(3) == 19


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_deterministic_and_shape_preserving(face, name):
    a = apply_perturbation(face, name)
    b = apply_perturbation(face.copy(), name)
    assert a.dtype == np.uint8 and a.shape == face.shape
    assert np.array_equal(a, b)
    if name == "clean":
        assert np.array_equal(a, face)
    else:
        assert not np.array_equal(a, face)


def test_blur_removes_high_frequencies_more_with_larger_sigma(face):
    e0 = _high_freq_energy(face)
    e2 = _high_freq_energy(apply_perturbation(face, "blur_s2"))
    e3 = _high_freq_energy(apply_perturbation(face, "blur_s3"))
    assert e3 < e2 < 0.2 * e0


def test_lower_jpeg_quality_differs_more(face):
    def err(name):
        return float(np.abs(apply_perturbation(face, name).astype(float) - face).mean())

    assert 0 < err("jpeg_q70") < err("jpeg_q50") < err("jpeg_q20")


def test_blur_then_jpeg_is_the_composition(face):
    blurred = apply_perturbation(face, "blur_s2")
    assert np.array_equal(
        apply_perturbation(face, "blur_s2+jpeg_q50"), apply_perturbation(blurred, "jpeg_q50")
    )


def test_unknown_perturbation_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown perturbation 'fog'.*jpeg_q50"):
        get_perturbation("fog")


def test_augmentation_reproducible_from_seed_epoch_index(face):
    cfg = AugmentConfig()
    a = augment_image(face, cfg, augment_rng(0, 3, 17))
    b = augment_image(face, cfg, augment_rng(0, 3, 17))
    c = augment_image(face, cfg, augment_rng(0, 4, 17))
    assert a.dtype == np.float32 and a.shape == face.shape and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_augmentation_probabilities_follow_config(face):
    # Flip always, no jitter, no noise, no JPEG: exactly the mirrored image.
    cfg = AugmentConfig(hflip_p=1.0, brightness=0, contrast=0, noise_p=0, jpeg_p=0)
    out = augment_image(face, cfg, augment_rng(1, 0, 0))
    assert np.allclose(out, face[:, ::-1] / 255.0, atol=1e-6)
    # Over many samples, flips happen about half the time with the paper's p 0.5.
    cfg = AugmentConfig(brightness=0, contrast=0, noise_p=0, jpeg_p=0)
    small = face[:8, :8]
    flips = sum(
        not np.allclose(augment_image(small, cfg, augment_rng(0, 0, i)), small / 255.0, atol=1e-6)
        for i in range(400)
    )
    assert 150 < flips < 250
