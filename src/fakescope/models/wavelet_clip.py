"""Wavelet-CLIP (Baru et al., "Wavelet-Driven Generalizable Framework for Deepfake Face Forgery
Detection", WACV 2025, §3 "Method"): a 1-D discrete wavelet transform of the frozen CLIP image
embedding, a learned linear refinement of its coarsest approximation, the inverse transform, and a
linear classifier.

The authors' code (``clip_detector_wavelet.py`` of their repository) fixes what the paper leaves
open, and fakescope follows it: a Daubechies-6 wavelet, 3 levels, zero padding at the borders, one
``Linear(n, n)`` on the level-3 approximation (n = 137 for a 1024-d embedding), the detail
coefficients passed through unchanged, then ``Linear(D, 2)``. Only the two linear layers train.

Choices (documented in docs/detectors.md):
- **The embedding.** The authors tap CLIP ViT-L/14's 1024-d pooled output before the projection;
  fakescope's frozen-embedding cache (:mod:`fakescope.models.features`) holds the 768-d projected
  embedding that INFER and UnivFD use, so Wavelet-CLIP shares that cache and its approximation has
  ``n`` = 105 for 768-d (1280-d Lite0 stand-in: 169). ``model.wavelet`` and ``model.wavelet_levels``
  change the transform.
- **The transform as two fixed matrices.** The DWT and its inverse are linear maps of the embedding,
  so they are built once from PyWavelets' own ``wavedec``/``waverec`` (applied to the basis vectors)
  and applied as matrix products: exactly PyWavelets' transform, differentiable, and fast on any
  device. The matrices are rebuilt from the config on load, never stored in a checkpoint.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from fakescope.errors import ConfigError
from fakescope.models.detector import output_dict
from fakescope.models.registry import register_detector
from fakescope.models.univfd import UnivFdDetector

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = ["WaveletClipDetector", "wavelet_matrices"]


def wavelet_matrices(dim: int, wavelet: str, levels: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """``(analysis [dim, K], synthesis [K, dim], lengths)`` of the ``levels``-level 1-D DWT of a
    ``dim``-vector with zero padding: ``x @ analysis`` is ``concatenate(pywt.wavedec(x))`` (coarsest
    approximation first, then details from coarse to fine, ``lengths`` each) and ``c @ synthesis`` is
    ``pywt.waverec`` of those coefficients, cut to ``dim``."""
    import pywt

    try:
        w = pywt.Wavelet(wavelet)
    except ValueError as exc:
        raise ConfigError(
            f"model.wavelet: unknown wavelet {wavelet!r} (a PyWavelets name, e.g. db6)"
        ) from exc
    with warnings.catch_warnings():
        # Short embeddings (the tiny test backbones) are below PyWavelets' advised length for the level.
        warnings.simplefilter("ignore", UserWarning)
        rows = [pywt.wavedec(e, w, mode="zero", level=levels) for e in np.eye(dim)]
        lengths = [c.size for c in rows[0]]
        analysis = np.stack([np.concatenate(c) for c in rows])
        bounds = np.cumsum(lengths)[:-1]
        synthesis = np.stack(
            [pywt.waverec(np.split(e, bounds), w, mode="zero")[:dim] for e in np.eye(sum(lengths))]
        )
    return analysis, synthesis, lengths


@register_detector("wavelet_clip")
class WaveletClipDetector(UnivFdDetector):
    """UnivFD's frozen embedding and final ``Linear(D, 2)``, with the wavelet refinement in between."""

    description = "frozen CLIP embedding → db6 DWT, refined approximation, inverse DWT → linear layer"
    paper_ref = "Baru et al. WACV 2025 §3 (Wavelet-CLIP)"

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        dim = self.backbone.out_dim
        analysis, synthesis, lengths = wavelet_matrices(dim, config.wavelet, config.wavelet_levels)
        self.approx_len = lengths[0]
        self.register_buffer("analysis", torch.from_numpy(analysis).float(), persistent=False)
        self.register_buffer("synthesis", torch.from_numpy(synthesis).float(), persistent=False)
        self.refine = nn.Linear(self.approx_len, self.approx_len)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        features = self.image_embedding(batch).float()
        coeffs = features @ self.analysis
        approx = self.refine(coeffs[:, : self.approx_len])
        refined = torch.cat([approx, coeffs[:, self.approx_len :]], dim=1) @ self.synthesis
        return output_dict(self.classifier(refined), features)
