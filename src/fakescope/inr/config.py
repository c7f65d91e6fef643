"""The ``inr`` config section (docs/design.md, "INFER"; INFER §3.3-3.4 and supplementary A.1-A.4,
anonymous NeurIPS-format submission).

Fields marked "not in the paper" are choices the paper leaves open; docs/inr.md
explains each default and the measurement behind it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fakescope.utils.schema import StrictModel

# Fields that change how fast a fit runs but not what it computes (on CPU the batched, per-image and
# worker paths give bit-identical maps, tests/test_inr.py). They are left out of the cache's config
# hash. ``compile`` is not among them: compiled kernels round differently, and the fit amplifies that
# (layer-3 heatmaps correlate only ~0.8 with eager ones, docs/inr.md).
EXECUTION_ONLY_FIELDS = frozenset({"cache_dir", "batch_size", "workers", "cpu_path"})

# INR fields an initialisation file is only meaningful for: a different value changes what each weight
# does. Resolution is not among them (coordinates are always [-1, 1]^2); a learned init records it.
INIT_MATCHING_FIELDS = ("activation", "width", "depth", "omega0", "gauss_scale", "wire_omega",
                        "wire_scale", "target_range")  # fmt: skip


class InrConfig(StrictModel):
    resolution: int = Field(224, ge=8, description="side of the square image the INR is fitted to")
    activation: Literal["sine", "gauss", "wire"] = Field(
        "sine", description="INR activation: SIREN sine, Gaussian, or WIRE Gabor wavelet (INFER Table 3)"
    )
    width: int = Field(128, ge=1, description="hidden width of the INR MLP")
    depth: int = Field(3, ge=1, description="number of activated layers (first + hidden); one heatmap each")
    omega0: float = Field(30.0, gt=0, description="SIREN frequency of every sine layer")
    gauss_scale: float = Field(10.0, gt=0, description="scale of the Gaussian activation")
    wire_omega: float = Field(20.0, gt=0, description="WIRE frequency omega")
    wire_scale: float = Field(10.0, gt=0, description="WIRE Gaussian-window scale")
    lr: float | None = Field(
        None,
        gt=0,
        description="Adam learning rate; null: the init's own, i.e. the inner_lr a learned init file records "
        "(1e-3 for the shipped ones) and 3e-3 for the seeded init (not in the paper; SIREN's 1e-4 is far "
        "slower, see docs/inr.md)",
    )
    lr_decay_factor: float = Field(
        0.1,
        gt=0,
        le=1,
        description="lr is multiplied by this over lr_decay_steps, then held (not in the paper)",
    )
    lr_decay_steps: int = Field(200, ge=1, description="steps over which the exponential lr decay runs")
    target_psnr: float = Field(
        35.0, gt=0, description="an image stops when its PSNR on [0,1] RGB reaches this"
    )
    max_steps: int = Field(1000, ge=1, description="cap on Adam steps per image (not in the paper)")
    target_range: Literal["symmetric", "unit"] = Field(
        "symmetric", description="fit RGB scaled to [-1,1] (SIREN's convention) or [0,1]; PSNR is on [0,1]"
    )
    bf16_warmup_margin_db: float = Field(
        0.0,
        ge=0,
        description="0 = fp32 throughout; M > 0 = run the forward in bf16 autocast until every image of "
        "the batch is within M dB of target_psnr, then finish in fp32 (the stop is always decided in "
        "fp32; not for wire; not in the paper)",
    )
    bf16_backward: bool = Field(
        False,
        description="sine only: the backward matmuls in bf16 (the forward, loss and stop stay fp32; "
        "not in the paper)",
    )
    init_seed: int = Field(0, description="seed of the shared INR initialisation used for every image")
    init_file: str | None = Field(
        "shipped",
        description="shared initialisation of every face's INR: 'shipped' (default) = the init fakescope "
        "ships, meta-learned on DFDC training faces at the supported resolution nearest to `resolution` "
        "(64, 128 or 224 px; used only for the INR it was learned for, sine/width 128/depth 3, else the "
        "seeded init); null = the seeded init (`init_seed`; runs made before the shipped init existed record this); or a "
        "safetensors file, e.g. one from `fakescope learn-inr-init`",
    )
    heatmap_mode: Literal["pca", "l2norm"] = Field(
        "pca",
        description="per-layer map: first principal component of the activations (paper) or their L2 norm (supplementary)",
    )
    first_layer_map: Literal["l2norm", "same"] = Field(
        "l2norm",
        description="map of the first sine layer: its L2 norm (default; its activations are near-isotropic, so "
        "the first component is ill-defined and JPEG Q90 changes it, docs/inr.md) or 'same' as heatmap_mode "
        "(the paper's PCA for every layer)",
    )
    cache_dir: str = Field(
        "cache/inr", description="content-addressed heatmap cache (image hash + INR config hash)"
    )
    # Execution fields: how the fits are scheduled (all but compile leave the results unchanged).
    cpu_path: Literal["auto", "sequential", "workers", "batched"] = Field(
        "auto",
        description="on CPU: 'sequential' = one image at a time in this process on all threads "
        "(measured fastest here); 'workers' = one single-threaded process per core; 'batched' = B "
        "images in one bmm (the GPU path); 'auto' = sequential on CPU, batched on GPU",
    )
    workers: int = Field(0, ge=0, description="CPU worker processes; 0 = one per available core")
    batch_size: int = Field(32, ge=1, description="images fitted together by the batched path")
    compile: bool = Field(
        False,
        description="torch.compile the forward+loss (optional speed-up; changes the maps, see docs/inr.md)",
    )

    @model_validator(mode="after")
    def _bf16_needs_real_activation(self) -> InrConfig:
        if self.bf16_warmup_margin_db > 0 and self.activation == "wire":
            raise ValueError("bf16_warmup_margin_db works with sine and gauss, not wire (complex weights)")
        return self


class InrInitConfig(StrictModel):
    """``fakescope learn-inr-init``: a shared INR initialisation meta-learned with Reptile.

    Not in the paper. docs/design.md ("Fitting") allows a fixed seed or a learned initialisation file; the method
    is Reptile (Nichol et al. 2018) as used for coordinate networks by Tancik et al. 2021 ("Learned
    initializations for optimizing coordinate-based neural representations"). The inner loop is the
    fitting procedure itself (Adam, full batch, MSE), so the init is learned for the fit it will start.
    """

    outer_steps: int = Field(150, ge=1, description="Reptile meta-updates")
    inner_steps: int = Field(20, ge=1, description="Adam steps fitted from the current init per meta-update")
    inner_lr: float = Field(
        1e-3, gt=0, description="Adam lr of the inner fits; fit with inr.lr set to this value afterwards"
    )
    images_per_step: int = Field(4, ge=1, description="faces fitted (as one batch) per meta-update")
    outer_lr: float = Field(
        0.1, gt=0, le=1, description="Reptile step: init += outer_lr * (mean fitted weights - init)"
    )
    max_images: int = Field(1000, ge=1, description="faces drawn from the manifest to learn from")
    holdout_images: int = Field(
        8, ge=0, description="faces (whole groups) kept out of learning to compare steps-to-target after"
    )
    checkpoint_every: int = Field(10, ge=1, description="meta-updates between resumable checkpoints")
