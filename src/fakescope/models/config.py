"""The ``model`` config section: which registered detector to build and how.

Every architectural choice that INFER §3.5 / §4.2 (anonymous NeurIPS-format submission) and AIRL
(Parihar), §III leave open is a field here, with the value used in ``configs/`` as its default (see docs/detectors.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fakescope.utils.schema import StrictModel

BackboneName = Literal[
    "auto",
    "clip_vit_l14",
    "clip_tiny",
    "efficientnet_b4",
    "efficientnet_tiny",
    "lite0",
    "xception",
]


class ModelConfig(StrictModel):
    name: str = Field("airl", description="registered detector name (see `fakescope models`)")
    backbone: BackboneName = Field(
        "auto",
        description="image backbone: the RGB stream of the AIRL family, the image-embedding branch of the "
        "INFER family. auto = the paper's (clip_vit_l14 for INFER, efficientnet_b4 for AIRL; each baseline's own, e.g. xception); lite0 is a "
        "real pretrained CPU stand-in; clip_tiny / efficientnet_tiny are random, for tests",
    )
    pretrained: bool = Field(True, description="load real pretrained weights; fails clearly when offline")
    weights_path: str | None = Field(
        None,
        description="local weights instead of the hub: a .safetensors / .pth state dict of the backbone, "
        "or (CLIP) a folder saved by transformers' save_pretrained",
    )
    hf_cache_dir: str | None = Field(
        None, description="Hugging Face cache folder that already holds the CLIP weights"
    )
    freeze_backbone: bool | None = Field(
        None,
        description="freeze the image backbone; None = family default (INFER: frozen, as its CLIP is; "
        "AIRL: fine-tuned at train.backbone_lr_mult x the base rate)",
    )
    clip_cache_dir: str | None = Field(
        None, description="folder of cached frozen image embeddings (keyed by image hash + backbone id)"
    )

    # INFER heatmap encoder (INFER §3.5)
    heatmap_mode: Literal["channels", "shared"] = Field(
        "channels",
        description="channels: the L heatmaps are the input channels of one encoder; shared: one encoder "
        "applied to each heatmap separately, embeddings concatenated (the paper's 'stacked along the "
        "batch dimension')",
    )
    heatmap_channels: list[int] = Field(
        [32, 64, 128], min_length=1, description="conv widths of the heatmap encoder"
    )
    heatmap_stride: int = Field(2, ge=1, le=4, description="stride of every 3x3 conv of the heatmap encoder")
    heatmap_embed_dim: int = Field(256, ge=1, description="heatmap embedding size (after FC + LayerNorm)")

    # INFER classifier head (three FC layers, hidden 256; §3.5)
    head_hidden: int = Field(256, ge=1, description="hidden width of INFER's 3-layer classification head")
    head_layers: int = Field(3, ge=1, description="number of FC layers of the INFER head")
    head_dropout: float = Field(0.0, ge=0, lt=1, description="dropout between head layers (paper: none)")

    # INFER Table 2 ablation streams (§4.2: 'shallow CNN')
    shallow_channels: list[int] = Field(
        [32, 64, 128], min_length=1, description="conv widths of the shallow FFT / RGB CNNs (3x3, stride 2)"
    )
    shallow_embed_dim: int = Field(256, ge=1, description="embedding size of each shallow CNN")
    fft_input: Literal["gray", "rgb"] = Field(
        "gray",
        description="FFT stream input: log-magnitude spectrum of the BT.601 gray image or per RGB channel",
    )

    # AIRL frequency stream (AIRL §III-B)
    dct_cutoff: int = Field(
        4, ge=0, le=8, description="zero DCT coefficients with u < c and v < c (Table IV: 2-6)"
    )
    dct_block: int = Field(8, ge=2, description="DCT block size (the paper and JPEG: 8)")
    dct_log_magnitude: bool = Field(False, description="feed log(1+|F|) instead of the raw coefficients")
    dct_input_scale: float = Field(
        255.0,
        gt=0,
        description="raw-coefficient mode: the [0,1] grey image is multiplied by this before the DCT. 255 = "
        "the raw 0-255 grey values AIRL §IV-B feeds the frequency stream; at 1 the high-pass coefficients of "
        "a real face (std ~0.01) give the first conv a variance below BatchNorm's eps, so BatchNorm does not "
        "normalise. Log mode always uses 0-255 intensities",
    )
    freq_channels: list[int] = Field(
        [64, 128, 256], min_length=1, description="conv widths of the DCT stream"
    )
    freq_embed_dim: int = Field(256, ge=1, description="output width of the DCT stream")
    freq_dropout: float = Field(
        0.3, ge=0, lt=1, description="dropout before the DCT stream's Linear (p not given)"
    )

    # Wavelet-CLIP baseline (Baru et al., WACV 2025): 1-D wavelet decomposition of the frozen embedding
    wavelet: str = Field(
        "db6",
        description="wavelet_clip: PyWavelets name of the 1-D wavelet applied to the embedding (the paper's db6)",
    )
    wavelet_levels: int = Field(
        3, ge=1, le=8, description="wavelet_clip: decomposition levels; the coarsest approximation is refined"
    )

    # F3-Net baseline (Qian et al., ECCV 2020, §3.1-3.2)
    f3net_branches: Literal["both", "fad", "lfs"] = Field(
        "both",
        description="f3net: both streams (the paper's model, fused late) or one alone (its Table 4 ablations)",
    )
    lfs_window: int = Field(10, ge=2, description="f3net: LFS sliding-window side in pixels (the paper's 10)")
    lfs_stride: int = Field(2, ge=1, description="f3net: LFS window stride (the paper's 2)")
    lfs_bands: int = Field(6, ge=1, description="f3net: LFS frequency bands per window, M (the paper's 6)")

    # AIRL fusion and heads (§III-D, §III-E)
    fusion_dim: int = Field(512, ge=1, description="width of AIRL's late-fusion layer")
    fusion_dropout: float = Field(0.3, ge=0, lt=1, description="dropout after AIRL's fusion layer")
    proj_hidden: int = Field(256, ge=1, description="hidden width of AIRL's SupCon projection head")
    proj_dim: int = Field(128, ge=1, description="SupCon embedding size (L2-normalised)")
    early_fusion_init: Literal["mean", "zeros"] = Field(
        "mean",
        description="airl_early: weights of the added DCT input channel of the first conv; mean = the mean "
        "of the pretrained RGB filters, zeros = the network starts exactly as the pretrained one",
    )

    # Ensembles (fakescope.models.ensemble): the mean of the members' temperature-scaled log-odds
    members: list[ModelConfig] = Field(
        default_factory=list,
        description="ensemble: each member detector's model section, in order (built by `fakescope ensemble`)",
    )
    member_temperatures: list[float] = Field(
        default_factory=list,
        description="ensemble: each member's temperature, fitted on validation; its log-odds are divided by it",
    )
