"""What a detector's batches hold, as far as building the detector needs to know.

A detector is built from two things (:func:`fakescope.models.registry.build_detector`): its own
:class:`~fakescope.models.config.ModelConfig` and an :class:`InputSpec`, the sizes of the inputs it
will be fed. The spec is all a model learns of the rest of an experiment: F3-Net's DCT filters are
sized for the crop, INFER's heatmap encoder takes one input channel per INR heatmap. An experiment
config gives one with :func:`fakescope.inference.spec.input_spec_for`; anyone else writes it out, as
with timm's ``img_size=`` keyword.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["InputSpec"]


@dataclass(frozen=True)
class InputSpec:
    """The shapes of a batch: ``image`` ``[B,3,image_size,image_size]`` and, for detectors that read
    INR heatmaps, ``heatmaps`` ``[B,heatmap_count,heatmap_size,heatmap_size]``. The defaults are the
    experiment config's (``data.image_size``, ``inr.depth``, ``inr.resolution``)."""

    #: side of the square face crop (``data.image_size``)
    image_size: int = 224
    #: INR heatmaps per face, one per activated INR layer (``inr.depth``)
    heatmap_count: int = 3
    #: side of each heatmap, the resolution the INR is fitted at (``inr.resolution``)
    heatmap_size: int = 224

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"InputSpec.{f.name} must be a positive int, got {value!r}")
