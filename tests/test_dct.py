"""Block DCT high-pass (AIRL (Parihar), §III-B): agrees with scipy per block, masks exactly u<c, v<c."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from fakescope.models.dct import (
    block_dct,
    block_dct_highpass,
    block_idct,
    highpass_mask,
    highpass_residual,
    rgb_to_gray_bt601,
)


def test_block_dct_matches_scipy_per_block():
    rng = np.random.default_rng(0)
    gray = rng.random((2, 1, 24, 32))
    out = block_dct(torch.from_numpy(gray)).numpy()
    for b in range(2):
        for i in range(0, 24, 8):
            for j in range(0, 32, 8):
                ref = scipy.fft.dctn(gray[b, 0, i : i + 8, j : j + 8], norm="ortho")
                np.testing.assert_allclose(out[b, 0, i : i + 8, j : j + 8], ref, atol=1e-10)


def test_block_idct_inverts_block_dct():
    gray = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(block_idct(block_dct(gray)), gray)


@pytest.mark.parametrize("cutoff", [2, 3, 4, 5, 6])
def test_highpass_zeroes_exactly_the_low_corner(cutoff):
    mask = highpass_mask(cutoff)
    u, v = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    np.testing.assert_array_equal(mask.numpy(), ~((u < cutoff) & (v < cutoff)))

    gray = torch.rand(1, 1, 16, 16, dtype=torch.float64) + 0.1
    full = block_dct(gray)
    filtered = block_dct_highpass(gray, cutoff=cutoff)
    tiled = np.tile(mask.numpy(), (2, 2))
    assert torch.all(filtered[0, 0][~torch.from_numpy(tiled)] == 0)
    torch.testing.assert_close(filtered[0, 0][torch.from_numpy(tiled)], full[0, 0][torch.from_numpy(tiled)])


def test_highpass_removes_a_flat_image_and_keeps_size():
    flat = torch.full((1, 1, 20, 28), 0.5)
    out = block_dct_highpass(flat, cutoff=4)
    assert out.shape == flat.shape
    assert out.abs().max() < 1e-6
    assert highpass_residual(flat).abs().max() < 1e-6


def test_log_magnitude_is_nonnegative_and_keeps_zeros():
    gray = torch.rand(2, 1, 16, 16)
    out = block_dct_highpass(gray, cutoff=4, log_magnitude=True)
    assert (out >= 0).all()
    assert (out[..., :4, :4] == 0).all()


def test_bt601_gray():
    rgb = torch.zeros(1, 3, 2, 2)
    rgb[:, 0] = 1.0
    assert torch.allclose(rgb_to_gray_bt601(rgb), torch.full((1, 1, 2, 2), 0.299))
