"""Everything a training run needs before its first step, built once: the run folder (written only
once the run is accepted), the rows (:mod:`fakescope.rows`), the detector, the datasets with their
stored inputs, the loader and the optimiser."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from fakescope.config import ExperimentConfig, save_config
from fakescope.data.config import AugmentConfig
from fakescope.data.dataset import FaceDataset, collate_batch
from fakescope.data.sampler import BalancedBatchSampler
from fakescope.errors import ConfigError
from fakescope.inference.inputs import STORED_INPUTS, detector_inputs, precompute_inputs
from fakescope.inference.precision import apply_amp_policy, cpu_has_native_bf16
from fakescope.rows.crop_caches import attach_crop_caches
from fakescope.rows.landmarks import write_synthetic_landmarks
from fakescope.rows.rowset import RowSet
from fakescope.rows.seen import write_seen_rows
from fakescope.rows.synthetic import SyntheticPlan, plan_synthetic_fakes
from fakescope.rows.training import training_rows
from fakescope.rows.unreadable import write_skipped_rows
from fakescope.utils.distributed import DistInfo

__all__ = ["TrainingSetup", "build_detector", "check_run_dir", "resolve_augment", "set_up"]


@dataclass
class TrainingSetup:
    """Everything the loop needs, built once by :func:`set_up`."""

    cfg: ExperimentConfig
    run: Path
    device: torch.device
    info: DistInfo
    detector: torch.nn.Module
    model: torch.nn.Module  # the detector, wrapped in DistributedDataParallel under torchrun
    train_ds: FaceDataset
    val_ds: FaceDataset
    sampler: BalancedBatchSampler
    loader: DataLoader
    iters: int
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts
    scaler: torch.amp.GradScaler
    group_names: list[str]

    @property
    def ckpt_dir(self) -> Path:
        return self.run / "checkpoints"


def check_run_dir(cfg: ExperimentConfig, run_dir: str | os.PathLike[str] | None, resume: bool) -> Path:
    """The run folder, checked against ``resume``; nothing is written yet (see :func:`set_up`)."""
    run = Path(run_dir) if run_dir is not None else Path(cfg.output_dir) / cfg.name
    last_json = run / "checkpoints" / "last.json"
    if resume and not last_json.is_file():
        raise ConfigError(f"--resume: {last_json} not found (nothing to resume in {run})")
    if not resume and last_json.is_file():
        raise ConfigError(f"{run} already holds a run; pass --resume to continue it or --out for a new one")
    return run


def _write_run_dir(cfg: ExperimentConfig, run: Path, rows: RowSet, synthetic: SyntheticPlan) -> None:
    """The accepted run's folder: its resolved config and the record of its rows (the images left out,
    the content hashes evaluate's leakage guard reads, the landmarks detected for synthetic fakes)."""
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")
    write_skipped_rows(run, rows)
    write_seen_rows(run, rows)  # evaluate recognises these images by content, under any path
    write_synthetic_landmarks(run, synthetic.landmarks)


def resolve_augment(cfg: ExperimentConfig, inputs: frozenset[str]) -> AugmentConfig | None:
    """The augmentation a run trains with. ``train.augment: auto`` (the default) is AIRL's augmentation
    (AIRL (Parihar), §IV-B) for detectors that read the image alone, and none for detectors fed stored
    inputs (INR heatmaps, frozen embeddings): INFER trains without augmentation (INFER, anonymous
    NeurIPS-format submission, §2.1), and those inputs are computed once from the un-augmented crop.
    Setting augmentation explicitly for such a detector is allowed but warned about: the image streams
    would then see augmented crops while heatmaps and embeddings do not."""
    aug = cfg.train.augment
    stored = sorted(set(inputs) & set(STORED_INPUTS))
    if aug == "auto":
        return None if stored else AugmentConfig()
    if aug is not None and stored:
        warnings.warn(
            f"train.augment is set for {cfg.model.name}, whose {', '.join(stored)} inputs are computed once "
            "from un-augmented crops: only its image streams will see augmentation (INFER trains without "
            "it; set train.augment: null or auto)",
            stacklevel=2,
        )
    return aug


def build_detector(cfg: ExperimentConfig, device: torch.device) -> torch.nn.Module:
    """The detector a run trains, on ``device`` (the one place training builds it)."""
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector as build

    return build(cfg.model, input_spec_for(cfg)).to(device)


