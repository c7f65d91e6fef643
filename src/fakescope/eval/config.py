"""The ``eval`` config section (docs/design.md, "Data, evaluation and robustness")."""

from __future__ import annotations

from pydantic import Field

from fakescope.utils.schema import StrictModel


class EvalConfig(StrictModel):
    frames_per_video: int = Field(32, ge=1, description="frames sampled per video at evaluation")
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples for the AUC 95% interval")
    batch_size: int = Field(64, ge=1, description="evaluation batch size")
    perturbations: list[str] = Field(
        ["clean", "blur_s2", "blur_s3", "jpeg_q70", "jpeg_q50", "jpeg_q20", "blur_s2+jpeg_q50"],
        description="the --robustness sweep (names from fakescope.data.perturbations)",
    )
    perturb_before_resize: bool = Field(
        True,
        description="apply perturbations to the face crop at its stored resolution (sigma in crop pixels), "
        "then resize to data.image_size; false = after resizing",
    )
    max_images: int | None = Field(
        None, ge=2, description="cap on images per evaluated dataset (class-stratified, seeded)"
    )
    tsne_max_points: int = Field(2000, ge=10, description="subsample for the t-SNE plot")
    tsne_perplexity: float = Field(30.0, gt=0, description="t-SNE perplexity of the embedding plot")
