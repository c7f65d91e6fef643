"""Figures that explain a score: INR heatmaps per layer, Grad-CAM overlays, DCT residual maps and
the score of a video over time.

- :func:`heatmap_figure` follows INFER Fig. 3 (anonymous NeurIPS-format submission): the input, one PCA heatmap per INR layer,
  and optionally the INR's reconstruction in the last column.
- :func:`cam_overlay` blends a Grad-CAM map on the crop (INFER supplementary A.8, Fig. 12; AIRL §VI-A).
- :func:`dct_residual_map` is what AIRL's frequency stream sees (AIRL (Parihar), §III-C): the block
  DCT with the low-frequency u < c, v < c coefficients zeroed, computed by ``fakescope.models.dct``.
- :func:`score_over_time_figure` plots per-frame scores of a video against the decision threshold.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot), so nothing depends on a
display or on global pyplot state, and they are written atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from fakescope.explain.config import ExplainConfig
from fakescope.utils.atomic import atomic_write_bytes

__all__ = [
    "apply_colormap",
    "cam_overlay",
    "dct_residual_map",
    "dct_residual_image",
    "heatmap_figure",
    "save_figure",
    "save_image",
    "score_over_time_figure",
]


def _as_uint8_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img * 255.0 if img.max() <= 1.0 else img, 0, 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


def apply_colormap(
    values: np.ndarray, cmap: str = "jet", vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Map a 2-D float array to uint8 RGB with a matplotlib colormap (limits default to min/max)."""
    v = np.asarray(values, dtype=np.float32)
    lo = float(v.min()) if vmin is None else vmin
    hi = float(v.max()) if vmax is None else vmax
    norm = np.clip((v - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(v)
    rgba = colormaps[cmap](norm)
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def _resize_to(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if values.shape == shape:
        return values
    import cv2

    return cv2.resize(values.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def cam_overlay(crop: np.ndarray, cam: np.ndarray, alpha: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """Blend a Grad-CAM map (``[0, 1]``, any size) over an RGB crop; returns uint8 RGB of the crop's size."""
    rgb = _as_uint8_rgb(crop).astype(np.float32)
    heat = apply_colormap(_resize_to(np.asarray(cam, np.float32), rgb.shape[:2]), cmap, 0.0, 1.0)
    return ((1 - alpha) * rgb + alpha * heat.astype(np.float32)).round().clip(0, 255).astype(np.uint8)


def dct_residual_map(crop: np.ndarray, cutoff: int = 4, kind: str = "spatial", block: int = 8) -> np.ndarray:
    """What AIRL's frequency stream sees (AIRL §III-B, Eq. 2-3): BT.601 grayscale, 8×8
    orthonormal DCT-II, the u < c and v < c coefficients of every block zeroed.

    ``kind="spatial"`` (default) transforms the kept coefficients back to pixels (the high-frequency
    residual: edges, texture, blending seams, resampling grids); ``kind="coefficients"`` returns the
    block-coefficient map itself. Computed by :mod:`fakescope.models.dct`. Returns float32 ``[H, W]``.
    """
    import torch

    from fakescope.models.dct import block_dct_highpass, highpass_residual, rgb_to_gray_bt601

    img = torch.from_numpy(_as_uint8_rgb(crop).copy()).permute(2, 0, 1)[None].float() / 255.0
    gray = rgb_to_gray_bt601(img)
    if kind == "spatial":
        out = highpass_residual(gray, cutoff=cutoff, block=block)
    elif kind == "coefficients":
        out = block_dct_highpass(gray, cutoff=cutoff, block=block)
    else:
        raise ValueError(f"dct residual kind must be 'spatial' or 'coefficients', got {kind!r}")
    return out.reshape(out.shape[-2], out.shape[-1]).detach().cpu().numpy().astype(np.float32)


def dct_residual_image(residual: np.ndarray, cfg: ExplainConfig | None = None) -> np.ndarray:
    """Render a residual map as uint8 RGB. Coefficients are signed and heavy-tailed, so the map shows
    ``log(1+|x|)`` (or ``|x|``) between the 1st and 99.5th percentile."""
    cfg = cfg or ExplainConfig()
    mag = np.abs(np.asarray(residual, np.float32))
    if cfg.dct_display == "log_abs":
        mag = np.log1p(mag * 255.0)  # coefficients of a [0,1] image are small; scale like 8-bit pixels
    lo, hi = np.percentile(mag, [1.0, 99.5])
    return apply_colormap(mag, cfg.dct_colormap, float(lo), float(hi))


def heatmap_figure(
    crop: np.ndarray,
    heatmaps: np.ndarray,
    reconstruction: np.ndarray | None = None,
    title: str | None = None,
    cfg: ExplainConfig | None = None,
) -> Figure:
    """One row in the style of INFER Fig. 3: input | Layer 1 … Layer L | reconstruction."""
    cfg = cfg or ExplainConfig()
    maps = np.asarray(heatmaps, np.float32)
    if maps.ndim != 3:
        raise ValueError(f"heatmaps must be [layers, H, W], got shape {maps.shape}")
    panels: list[tuple[str, np.ndarray, bool]] = [("input", _as_uint8_rgb(crop), False)]
    panels += [(f"Layer {i + 1}", m, True) for i, m in enumerate(maps)]
    if reconstruction is not None:
        panels.append(("INR reconstruction", _as_uint8_rgb(reconstruction), False))
    fig = Figure(figsize=(2.1 * len(panels), 2.45 if title else 2.25), dpi=100)
    axes = fig.subplots(1, len(panels))
    p = cfg.heatmap_clip_percentile
    for ax, (name, img, is_map) in zip(np.atleast_1d(axes), panels, strict=True):
        if is_map:
            lo, hi = np.percentile(img, [p, 100 - p])
            ax.imshow(img, cmap=cfg.heatmap_colormap, vmin=lo, vmax=hi, interpolation="nearest")
        else:
            ax.imshow(img, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def score_over_time_figure(
    times: Sequence[float],
    scores: Sequence[float | None],
    threshold: float,
    video_score: float | None = None,
    xlabel: str = "time (s)",
) -> Figure:
    """Per-frame P(fake) of a video; frames with no face are marked on the x axis, not dropped."""
    t = np.asarray(times, np.float64)
    s = np.array([np.nan if v is None else v for v in scores], np.float64)
    fig = Figure(figsize=(7.5, 2.6), dpi=100)
    ax = fig.subplots()
    ok = ~np.isnan(s)
    ax.plot(t[ok], s[ok], "o-", color="tab:red", ms=3, lw=1.2, label="frame score")
    if (~ok).any():
        ax.plot(t[~ok], np.zeros((~ok).sum()), "x", color="grey", label="no face")
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    if video_score is not None:
        ax.axhline(video_score, color="tab:blue", ls=":", lw=1.2, label=f"video score {video_score:.3f}")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("P(fake)")
    ax.grid(alpha=0.3)
    # Above the axes, not inside them: inside, the legend covered the first frames' points.
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=4, frameon=False, borderaxespad=0)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 100) -> None:
    """Write a figure as PNG, atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(path, buf.getvalue())


def save_image(image: np.ndarray, path: str | os.PathLike[str], quality: int = 92) -> None:
    """Write a uint8 RGB array as PNG or JPEG (by suffix), atomically."""
    from PIL import Image

    buf = io.BytesIO()
    fmt = "JPEG" if str(path).lower().endswith((".jpg", ".jpeg")) else "PNG"
    Image.fromarray(_as_uint8_rgb(image)).save(
        buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {})
    )
    atomic_write_bytes(path, buf.getvalue())
