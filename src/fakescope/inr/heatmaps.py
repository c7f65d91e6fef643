"""Heatmaps from an INR's layer activations: INFER §3.4.4 and supplementary (L2 vs PCA), anonymous
NeurIPS-format submission.

For one image and one activated layer, the H*W activation vectors h_l(x) are centred and projected on
their first principal component, giving a scalar map A_l(x). The component is computed exactly, from
the width x width covariance and ``eigh`` in float64 (randomised PCA such as ``torch.pca_lowrank``
was measured to miss it; docs/design.md, "Heatmaps"). WIRE's complex activations are treated as real vectors
[Re h, Im h] of twice the width.

Sign rule (PCA fixes a component only up to sign): the map is flipped so that it correlates
positively with the image's own luminance (BT.601 luma of the fitted target). The rule uses only the
image itself, so it cannot depend on batch order or on other images, and it gives the sign the same
meaning across images ("brighter face regions map to larger values"), which a downstream encoder
needs. When that correlation is negligible (|r| < 1e-3, e.g. the content-free stripe pattern of the
first sine layer) the sign falls back to making the largest-magnitude loading of the component
positive (ties: the lowest index).

Each map is then standardised to zero mean and unit standard deviation. ``l2norm`` mode gives
||h_l(x)||_2 per pixel instead, standardised the same way.

First layer (``inr.first_layer_map``, default ``l2norm``): a deviation from the paper, which takes PCA
maps of every layer. The first sine layer's activation covariance is near-isotropic on real faces (the
top two eigenvalues' ratio has median 0.93-0.94 at 32 and 64 px on DFDC crops), so its first principal
component is ill-defined: re-encoding a face as JPEG Q 90 and refitting changes that component, not
just its sign, and no sign rule can repair that. Measured on DFDC faces (clean vs JPEG Q 90 refits,
share of faces whose layer-1 maps correlate at r > 0.7, benchmarks/layer_map_jpeg.py): PCA 69 % and
L2 norm 99 % at 64 px (72 faces); PCA 54 % (11 % flipped) and L2 norm 84 % at 32 px (100 faces). The L2 norm is sign-free and rotation-invariant, so it
needs no sign rule at all. ``same`` keeps the paper's PCA for layer 1. A per-image switch (PCA when the
eigen-gap is large) was not used: it would give one layer maps of two different kinds across images.
"""

from __future__ import annotations

import torch

__all__ = ["first_component", "pca_maps", "l2norm_maps", "layer_heatmaps", "luminance", "SIGN_CORR_EPS"]

SIGN_CORR_EPS = 1e-3


def _as_real(acts: torch.Tensor) -> torch.Tensor:
    return torch.cat([acts.real, acts.imag], dim=-1) if acts.is_complex() else acts


def luminance(rgb01: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of RGB in [0,1], [..., 3] -> [...]."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb01.dtype, device=rgb01.device)
    return rgb01 @ weights


def first_component(acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred activations [B, N, D] (float64) and the exact first principal direction [B, D]."""
    x = _as_real(acts).to(torch.float64)
    xc = x - x.mean(dim=1, keepdim=True)
    cov = xc.transpose(1, 2) @ xc / max(x.shape[1] - 1, 1)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues: the last column is the top component
    return xc, vecs[..., -1]


def _standardise(maps: torch.Tensor) -> torch.Tensor:
    maps = maps - maps.mean(dim=1, keepdim=True)
    std = maps.std(dim=1, keepdim=True, correction=0)
    # A constant map (std 0) stays all-zero instead of becoming NaN.
    return torch.where(std > 0, maps / std.clamp_min(1e-30), torch.zeros_like(maps))


def pca_maps(acts: torch.Tensor, luma: torch.Tensor) -> torch.Tensor:
    """[B, N, D] activations, [B, N] luminance -> [B, N] standardised PCA projections (float64)."""
    xc, vec = first_component(acts)
    proj = (xc @ vec.unsqueeze(-1)).squeeze(-1)
    lc = luma.to(torch.float64)
    lc = lc - lc.mean(dim=1, keepdim=True)
    denom = proj.norm(dim=1) * lc.norm(dim=1)
    corr = (proj * lc).sum(dim=1) / denom.clamp_min(1e-30)
    idx = vec.abs().argmax(dim=1, keepdim=True)
    loading_sign = torch.sign(vec.gather(1, idx).squeeze(1))
    sign = torch.where(corr.abs() >= SIGN_CORR_EPS, torch.sign(corr), loading_sign)
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return _standardise(proj * sign.unsqueeze(1))


def l2norm_maps(acts: torch.Tensor) -> torch.Tensor:
    """[B, N, D] -> [B, N] standardised L2 norms of the activation vectors (float64)."""
    return _standardise(_as_real(acts).to(torch.float64).norm(dim=-1))


def layer_heatmaps(
    acts: list[torch.Tensor], luma: torch.Tensor, mode: str, resolution: int, first_layer_map: str
) -> torch.Tensor:
    """One map per activated layer: list of [B, N, D] -> float32 [B, L, R, R].

    ``mode`` ("pca" or "l2norm") gives every layer's map, except the first layer's when
    ``first_layer_map`` is "l2norm" (see the module docstring for why).
    """
    modes = [mode] * len(acts)
    if first_layer_map == "l2norm" and modes:
        modes[0] = "l2norm"
    maps = [pca_maps(a, luma) if m == "pca" else l2norm_maps(a) for a, m in zip(acts, modes, strict=True)]
    out = torch.stack(maps, dim=1).to(torch.float32)
    return out.reshape(out.shape[0], len(acts), resolution, resolution)
