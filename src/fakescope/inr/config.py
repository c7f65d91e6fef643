"""The ``inr`` config section (DESIGN.md "INFER"; papers/INFER.txt §3.3-3.4, supplementary A.1-A.4).

Fields marked "not in the paper" are choices the paper leaves open; README section "INR engine"
explains each default and the measurement behind it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fakescope.utils.schema import StrictModel

# Fields that change how fast a fit runs but not what it computes (on CPU the batched, per-image and
# worker paths give bit-identical maps, tests/test_inr.py). They are left out of the cache's config
# hash. ``compile`` is not among them: compiled kernels round differently, and the fit amplifies that
# (layer-3 heatmaps correlate only ~0.8 with eager ones, README "INR engine").
EXECUTION_ONLY_FIELDS = frozenset({"cache_dir", "batch_size", "workers", "cpu_path"})


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
    lr: float = Field(
        3e-3,
        gt=0,
        description="Adam learning rate (not in the paper; SIREN's 1e-4 is far slower, see README)",
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
    init_seed: int = Field(0, description="seed of the shared INR initialisation used for every image")
    init_file: str | None = Field(None, description="safetensors file with a shared initialisation")
    heatmap_mode: Literal["pca", "l2norm"] = Field(
        "pca",
        description="per-layer map: first principal component of the activations (paper) or their L2 norm (supplementary)",
    )
    cache_dir: str = Field(
        "cache/inr", description="content-addressed heatmap cache (image hash + INR config hash)"
    )
    # Execution fields: how the fits are scheduled (all but compile leave the results unchanged).
    cpu_path: Literal["auto", "workers", "batched"] = Field(
        "auto",
        description="on CPU: 'workers' = one image per process, one process per core (measured fastest "
        "here); 'batched' = B images in one bmm (the GPU path); 'auto' = workers on CPU, batched on GPU",
    )
    workers: int = Field(0, ge=0, description="CPU worker processes; 0 = one per available core")
    batch_size: int = Field(32, ge=1, description="images fitted together by the batched path")
    compile: bool = Field(
        False, description="torch.compile the forward+loss (optional speed-up; changes the maps, see README)"
    )
