"""Block DCT high-pass filtering of face crops (AIRL (Parihar), §III-B, Eq. 1-3; Table IV sweeps the cutoff).

The AIRL frequency stream converts the image to BT.601 grayscale, cuts it into non-overlapping 8×8
blocks, takes each block's orthonormal 2-D DCT-II, zeroes the low-frequency corner (``u < c`` and
``v < c``) and reassembles the blocks into one map of the image's size. The transform is a matrix
product ``D X Dᵀ`` on every block at once, so it runs batched on any device and is differentiable.

These functions are public: the explanation module uses them for DCT residual maps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "BT601_WEIGHTS",
    "rgb_to_gray_bt601",
    "dct_matrix",
    "block_dct",
    "block_idct",
    "highpass_mask",
    "block_dct_highpass",
    "highpass_residual",
]

#: ITU-R BT.601 luma weights for R, G, B (AIRL Eq. 1).
BT601_WEIGHTS = (0.299, 0.587, 0.114)


def rgb_to_gray_bt601(images: Tensor) -> Tensor:
    """``[B,3,H,W]`` RGB -> ``[B,1,H,W]`` luma with BT.601 weights (AIRL Eq. 1). Keeps the value range."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"rgb_to_gray_bt601 expects [B,3,H,W], got {tuple(images.shape)}")
    w = torch.tensor(BT601_WEIGHTS, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * w).sum(dim=1, keepdim=True)


def dct_matrix(
    n: int = 8, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """Orthonormal DCT-II matrix ``D`` (``n×n``): ``D @ x`` is ``scipy.fft.dct(x, norm="ortho")``.

    Row ``u`` is ``C(u) sqrt(2/n) cos((2x+1) u π / 2n)`` with ``C(0) = 1/sqrt(2)``, which for ``n = 8``
    is AIRL Eq. 2's ``1/4 C(u) C(v)`` factor split over the two axes.
    """
    x = torch.arange(n, dtype=torch.float64)
    u = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    d = math.sqrt(2.0 / n) * torch.cos((2 * x + 1) * u * math.pi / (2 * n))
    d[0] /= math.sqrt(2.0)
    return d.to(dtype=dtype, device=device)


def _check_gray(gray: Tensor) -> None:
    if gray.dim() != 4 or gray.shape[1] != 1:
        raise ValueError(f"expected a grayscale batch [B,1,H,W], got {tuple(gray.shape)}")


def _pad_to_blocks(gray: Tensor, block: int) -> Tensor:
    # Sizes that are not a multiple of the block are padded by edge replication (so the padding adds no
    # artificial edge energy) and cropped back afterwards; the output always has the input's size.
    h, w = gray.shape[-2:]
    ph, pw = (-h) % block, (-w) % block
    if ph or pw:
        gray = F.pad(gray, (0, pw, 0, ph), mode="replicate")
    return gray


def _blockwise(gray: Tensor, mat_left: Tensor, mat_right: Tensor, block: int) -> Tensor:
    b, _, h, w = gray.shape
    blocks = gray.reshape(b, h // block, block, w // block, block).permute(0, 1, 3, 2, 4)
    out = mat_left @ blocks @ mat_right
    return out.permute(0, 1, 3, 2, 4).reshape(b, 1, h, w)


def block_dct(gray: Tensor, block: int = 8) -> Tensor:
    """Orthonormal 2-D DCT-II of every non-overlapping ``block×block`` tile of ``[B,1,H,W]``.

    The result has the input's shape; tile ``(i, j)``'s coefficient ``F(u, v)`` sits at pixel
    ``(i*block + u, j*block + v)`` (``u`` = vertical frequency, like ``scipy.fft.dctn`` axis 0).
    """
    _check_gray(gray)
    h, w = gray.shape[-2:]
    d = dct_matrix(block, dtype=gray.dtype, device=gray.device)
    return _blockwise(_pad_to_blocks(gray, block), d, d.T, block)[..., :h, :w]


def block_idct(coeffs: Tensor, block: int = 8) -> Tensor:
    """Inverse of :func:`block_dct` (exact when ``H`` and ``W`` are multiples of ``block``)."""
    _check_gray(coeffs)
    h, w = coeffs.shape[-2:]
    d = dct_matrix(block, dtype=coeffs.dtype, device=coeffs.device)
    return _blockwise(_pad_to_blocks(coeffs, block), d.T, d, block)[..., :h, :w]


def highpass_mask(cutoff: int, block: int = 8, device: torch.device | str | None = None) -> Tensor:
    """Boolean ``[block, block]`` mask, ``False`` exactly where ``u < cutoff and v < cutoff`` (AIRL Eq. 3)."""
    if not 0 <= cutoff <= block:
        raise ValueError(f"DCT cutoff must lie in [0, {block}], got {cutoff}")
    idx = torch.arange(block, device=device)
    low = (idx.unsqueeze(1) < cutoff) & (idx.unsqueeze(0) < cutoff)
    return ~low


def _tile_mask(h: int, w: int, cutoff: int, block: int, device: torch.device) -> Tensor:
    mask = highpass_mask(cutoff, block, device=device)
    reps = (-(-h // block), -(-w // block))
    return mask.repeat(*reps)[:h, :w]


def block_dct_highpass(gray: Tensor, cutoff: int = 4, log_magnitude: bool = False, block: int = 8) -> Tensor:
    """AIRL's frequency-stream input: block DCT of ``gray`` with the low ``cutoff×cutoff`` corner of
    every block zeroed, reassembled into a ``[B,1,H,W]`` map (AIRL §III-B, Eq. 2-3).

    ``log_magnitude=False`` (the default, as in the paper) returns the raw signed coefficients of the
    input's value range. ``log_magnitude=True`` returns ``log(1 + |F|)`` with ``F`` computed on 0-255
    intensities (JPEG's scale, so the log compresses rather than linearises); removed coefficients
    stay exactly 0 in both modes.
    """
    coeffs = block_dct(gray, block)
    if log_magnitude:
        coeffs = torch.log1p(coeffs.abs() * 255.0)
    mask = _tile_mask(gray.shape[-2], gray.shape[-1], cutoff, block, gray.device)
    return coeffs * mask.to(coeffs.dtype)


def highpass_residual(gray: Tensor, cutoff: int = 4, block: int = 8) -> Tensor:
    """The spatial image that the kept coefficients encode: ``block_idct(block_dct_highpass(gray))``.

    Useful for explanations: it shows in pixel space what the frequency stream sees.
    """
    return block_idct(block_dct_highpass(gray, cutoff, log_magnitude=False, block=block), block)
