"""AIRL's training augmentations (AIRL (Parihar), §III-G "Augmentation"; config ``train.augment``).

Horizontal flip (p 0.5), brightness and contrast jitter (+-20 %, always applied), Gaussian noise
(sigma 0.01 on [0, 1] pixels, p 0.2) and a JPEG round trip at a quality drawn from 70-100 (p 0.3),
applied in that order, the order the paper lists them. Optionally (``blur_p``, ``rescale_p``; off by
default) a Gaussian blur and a down-and-up rescale come right after the flip, before the JPEG round trip,
so that image softness stops telling one source's reals from another's fakes (Wang et al., CVPR 2020,
§4.2: blur σ ~ U[0, 3] and JPEG quality ~ U[30, 100], each at p 0.5).

Every random draw comes from a generator seeded by ``(seed, epoch, index)``, so sample ``index`` in
``epoch`` is augmented the same way whatever the worker count, the DDP rank or an interruption
(resume replays exactly). Brightness scales every pixel; contrast blends with the image's mean BT.601
luma, as torchvision's ``adjust_contrast`` does.
"""

from __future__ import annotations

import cv2
import numpy as np

from fakescope.data.config import AugmentConfig
from fakescope.data.perturbations import gaussian_blur, jpeg_compress

__all__ = ["augment_rng", "augment_image"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def augment_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one sample's augmentation draws."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])


def augment_image(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Augment a uint8 HxWx3 RGB crop; returns float32 HxWx3 in [0, 1].

    The number of draws is fixed (every probability and factor is drawn whether used or not), so one
    sample's draws never shift another setting's."""
    u_flip, u_noise, u_jpeg = rng.random(3)
    b = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
    quality = int(rng.integers(cfg.jpeg_quality_min, cfg.jpeg_quality_max + 1))
    noise_seed = int(rng.integers(0, 2**31 - 1))
    # Drawn after the original draws, so a config without blur or rescale augments exactly as before.
    u_blur, u_rescale = rng.random(2)
    sigma = rng.uniform(0.0, cfg.blur_sigma_max)
    scale = rng.uniform(cfg.rescale_min, 1.0)

    out = image
    if u_flip < cfg.hflip_p:
        out = out[:, ::-1]
    if u_blur < cfg.blur_p and sigma > 0:
        out = gaussian_blur(np.ascontiguousarray(out), float(sigma))
    if u_rescale < cfg.rescale_p and scale < 1.0:
        out = _rescale(np.ascontiguousarray(out), float(scale))
    x = out.astype(np.float32) / 255.0
    x = np.clip(x * b, 0.0, 1.0)
    mean = float((x @ _LUMA).mean())
    x = np.clip((x - mean) * c + mean, 0.0, 1.0)
    if u_noise < cfg.noise_p and cfg.noise_std > 0:
        noise = np.random.default_rng(noise_seed).normal(0.0, cfg.noise_std, size=x.shape).astype(np.float32)
        x = np.clip(x + noise, 0.0, 1.0)
    if u_jpeg < cfg.jpeg_p:
        u8 = np.round(x * 255.0).astype(np.uint8)
        x = jpeg_compress(u8, quality).astype(np.float32) / 255.0
    return np.ascontiguousarray(x, dtype=np.float32)


def _rescale(image: np.ndarray, scale: float) -> np.ndarray:
    """Down-scale by ``scale`` (area averaging) and back up to the original size (bilinear): the detail a
    low-resolution source loses, without changing the crop's size."""
    h, w = image.shape[:2]
    small = cv2.resize(
        image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
