"""Which 8×8 DCT coefficients a trained detector's verdict depends on (AIRL §III-B argues that
the useful evidence is high-frequency, and zeroes the ``u < c, v < c`` corner of every block).

:func:`dct_importance` measures, for each of the 64 positions ``(u, v)`` of the block DCT of the
BT.601 luma, the mean absolute gradient of the detector's fake log-odds (``logit_fake - logit_real``:
the logit of P(fake)) with respect to that coefficient, over every 8×8 block of every image given. The
gradient is taken at the image itself: the image is written as ``x + block_idct(Z) · (1, 1, 1)`` with
``Z = 0``, i.e. each coefficient of the luma is perturbed on all three colour channels at once (the
BT.601 weights sum to 1, so the luma moves by exactly the perturbation and the chroma does not). The
gradient therefore reaches the model through every stream that reads the image: the RGB backbone and
the DCT stream alike. Coefficients the DCT stream removes (the low corner) get gradient only through
the RGB stream, so a frequency-only model shows 0 there (up to
float32 rounding of the DCT round trip, ~1e-8 of the largest value).

:func:`importance_figure` draws the 8×8 grid as a heat map (u down, v across, as the DCT is laid out).
The functions take a detector and a tensor of images, not runs or configs (``explain`` takes plain data).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from fakescope.models.dct import block_idct

__all__ = ["dct_importance", "importance_figure"]


def _grid(grad: torch.Tensor, block: int) -> torch.Tensor:
    """``[B,1,H,W]`` per-coefficient values -> ``[block, block]`` sums of |values| over blocks and images."""
    b, _, h, w = grad.shape
    tiles = grad.abs().reshape(b, h // block, block, w // block, block)
    return tiles.sum(dim=(0, 1, 3)).double()


def dct_importance(
    detector: nn.Module, batches: Iterable[torch.Tensor], block: int = 8, extra: dict[str, Any] | None = None
) -> tuple[np.ndarray, int]:
    """Mean |∂ fake log-odds / ∂ DCT coefficient (u, v)| over all blocks of all images.

    ``batches`` yields ``[B,3,H,W]`` tensors in [0, 1] (``H``, ``W`` multiples of ``block``) on the
    detector's device; ``extra`` adds fixed batch keys. The detector runs in eval mode. Returns the
    ``[block, block]`` float64 grid and the number of images."""
    detector.eval()
    total = torch.zeros(block, block, dtype=torch.float64)
    n_blocks = 0
    n_images = 0
    for images in batches:
        b, c, h, w = images.shape
        if c != 3 or h % block or w % block:
            raise ValueError(
                f"need [B,3,H,W] images with H, W multiples of {block}, got {tuple(images.shape)}"
            )
        z = torch.zeros(b, 1, h, w, device=images.device, requires_grad=True)
        x = images.float() + block_idct(z, block).expand(-1, 3, -1, -1)
        logits = detector({"image": x, **(extra or {})})["logits"].float()
        log_odds = logits[:, 1] - logits[:, 0]
        (grad,) = torch.autograd.grad(log_odds.sum(), z)
        total += _grid(grad.detach().cpu(), block)
        n_blocks += b * (h // block) * (w // block)
        n_images += b
    if n_images == 0:
        raise ValueError("dct_importance: no images")
    return (total / n_blocks).numpy(), n_images


def importance_figure(grid: np.ndarray, title: str = "", cutoff: int | None = None) -> Figure:
    """The 8×8 grid as a heat map with its values written in, ``u`` (vertical frequency) down and ``v``
    across; ``cutoff`` outlines the corner AIRL's DCT stream removes (``u < c and v < c``)."""
    from matplotlib.patches import Rectangle

    g = np.asarray(grid, dtype=np.float64)
    n = g.shape[0]
    fig = Figure(figsize=(4.6, 4.0))
    ax = fig.subplots()
    im = ax.imshow(g, cmap="magma", origin="upper")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="mean |∂ log-odds(fake) / ∂ coefficient|")
    hi = float(g.max()) if g.size else 0.0
    for u in range(n):
        for v in range(n):
            ax.text(v, u, f"{g[u, v] / hi:.2f}" if hi > 0 else "0", ha="center", va="center", fontsize=6,
                    color="black" if hi > 0 and g[u, v] > 0.6 * hi else "white")  # fmt: skip
    if cutoff:
        ax.add_patch(Rectangle((-0.5, -0.5), cutoff, cutoff, fill=False, edgecolor="cyan", lw=1.5, ls="--"))
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("v (horizontal frequency)")
    ax.set_ylabel("u (vertical frequency)")
    ax.set_title(title or "DCT coefficient importance (values / max)", fontsize=9)
    fig.tight_layout()
    return fig