def _datasets(
    cfg: ExperimentConfig, rows: RowSet, synthetic: SyntheticPlan, inputs: frozenset[str]
) -> tuple[FaceDataset, FaceDataset]:
    """The train and val datasets; synthetic fakes change per epoch unless the detector reads stored
    inputs (computed once) or ``train.synthetic_per_epoch`` says otherwise."""
    per_epoch = cfg.train.synthetic_per_epoch
    if per_epoch is None:
        per_epoch = not (set(inputs) & set(STORED_INPUTS))
    train_syn = {"synthetic": synthetic.train, "synthetic_per_epoch": per_epoch} if synthetic.train else {}
    val_syn = {"synthetic": synthetic.val, "synthetic_per_epoch": False} if synthetic.val else {}
    image_opts = {"max_image_pixels": cfg.data.max_image_pixels, "background": cfg.data.rgba_background}
    train_ds = FaceDataset(
        rows.splits["train"], cfg.data.image_size, augment=resolve_augment(cfg, inputs),
        seed=cfg.seed, **train_syn, **image_opts,
    )  # fmt: skip
    val_ds = FaceDataset(rows.splits["val"], cfg.data.image_size, **val_syn, **image_opts)
    return train_ds, val_ds


def set_up(cfg: ExperimentConfig, run: Path, device: torch.device, info: DistInfo) -> TrainingSetup:
    """Choose the rows; once they are accepted, write the run folder; then build the detector, the
    datasets (with their stored inputs), the loader and the optimiser."""
    tc = cfg.train
    progress = tc.progress and info.is_main
    rows = training_rows(cfg, progress)
    detector = build_detector(cfg, device)  # before the fakes' landmarks: both draw from the seeded RNG
    inputs = detector_inputs(detector)
    synthetic = plan_synthetic_fakes(cfg, run, rows, progress)
    if info.is_main:  # accepted: from here on the run folder is written
        _write_run_dir(cfg, run, rows, synthetic)
    train_ds, val_ds = _datasets(cfg, rows, synthetic, inputs)
    precompute_inputs(inputs, train_ds, cfg, device, info, detector, "train", run / "inr_fits_train.csv")
    precompute_inputs(inputs, val_ds, cfg, device, info, detector, "val", run / "inr_fits_val.csv")
    if cfg.data.crop_cache:
        attach_crop_caches(cfg, run, info, {"train": train_ds, "val": val_ds})
    sampler = BalancedBatchSampler(
        [r.label for r in train_ds.rows], tc.batch_size, seed=cfg.seed, rank=info.rank,
        world_size=info.world_size, strata=[r.dataset for r in train_ds.rows] if tc.balance_sources else None,
    )  # fmt: skip
    loader = DataLoader(
        train_ds, batch_sampler=sampler, num_workers=cfg.data.num_workers, collate_fn=collate_batch,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.data.persistent_workers and cfg.data.num_workers > 0,
        prefetch_factor=cfg.data.prefetch_factor if cfg.data.num_workers > 0 else None,
        # Own generator: creating an iterator must not draw from the global RNG, or a resumed run's
        # dropout masks would drift from the uninterrupted run's.
        generator=torch.Generator().manual_seed(cfg.seed),
    )  # fmt: skip
    iters = len(sampler) if tc.max_steps_per_epoch is None else min(len(sampler), tc.max_steps_per_epoch)
    model, optimizer, scheduler, scaler = _optimisation(cfg, detector, device, info)
    return TrainingSetup(
        cfg, run, device, info, detector, model, train_ds, val_ds, sampler, loader, iters, optimizer,
        scheduler, scaler, [str(g.get("name", f"group{i}")) for i, g in enumerate(optimizer.param_groups)],
    )  # fmt: skip


def _optimisation(
    cfg: ExperimentConfig, detector: torch.nn.Module, device: torch.device, info: DistInfo
) -> tuple[
    torch.nn.Module,
    torch.optim.Optimizer,
    torch.optim.lr_scheduler.CosineAnnealingWarmRestarts,
    torch.amp.GradScaler,
]:
    """The model the loop steps (DDP-wrapped under torchrun, compiled with ``train.compile``), Adam on
    the detector's parameter groups, the warm-restart cosine schedule and the float16 loss scaler."""
    tc = cfg.train
    apply_amp_policy(detector, tc)  # train.amp_fp32_depthwise: the layers kept in float32 under autocast
    if tc.amp and device.type == "cpu" and not cpu_has_native_bf16():
        warnings.warn(
            "train.amp: this CPU has no native bf16 (AVX512-BF16 or AMX), so bf16 autocast is emulated "
            "and slower than float32; leave train.amp off here (docs/training.md)",
            stacklevel=2,
        )
    if tc.channels_last:  # NHWC: oneDNN's fast convolution/BatchNorm path on CPU (docs/training.md)
        detector = detector.to(memory_format=torch.channels_last)
    model: torch.nn.Module = detector
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(
            detector,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    if tc.compile:  # training forward only; validation and checkpoints use the plain detector
        model = torch.compile(model)
    optimizer = torch.optim.Adam(
        detector.param_groups(tc.lr, tc.backbone_lr_mult), lr=tc.lr, weight_decay=tc.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=tc.restart_period, eta_min=tc.min_lr
    )
    scaler = torch.amp.GradScaler(
        "cuda", enabled=tc.amp and tc.amp_dtype == "float16" and device.type == "cuda"
    )
    return model, optimizer, scheduler, scaler
