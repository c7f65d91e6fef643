"""The ``train`` config section (docs/design.md, "Training recipe"; AIRL (Parihar), §III-G).

``AugmentConfig`` lives in :mod:`fakescope.data.config` (the data layer applies it); it is re-exported
here because ``train.augment`` is where users set it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fakescope.data.config import AugmentConfig
from fakescope.utils.schema import StrictModel


class TrainConfig(StrictModel):
    epochs: int = Field(30, ge=1, description="maximum epochs")
    batch_size: int = Field(
        32,
        ge=2,
        description="batch size (balanced: both classes in every batch); per rank under torchrun, so the "
        "global batch is batch_size x WORLD_SIZE at the same lr",
    )
    lr: float = Field(1e-4, gt=0, description="base learning rate (Adam)")
    weight_decay: float = Field(1e-5, ge=0, description="Adam weight decay")
    backbone_lr_mult: float = Field(0.1, gt=0, description="learning-rate multiplier of pretrained backbones")
    restart_period: int = Field(10, ge=1, description="cosine warm-restart period T_0 in epochs")
    min_lr: float = Field(1e-6, ge=0, description="eta_min of cosine annealing with warm restarts")
    grad_clip: float = Field(1.0, gt=0, description="gradient-norm clipping")
    early_stopping_patience: int = Field(
        10, ge=1, description="epochs without a gain in validation AUC before stopping"
    )
    supcon_weight: float = Field(0.5, ge=0, description="lambda in CE + lambda * SupCon")
    supcon_temperature: float = Field(0.07, gt=0, description="SupCon temperature tau")
    supcon_warmup_epochs: float = Field(
        0.0,
        ge=0,
        description="ramp the SupCon weight linearly from 0 to supcon_weight over this many epochs (0 = off, "
        "AIRL's recipe); lets the cross-entropy shape the embedding first (not in the paper)",
    )
    amp: bool = Field(False, description="autocast the forward pass (bf16 on CPU; amp_dtype on CUDA)")
    amp_dtype: Literal["bfloat16", "float16"] = Field(
        "bfloat16", description="autocast dtype; float16 (CUDA only) also uses a gradient scaler"
    )
    amp_fp32_depthwise: bool = Field(
        True,
        description="with amp: depthwise convolutions (groups > 1) run in float32 while dense ones autocast; "
        "oneDNN's bf16 depthwise backward was 2-3x slower than float32 on an AVX512-BF16 CPU while dense "
        "convolutions were 2-3x faster (docs/training.md); applies in training, validation and inference",
    )
    augment: Literal["auto"] | AugmentConfig | None = Field(
        "auto",
        description="training augmentation: auto = AIRL's (flip, brightness/contrast, noise, JPEG) for "
        "image-only detectors and none for detectors fed INR heatmaps or frozen embeddings (INFER §2.1 trains "
        "without it); null = none; or the fields of an augmentation block",
    )
    checkpoint_every_steps: int = Field(
        200, ge=1, description="write checkpoints/last.* every N optimiser steps (mid-epoch resume point)"
    )
    max_minutes: float | None = Field(
        None,
        gt=0,
        description="wall-clock budget of one train call: stop before an epoch that the last epoch's time "
        "says would not finish inside it (null = none); the run is marked time_cut and resumes with "
        "--resume, so a cut run is labelled, never passed off as the recipe's result",
    )
    balance_sources: bool = Field(
        False,
        description="balance every batch across the manifest's `dataset` column as well as across classes "
        "(each class takes its sources in turn), so a large source cannot drown a small one",
    )
    max_steps_per_epoch: int | None = Field(
        None, ge=1, description="cap on batches per epoch (quick runs); the schedule uses the capped length"
    )
    threshold_rule: Literal["eer", "youden", "max_accuracy"] = Field(
        "eer",
        description="how the decision threshold is chosen on the validation split (frame and video level): "
        "the equal-error point, max TPR-FPR (Youden's J), or max_accuracy (the most accurate threshold on "
        "validation, AIRL §IV's 'optimal threshold'; ties: the lowest); see "
        "fakescope.eval.metrics.choose_threshold",
    )
    ddp_backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="torch.distributed backend under torchrun; auto = nccl on CUDA, gloo on CPU"
    )
    feature_cache_dir: str | None = Field(
        None,
        description="shared cache for precomputed INR heatmaps / frozen-backbone features; "
        "default: inr.cache_dir (content-addressed, so runs share it)",
    )
    precompute_chunk: int = Field(
        256,
        ge=32,
        multiple_of=32,
        description="faces whose INR heatmaps / frozen embeddings train and evaluate compute at a time, "
        "straight into the caches: peak memory holds one chunk, never the whole set (docs/scale.md "
        "'Memory'); a multiple of the embedding batch (32), so the batches and thus the embeddings are "
        "the same as in one pass",
    )
    bad_images: Literal["skip", "error"] = Field(
        "skip",
        description="train and val images are all decoded once before training: skip = leave out the ones "
        "that cannot be decoded and the crops below the 32-px minimum face size (listed with their reason "
        "in RUN/skipped_rows.csv, counted on stderr); error = refuse to start, naming the first",
    )
    progress: bool = Field(True, description="show tqdm progress bars")
    num_threads: int = Field(
        0,
        ge=0,
        description="torch intra-op threads of the training process; it wins over the command's thread "
        "policy (0: that policy: `--threads`, else FAKESCOPE_THREADS, else the cores this process may use; "
        "docs/benchmarks.md, Threads). On a CPU shared with other jobs 1 can be much faster: OpenMP "
        "threads spin at every barrier while a sibling thread is descheduled (docs/training.md, Training "
        "speed on a CPU)",
    )
    channels_last: bool = Field(
        False,
        description="train in channels_last memory format (NHWC): faster convolutions on CPU (oneDNN); "
        "numerically the same ops summed in another order, so losses differ by float rounding only",
    )
    compile: bool = Field(
        False,
        description="torch.compile the detector's training forward (inductor; needs a C++ compiler; the "
        "first steps wait for compilation, which did not finish in 5 min for airl on a loaded 2-core CPU); "
        "validation and checkpoints use the plain detector",
    )
    synthetic_fakes: Literal["sbi", "xray"] | None = Field(
        None,
        description="train from real faces alone: the split's fakes are dropped and each real face yields "
        "itself and a blended fake (fakescope.data.synthetic): sbi = self-blended (Shiohara & Yamasaki, "
        "CVPR 2022), xray = blended with the landmark-nearest real face of another group (Face X-ray, Li "
        "et al., CVPR 2020); null = train on the split's real and fake faces",
    )
    synthetic_per_epoch: bool | None = Field(
        None,
        description="make a new blend of each face every epoch (SBI's online generation) or one for all "
        "epochs; None = per epoch for image-only detectors, fixed for detectors fed stored inputs (INR "
        "heatmaps, frozen embeddings), which are computed once per image",
    )
    synthetic_val: bool = Field(
        True,
        description="with synthetic_fakes: validate on the val split's real faces and their blended fakes "
        "(fixed), so no real fake takes part in training or model selection (SBI's protocol); false = "
        "validate on the val split as it is",
    )
    synthetic_landmarks: str = Field(
        "auto",
        description="where the blend masks' landmarks per real crop come from: auto = prepare's 5-point "
        "landmarks.csv next to data.manifest when it exists, else detect; detect = re-detected on each "
        "real crop (preprocess.detector on the crop padded by 25 %, the face nearest the centre; saved as "
        "the run's synthetic_landmarks.csv and reused on resume); dlib68 = 68 points per real crop from "
        "dlib's shape predictor (SBI's dense-landmark mask hull; pip install 'fakescope[sbi]'; saved as the "
        "run's synthetic_landmarks68.csv and reused on resume); layout = the fixed points of "
        "train.synthetic_face_layout for every crop; any other value = a landmarks CSV in prepare's layout "
        "or a 68-point file written by dlib68. Crops without landmarks (no face found) use the layout's points",
    )
    sbi_augment: Literal["strong", "sbi_code"] = Field(
        "strong",
        description="strength of SBI's source alteration (fakescope.data.synthetic): strong = hue ±0.3 rad, "
        "saturation and value ±30 %, the reading earlier runs used (its colour casts can be a shortcut); "
        "sbi_code = the authors' released code on its augmentation library's scales (RGB shift ±20, "
        "near-zero HSV, brightness/contrast ±10 %, then a down-scale by 2 or 4 or a sharpening)",
    )
    synthetic_face_layout: Literal["tight", "aligned"] = Field(
        "tight",
        description="the 5 landmarks assumed for crops without stored or detected ones "
        "(train.synthetic_landmarks): tight = the shared sets' tight face crops (median MTCNN "
        "landmarks of real dfdc-faces crops), aligned = prepare's aligned crops (ArcFace template, 30% margin)",
    )
