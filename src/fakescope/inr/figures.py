"""Fig. 3-style figures (INFER §3.4.5, Fig. 3; supplementary A.5-A.6, Figs. 6-10; anonymous NeurIPS-format submission):
per row the input face, one PCA heatmap per INR layer, and the INR reconstruction; a real face and
a fake face as two rows of one figure."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fakescope.inr.cache import InrResult
from fakescope.utils.atomic import atomic_write_bytes

__all__ = ["FigureRow", "save_fig3"]


@dataclass
class FigureRow:
    title: str
    image: np.ndarray  # uint8 RxRx3, what the INR was fitted to
    result: InrResult


def save_fig3(rows: Sequence[FigureRow], path: str | os.PathLike[str], dpi: int = 110) -> None:
    """One row per FigureRow: input | layer 1..L heatmaps | reconstruction. Written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_layers = rows[0].result.heatmaps.shape[0]
    cols = n_layers + 2
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.9 * cols, 2.3 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        rec = row.result.record
        axes[r, 0].imshow(row.image)
        axes[r, 0].set_title(f"{row.title}\ninput", fontsize=8)
        for layer in range(n_layers):
            hm = row.result.heatmaps[layer]
            # Standardised maps: a symmetric +-3 sigma range keeps colours comparable across layers.
            axes[r, 1 + layer].imshow(hm, cmap="viridis", vmin=-3, vmax=3)
            axes[r, 1 + layer].set_title(f"layer {layer + 1}", fontsize=8)
        axes[r, -1].imshow(row.result.reconstruction)
        axes[r, -1].set_title(f"reconstruction\n{rec.final_psnr:.1f} dB, {rec.steps} steps", fontsize=8)
        for ax in axes[r]:
            ax.set_axis_off()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
