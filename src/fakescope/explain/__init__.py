"""Explanations of a detector's score: Grad-CAM (:mod:`.gradcam`), figures of INR heatmaps, CAM
overlays, DCT residual maps and scores over time (:mod:`.figures`), and the HTML report (:mod:`.report`).
Each is usable on its own, without ``fakescope detect``."""

from fakescope.explain.config import ExplainConfig
from fakescope.explain.figures import cam_overlay, dct_residual_map, heatmap_figure, score_over_time_figure
from fakescope.explain.gradcam import GradCamError, gradcam

__all__ = [
    "ExplainConfig",
    "GradCamError",
    "cam_overlay",
    "dct_residual_map",
    "gradcam",
    "heatmap_figure",
    "score_over_time_figure",
]
