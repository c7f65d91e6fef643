"""The ``data`` config section: where images come from and how they are split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fakescope.utils.schema import StrictModel


class SplitConfig(StrictModel):
    """Seeded split by ``group`` (never by image), so a person or source video sits on one side only."""

    train: float = Field(0.70, ge=0, le=1, description="fraction of groups in the train split")
    val: float = Field(
        0.15, ge=0, le=1, description="fraction of groups in the validation split (model selection)"
    )
    test: float = Field(0.15, ge=0, le=1, description="fraction of groups in the test split")
    seed: int = Field(0, description="seed of the group split")
    stratify: bool = Field(
        True,
        description="split each class mix (real-only, fake-only, mixed groups) separately, so every split "
        "gets both classes where the group count allows",
    )
    carve_val: bool = Field(
        True,
        description="when a layout's official split has train but no val (Celeb-DF, DFDC-Preview), move "
        "val/(train+val) of the train groups to val; the official test split is never touched",
    )

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1 (got {total:.3f})")
        return self


class LayoutOptions(StrictModel):
    """Choices for the benchmark layout builders (``fakescope.data.layouts``); each layout reads only
    the fields that concern it. See docs/data.md for every layout's folder tree."""

    compression: Literal["raw", "c23", "c40"] = Field("c23", description="FaceForensics++ / DFD quality")
    methods: list[str] | None = Field(
        None,
        description="FaceForensics++ manipulation folders to include; None = Deepfakes, Face2Face, "
        "FaceSwap, NeuralTextures (add FaceShifter or DeepFakeDetection explicitly)",
    )
    media: str = Field(
        "videos",
        description="FaceForensics++: the folder under <method>/<compression>/ holding the videos, or "
        "extracted frames / face crops, one sub-folder per video (e.g. images, faces)",
    )
    splits_dir: str | None = Field(
        None,
        description="folder with the official FaceForensics++ train/val/test.json (default: <root>/splits)",
    )
    celebdf_version: Literal["auto", "v1", "v2"] = Field(
        "auto", description="auto: v1 when the root folder name says v1, else v2"
    )
    deeperforensics_perturbation: str = Field(
        "end_to_end", description="folder under manipulated_videos/ (end_to_end, end_to_end_level_3, ...)"
    )
    allow_missing: bool = Field(
        False,
        description="list-driven layouts: skip (and count) listed videos that are absent instead of failing",
    )


class DataConfig(StrictModel):
    """Training / validation data. ``manifest`` is a CSV (``path,label,group[,split,...]``); if it has
    no ``split`` column, ``split`` fractions are applied by group. ``layout`` + ``root`` build the
    manifest from a benchmark folder instead."""

    manifest: str | None = None
    layout: Literal["manifest", "folder", "ffpp", "celebdf", "dfdc_preview", "deeperforensics"] = Field(
        "manifest",
        description="how to read `root`: a manifest CSV or one of the benchmark layouts (docs/data.md, Dataset layouts)",
    )
    root: str | None = None
    layout_options: LayoutOptions = LayoutOptions()
    split: SplitConfig = SplitConfig()
    image_size: int = Field(224, ge=16, description="side of the square face crop fed to the detectors")
    max_per_split: int | None = Field(None, ge=1, description="cap on images per split (quick runs)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    prefetch_factor: int = Field(
        2, ge=1, description="batches each DataLoader worker prepares ahead (only with num_workers > 0)"
    )
    persistent_workers: bool = Field(
        False,
        description="keep DataLoader workers alive between epochs (only with num_workers > 0): saves "
        "re-forking and re-opening the crop cache every epoch",
    )
    crop_cache: bool = Field(
        False,
        description="decode and resize every train/val crop once into a uint8 memory-mapped .npy per split "
        "(data.crop_cache_dir), keyed by the files (path, size, mtime), image_size and decode options; "
        "epochs read crops from it instead of decoding JPEG/PNG. Same crops bit for bit; the page cache, "
        "not the process, holds them (memory stays flat in data size). Not used with perturbations or "
        "synthetic fakes",
    )
    crop_cache_dir: str | None = Field(
        None, description="folder of the crop caches (None: <run>/crop_cache); caches are shared by key"
    )
    max_image_pixels: int = Field(
        64_000_000, ge=1, description="images with more pixels are refused as decompression bombs"
    )
    rgba_background: Literal["black", "white"] = Field(
        "black",
        description="colour that transparent pixels (RGBA, LA, palette transparency) are composited on",
    )


class AugmentConfig(StrictModel):
    """Training augmentation (docs/design.md, "Training recipe"; AIRL (Parihar), §IV-B), set as ``train.augment``."""

    hflip_p: float = Field(0.5, ge=0, le=1)
    brightness: float = Field(0.2, ge=0)
    contrast: float = Field(0.2, ge=0)
    noise_std: float = Field(0.01, ge=0)
    noise_p: float = Field(0.2, ge=0, le=1)
    jpeg_quality_min: int = Field(70, ge=1, le=100)
    jpeg_quality_max: int = Field(100, ge=1, le=100)
    jpeg_p: float = Field(0.3, ge=0, le=1)
    # Shortcut-breaking degradations (Wang et al., CVPR 2020, §4.2 "Blur+JPEG"): off by default, so
    # AIRL's recipe and every older run augment exactly as before.
    blur_p: float = Field(0.0, ge=0, le=1, description="probability of a Gaussian blur")
    blur_sigma_max: float = Field(3.0, ge=0, description="blur sigma drawn uniformly from [0, max] pixels")
    rescale_p: float = Field(0.0, ge=0, le=1, description="probability of a down-and-up rescale")
    rescale_min: float = Field(
        0.5,
        gt=0,
        le=1,
        description="rescale factor drawn uniformly from [min, 1], then back to the crop size",
    )
