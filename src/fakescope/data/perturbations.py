"""Deterministic test-time perturbations of a face crop (AIRL Table V; docs/design.md, "Robustness").

Each perturbation maps a uint8 ``HxWx3`` RGB crop to a new uint8 crop of the same shape, before any
normalisation. They take no random state, so the same input always gives the same output, and a
robustness sweep can be re-run and compared bit for bit.

- Gaussian blur: ``cv2.GaussianBlur`` with sigma ``s`` in pixels of the crop, a square kernel of side
  ``2 * ceil(3 s) + 1`` (covers +-3 sigma, 99.7% of the mass) and reflect-101 borders.
- JPEG: an in-memory round trip through Pillow's encoder at quality ``Q`` with its default chroma
  subsampling (4:2:0) and no optimisation pass, then decoding back to RGB.
- ``blur_s2+jpeg_q50``: blur sigma 2, then JPEG Q 50 (the "Blur + JPEG" row of AIRL Table V).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

from fakescope.errors import ConfigError

__all__ = [
    "PERTURBATIONS",
    "ROBUSTNESS_SWEEP",
    "gaussian_blur",
    "jpeg_compress",
    "get_perturbation",
    "apply_perturbation",
    "blur_kernel_size",
]

Perturbation = Callable[[np.ndarray], np.ndarray]


def blur_kernel_size(sigma: float) -> int:
    """Side of the square Gaussian kernel used for ``sigma``: ``2 * ceil(3 sigma) + 1``."""
    return 2 * math.ceil(3 * sigma) + 1


def _check(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = getattr(image, "shape", type(image).__name__), getattr(image, "dtype", "")
        raise ValueError(f"perturbations take a uint8 HxWx3 RGB array, got {got}")
    return np.ascontiguousarray(image)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (kernel rule in the module docstring)."""
    image = _check(image)
    k = blur_kernel_size(sigma)
    return cv2.GaussianBlur(image, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at ``quality`` (Pillow, in memory) and decode back to uint8 RGB."""
    image = _check(image)
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _identity(image: np.ndarray) -> np.ndarray:
    return _check(image).copy()


PERTURBATIONS: dict[str, Perturbation] = {
    "clean": _identity,
    "blur_s2": lambda im: gaussian_blur(im, 2.0),
    "blur_s3": lambda im: gaussian_blur(im, 3.0),
    "jpeg_q70": lambda im: jpeg_compress(im, 70),
    "jpeg_q50": lambda im: jpeg_compress(im, 50),
    "jpeg_q20": lambda im: jpeg_compress(im, 20),
    "blur_s2+jpeg_q50": lambda im: jpeg_compress(gaussian_blur(im, 2.0), 50),
}

# The order of AIRL Table V, plus JPEG Q 20 (its §VI-B failure case).
ROBUSTNESS_SWEEP: tuple[str, ...] = tuple(PERTURBATIONS)


def get_perturbation(name: str) -> Perturbation:
    """Look up a perturbation by name; an unknown name is a :class:`ConfigError` listing the choices."""
    try:
        return PERTURBATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}") from None


def apply_perturbation(image: np.ndarray, name: str) -> np.ndarray:
    return get_perturbation(name)(image)
