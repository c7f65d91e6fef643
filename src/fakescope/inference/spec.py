"""The input spec an experiment config implies for its detector.

Detectors are built from their ``model`` section plus an :class:`~fakescope.models.spec.InputSpec`
(``build_detector(cfg.model, input_spec_for(cfg))``); the spec's sizes come from the sections that make
the batches: ``data`` sizes the face crop, ``inr`` the heatmaps. It lives here, above ``models``, so
that no model reads the experiment config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fakescope.models.spec import InputSpec

if TYPE_CHECKING:
    from fakescope.config import ExperimentConfig

__all__ = ["input_spec_for"]


def input_spec_for(cfg: ExperimentConfig) -> InputSpec:
    """The shapes of ``cfg``'s batches: crops of ``data.image_size``, ``inr.depth`` heatmaps of
    ``inr.resolution``."""
    return InputSpec(
        image_size=cfg.data.image_size, heatmap_count=cfg.inr.depth, heatmap_size=cfg.inr.resolution
    )
