"""The training loop (papers/AIRL.txt §III-G "Training Procedure"; papers/INFER.txt §3.5 / §4.1;
DESIGN.md "AIRL" Training and "Model selection").

- Adam on ``detector.param_groups(lr)`` (pretrained backbones at ``train.backbone_lr_mult`` x),
  weight decay ``train.weight_decay``.
- ``CosineAnnealingWarmRestarts(T_0=train.restart_period, eta_min=train.min_lr)`` stepped after
  **every** optimiser step with the fractional epoch ``epoch + (i + 1) / iters``, so the learning rate
  follows the cosine within an epoch and restarts every ``restart_period`` epochs.
- Gradient clipping at ``train.grad_clip`` (global L2 norm); optional autocast (``train.amp``).
- Balanced batches (:class:`~fakescope.data.sampler.BalancedBatchSampler`), seeded augmentation
  (``train.augment: auto``: AIRL's for image-only detectors, none for the INFER family, see
  :func:`resolve_augment`).
- Under ``torchrun`` the batch size is **per rank**: the global batch is ``train.batch_size ×
  WORLD_SIZE``, and the learning rate is not rescaled. A run on N GPUs therefore takes N× fewer steps
  per epoch at the same rate; to keep a single-process run's schedule, divide ``train.batch_size`` by N
  (or scale ``train.lr`` yourself, e.g. linearly, and say so).
- After each epoch: validation AUC on the **validation split only**; the best epoch is saved as
  ``checkpoints/best`` with the decision threshold chosen on validation (``train.threshold_rule``);
  training stops after ``train.early_stopping_patience`` epochs without a gain. The test split is never
  loaded here.
- ``checkpoints/last`` is written every ``train.checkpoint_every_steps`` steps and after each epoch, with
  the optimiser, scheduler, sampler and RNG state, so ``resume=True`` continues an interrupted run to
  the same weights an uninterrupted run reaches.
- INFER-family detectors: INR heatmaps and frozen-backbone features are computed once, before the
  epochs, into a content-addressed cache shared between runs (``train.feature_cache_dir``), by
  :mod:`fakescope.inference.inputs`, the same code that builds ``evaluate``'s and ``detect``'s inputs.

- Speed on a CPU (docs/training.md, "Training speed on a CPU"; all off by default): ``train.channels_last``
  (NHWC model and batches), ``data.crop_cache`` (crops decoded once into a memory-mapped uint8 cache,
  :func:`_attach_crop_caches`), ``data.num_workers`` with ``data.persistent_workers`` /
  ``data.prefetch_factor``, ``train.num_threads`` and ``train.compile``.

The loop reads as its steps: :func:`_set_up`, :func:`_resume`, then per epoch :func:`_run_epoch`,
:func:`_validate`, :func:`_select` (best checkpoint, early stopping), :func:`_log_epoch` and
:func:`_save_last`.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from fakescope.config import ExperimentConfig, save_config
from fakescope.data.config import AugmentConfig
from fakescope.data.dataset import FaceDataset, collate_batch
from fakescope.data.images import unreadable_images
from fakescope.data.manifest import ManifestRow
from fakescope.data.sampler import BalancedBatchSampler
from fakescope.data.splits import SEEN_ROWS_FILE, load_splits, write_seen_rows
from fakescope.data.synthetic import SyntheticFakes, read_aligned_landmarks
from fakescope.errors import ConfigError, FakescopeError, InputError
from fakescope.eval.metrics import accuracy, auc, choose_thresholds
from fakescope.inference import checkpoint as ckpt
from fakescope.inference.inputs import STORED_INPUTS, detector_inputs, precompute_inputs
from fakescope.inference.predict import autocast_context, iter_predictions, to_device
from fakescope.train.losses import detector_loss
from fakescope.utils.atomic import atomic_open, atomic_write_text
from fakescope.utils.distributed import (
    DistInfo,
    all_gather_objects,
    barrier,
    cleanup_distributed,
    init_distributed,
)
from fakescope.utils.runtime import resolve_device, seed_everything
from fakescope.utils.text import PATH_CSV_ERRORS, one_line

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "TrainingInterrupted", "train", "resolve_augment"]

# lr_<group>: the rate this step used; epoch_progress: the fractional epoch the scheduler moved to after it.
STEP_LOG_FIELDS = ["epoch", "step", "epoch_progress", "loss", "ce", "supcon", "grad_norm"]
EPOCH_LOG_FIELDS = [
    "epoch", "step", "train_loss", "val_auc", "val_threshold", "val_acc", "best_val_auc", "seconds",
]  # fmt: skip


class TrainingInterrupted(FakescopeError):
    """Raised by ``stop_after_steps`` to simulate a crash (tests) after the step's checkpoint logic."""


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val_auc: float
    val_threshold: float
    epochs_run: int
    steps: int
    stopped_early: bool
    time_cut: bool = False  # stopped by train.max_minutes before the epoch budget or early stopping


def budget_cut(*, epochs_run: int, epochs_budget: int, stopped_early: bool, time_cut: bool = False) -> bool:
    """A run cut by its budget: it reached its epoch cap (not early stopping) or ``train.max_minutes``
    stopped it, so it might have gained from more training. Results tables mark such runs, because they
    are not the method's result."""
    return bool(time_cut) or (not stopped_early and epochs_run >= epochs_budget)


def _validate(
    detector: torch.nn.Module,
    val_ds: FaceDataset,
    cfg: ExperimentConfig,
    device: torch.device,
    info: DistInfo,
) -> dict[str, float]:
    idx = list(range(info.rank, len(val_ds), info.world_size))
    loader = DataLoader(
        torch.utils.data.Subset(val_ds, idx),
        batch_size=cfg.eval.batch_size,
        shuffle=False,
        num_workers=cfg.data.num_workers,
        collate_fn=collate_batch,
        generator=torch.Generator().manual_seed(0),
    )
    labels: list[int] = []
    scores: list[float] = []
    videos: list[str] = []
    for batch, out in iter_predictions(detector, loader, device, cfg.train.amp, cfg.train.amp_dtype):
        labels.extend(batch["label"].tolist())
        scores.extend(out["prob"].tolist())
        videos.extend(batch["video"])
    gathered = all_gather_objects((labels, scores, videos), info)
    y = np.concatenate([np.asarray(g[0], dtype=np.int64) for g in gathered])
    s = np.concatenate([np.asarray(g[1], dtype=np.float64) for g in gathered])
    v = [vid for g in gathered for vid in g[2]]
    if not np.all(np.isfinite(s)):
        raise FakescopeError("validation produced non-finite scores (diverged training?)")
    # The decision threshold is chosen here, on validation, and only applied to test data later.
    thresholds = choose_thresholds(y, s, v, cfg.train.threshold_rule)
    return {
        "auc": auc(y, s),
        "threshold": thresholds["frame"],
        "threshold_video": thresholds["video"],
        "acc": accuracy(y, s, thresholds["frame"]),
        "acc_0.5": accuracy(y, s, 0.5),
        "n": int(len(y)),
    }


# ---------------------------------------------------------------- logs


def _append_csv(path: Path, fields: list[str], row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def _truncate_csv(path: Path, key: str, keep_upto: float) -> None:
    """Drop rows logged after the checkpoint we resume from (the crashed run's extra steps)."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = [r for r in reader if float(r[key]) <= keep_upto]
    lines = [",".join(fields)] + [",".join(r[f] for f in fields) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _param_group_names(optimizer: torch.optim.Optimizer) -> list[str]:
    return [str(g.get("name", f"group{i}")) for i, g in enumerate(optimizer.param_groups)]


# ---------------------------------------------------------------- augmentation


def resolve_augment(cfg: ExperimentConfig, inputs: frozenset[str]) -> AugmentConfig | None:
    """The augmentation a run trains with. ``train.augment: auto`` (the default) is AIRL's augmentation
    (papers/AIRL.txt §IV-B) for detectors that read the image alone, and none for detectors fed stored
    inputs (INR heatmaps, frozen embeddings): INFER trains without augmentation (papers/INFER.txt §2.1),
    and those inputs are computed once from the un-augmented crop. Setting augmentation explicitly for
    such a detector is allowed but warned about: the image streams would then see augmented crops while
    heatmaps and embeddings do not."""
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


# ---------------------------------------------------------------- the loop, step by step


@dataclass
class LoopState:
    """Where the loop is; saved in ``checkpoints/last.json`` (``resume.loop``) and restored on resume."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    best_auc: float = -1.0
    best_epoch: int = -1
    best_threshold: float = 0.5
    bad_epochs: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    stopped_early: bool = False


@dataclass
class TrainingSetup:
    """Everything the loop needs, built once by :func:`_set_up`."""

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


def _prepare_run_dir(
    cfg: ExperimentConfig, run_dir: str | os.PathLike[str] | None, resume: bool, info: DistInfo
) -> Path:
    """The run folder, checked against ``resume``; the resolved config is written into it."""
    run = Path(run_dir) if run_dir is not None else Path(cfg.output_dir) / cfg.name
    last_json = run / "checkpoints" / "last.json"
    if resume and not last_json.is_file():
        raise ConfigError(f"--resume: {last_json} not found (nothing to resume in {run})")
    if not resume and last_json.is_file():
        raise ConfigError(f"{run} already holds a run; pass --resume to continue it or --out for a new one")
    if info.is_main:
        run.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run / "config.yaml")
    return run


def _train_val_rows(cfg: ExperimentConfig) -> tuple[list[ManifestRow], list[ManifestRow]]:
    """The train and val rows (:func:`fakescope.data.splits.load_splits`); the test split stays unread."""
    splits = load_splits(cfg.data)
    return _check_splits(splits["train"], splits["val"], synthetic=cfg.train.synthetic_fakes is not None)


def _check_splits(
    train_rows: list[ManifestRow], val_rows: list[ManifestRow], when: str = "", synthetic: bool = False
) -> tuple[list[ManifestRow], list[ManifestRow]]:
    """Both splits non-empty and holding both classes (with synthetic fakes: real faces, the fakes are
    made from them)."""
    note = f" {when}" if when else ""
    if not train_rows or not val_rows:
        raise InputError(
            f"data: need train and val rows (got {len(train_rows)} train, {len(val_rows)} val{note}); "
            "check data.split or the manifest's split column"
        )
    if synthetic:
        return train_rows, val_rows
    if len({r.label for r in val_rows}) < 2:
        raise InputError(
            f"data: the validation split holds one class only ({len(val_rows)} rows{note}); AUC needs both"
        )
    if len({r.label for r in train_rows}) < 2:
        raise InputError(f"data: the train split holds one class only ({len(train_rows)} rows{note})")
    return train_rows, val_rows


SKIPPED_ROWS_FILE = "skipped_rows.csv"


def _drop_unreadable(
    cfg: ExperimentConfig, run: Path, info: DistInfo, splits: dict[str, list[ManifestRow]]
) -> dict[str, list[ManifestRow]]:
    """Decode every train and val image once, before the first step, so that one corrupt file can never
    end a run mid-epoch. ``train.bad_images``: ``skip`` leaves the bad rows out (listed with their cause
    in ``RUN/skipped_rows.csv``, counted in one line on stderr); ``error`` refuses to start."""
    kept: dict[str, list[ManifestRow]] = {}
    bad: list[tuple[str, str, str]] = []
    for split, rows in splits.items():
        errors = unreadable_images(
            [r.path for r in rows], max_pixels=cfg.data.max_image_pixels, background=cfg.data.rgba_background,
            desc=f"check {split} images", progress=cfg.train.progress and info.is_main and len(rows) > 100,
        )  # fmt: skip
        kept[split] = [r for r in rows if r.path not in errors]
        bad += [(split, path, str(err)) for path, err in errors.items()]
    if not bad:
        return kept
    if cfg.train.bad_images == "error":
        raise InputError(
            f"{bad[0][2]} ({len(bad)} unreadable train/val image(s); train.bad_images=skip trains without them)"
        )
    if info.is_main:
        with atomic_open(
            run / SKIPPED_ROWS_FILE, "w", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS
        ) as fh:
            w = csv.writer(fh)
            w.writerow(["split", "path", "error"])
            w.writerows(bad)
        counts = ", ".join(
            f"{sum(b[0] == s for b in bad)} {s}" for s in splits if any(b[0] == s for b in bad)
        )
        tqdm.write(
            one_line(
                f"train: skipped {len(bad)} unreadable image(s) ({counts}; listed in {run / SKIPPED_ROWS_FILE}); "
                f"first: {bad[0][2]}"
            ),
            file=sys.stderr,
        )
    return kept


def _reals(rows: list[ManifestRow]) -> list[ManifestRow]:
    return [r for r in rows if r.label == 0]


SYNTHETIC_LANDMARKS_FILE = "synthetic_landmarks.csv"


def _synthetic_landmarks(
    cfg: ExperimentConfig, run: Path, rows: list[ManifestRow], info: DistInfo
) -> dict[str, np.ndarray]:
    """The blend masks' landmarks per real crop path (``train.synthetic_landmarks``): a stored file,
    ``prepare``'s ``landmarks.csv``, or landmarks re-detected on each crop (saved in the run, so a
    resumed run makes the same fakes). Crops missing from the result use the layout's fixed points."""
    source = cfg.train.synthetic_landmarks
    if source == "layout":
        return {}
    beside = Path(cfg.data.manifest).parent / "landmarks.csv" if cfg.data.manifest else None
    saved = run / SYNTHETIC_LANDMARKS_FILE
    if source == "auto" and beside is not None and beside.is_file():
        file = beside
    elif source in ("auto", "detect"):
        file = saved
        if not saved.is_file():
            from fakescope.data.images import load_image_rgb
            from fakescope.preprocess.detectors import build_face_detector
            from fakescope.preprocess.landmarks import detect_crop_landmarks, write_landmarks_csv

            detector = build_face_detector(cfg.preprocess, device="cpu")

            def load(path: str) -> np.ndarray:  # the decode FaceDataset blends on, so pixels match
                return load_image_rgb(
                    path, max_pixels=cfg.data.max_image_pixels, background=cfg.data.rgba_background
                )

            found = detect_crop_landmarks(
                [r.path for r in rows], detector, load, progress=cfg.train.progress and info.is_main
            )  # fmt: skip
            if info.is_main:
                write_landmarks_csv(saved, found)
            marks = {p: pts for p, (pts, _) in found.items()}
            _log_landmarks(marks, rows, "detected on the crops")
            return marks
    else:
        file = Path(source)
        if not file.is_file():
            raise InputError(
                f"train.synthetic_landmarks: {file}: file not found (or use auto, detect, layout)"
            )
    stored = read_aligned_landmarks(file)
    marks = {r.path: stored[k] for r in rows if (k := str(Path(r.path).resolve())) in stored}
    _log_landmarks(marks, rows, f"from {file}")
    return marks


def _log_landmarks(marks: dict[str, np.ndarray], rows: list[ManifestRow], where: str) -> None:
    log.info(
        "synthetic fakes: landmarks %s for %d of %d real crops; the rest use train.synthetic_face_layout's points",
        where, len(marks), len(rows),
    )  # fmt: skip


def _synthetic_options(
    cfg: ExperimentConfig,
    inputs: frozenset[str],
    train_rows: list[ManifestRow],
    val_rows: list[ManifestRow],
    run: Path,
    info: DistInfo,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``FaceDataset`` options for ``train.synthetic_fakes`` (none when it is null): the train split's
    real faces with a blend per epoch (or fixed, for detectors fed stored inputs), and, with
    ``train.synthetic_val``, the val split's real faces with fixed blends (another seed)."""
    tc = cfg.train
    if tc.synthetic_fakes is None:
        return {}, {}
    marks = _synthetic_landmarks(
        cfg, run, _reals(train_rows) + (_reals(val_rows) if tc.synthetic_val else []), info
    )

    def fakes(rows: list[ManifestRow], seed: int) -> SyntheticFakes:
        reals = _reals(rows)
        if len(reals) < 2:
            raise InputError(f"train.synthetic_fakes needs real faces in every split (got {len(reals)})")
        return SyntheticFakes(
            tc.synthetic_fakes, [r.path for r in reals], [r.group for r in reals], landmarks=marks,
            face_layout=tc.synthetic_face_layout, seed=seed,
        )  # fmt: skip

    per_epoch = tc.synthetic_per_epoch
    if per_epoch is None:
        per_epoch = not (set(inputs) & set(STORED_INPUTS))
    train_opts = {"synthetic": fakes(train_rows, cfg.seed), "synthetic_per_epoch": per_epoch}
    val_opts = (
        {"synthetic": fakes(val_rows, cfg.seed + 1), "synthetic_per_epoch": False} if tc.synthetic_val else {}
    )
    return train_opts, val_opts


def _set_up(cfg: ExperimentConfig, run: Path, device: torch.device, info: DistInfo) -> TrainingSetup:
    """Build the detector, the datasets (with their stored inputs), the loader and the optimiser."""
    from fakescope.models.registry import build_detector

    tc = cfg.train
    train_rows, val_rows = _train_val_rows(cfg)
    readable = _drop_unreadable(cfg, run, info, {"train": train_rows, "val": val_rows})
    train_rows, val_rows = _check_splits(
        readable["train"], readable["val"], "after leaving out unreadable images",
        synthetic=tc.synthetic_fakes is not None,
    )  # fmt: skip
    if tc.synthetic_fakes is not None:  # trained (and, with synthetic_val, selected) on real faces alone
        train_rows = _reals(train_rows)
        val_rows = _reals(val_rows) if tc.synthetic_val else val_rows
    if info.is_main:  # evaluate recognises these images by content, under any path (leakage guard)
        write_seen_rows(run / SEEN_ROWS_FILE, {"train": train_rows, "val": val_rows})
    detector = build_detector(cfg).to(device)
    inputs = detector_inputs(detector)
    image_opts = {"max_image_pixels": cfg.data.max_image_pixels, "background": cfg.data.rgba_background}
    train_syn, val_syn = _synthetic_options(cfg, inputs, train_rows, val_rows, run, info)
    train_ds = FaceDataset(
        train_rows, cfg.data.image_size, augment=resolve_augment(cfg, inputs),
        seed=cfg.seed, **train_syn, **image_opts,
    )  # fmt: skip
    val_ds = FaceDataset(val_rows, cfg.data.image_size, **val_syn, **image_opts)
    precompute_inputs(inputs, train_ds, cfg, device, info, detector, "train", run / "inr_fits_train.csv")
    precompute_inputs(inputs, val_ds, cfg, device, info, detector, "val", run / "inr_fits_val.csv")

    if cfg.data.crop_cache:
        _attach_crop_caches(cfg, run, info, {"train": train_ds, "val": val_ds})
    sampler = BalancedBatchSampler(
        [r.label for r in train_ds.rows], tc.batch_size, seed=cfg.seed, rank=info.rank,
        world_size=info.world_size,
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
    optimizer = torch.optim.Adam(detector.param_groups(tc.lr), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=tc.restart_period, eta_min=tc.min_lr
    )
    scaler = torch.amp.GradScaler(
        "cuda", enabled=tc.amp and tc.amp_dtype == "float16" and device.type == "cuda"
    )
    return TrainingSetup(
        cfg, run, device, info, detector, model, train_ds, val_ds, sampler, loader, iters, optimizer,
        scheduler, scaler, _param_group_names(optimizer),
    )  # fmt: skip


def _attach_crop_caches(
    cfg: ExperimentConfig, run: Path, info: DistInfo, datasets: dict[str, FaceDataset]
) -> None:
    """``data.crop_cache``: decode and resize each split's crops once into a memory-mapped uint8 cache
    (:mod:`fakescope.data.crop_cache`; rank 0 builds, the others wait and read) and make the datasets
    read from it. Splits with perturbations or synthetic fakes keep decoding (the cache holds plain
    crops)."""
    from fakescope.data.crop_cache import build_crop_cache

    cache_dir = Path(cfg.data.crop_cache_dir) if cfg.data.crop_cache_dir else run / "crop_cache"
    for split, ds in datasets.items():
        if ds.synthetic is not None or ds._perturb is not None:
            log.info("data.crop_cache: the %s split has synthetic fakes or perturbations; not cached", split)
            continue
        paths = [r.path for r in ds.rows]
        opts = {"max_pixels": ds.max_image_pixels, "background": ds.background}
        cache = None
        for turn in ("build", "open"):  # rank 0 builds first; the others then find the finished file
            if (turn == "build") == info.is_main:
                bar = tqdm(
                    total=len(paths), desc=f"crop cache {split}", unit="face", leave=False,
                    disable=not (cfg.train.progress and info.is_main and len(paths) > 100),
                )  # fmt: skip
                with bar:
                    cache = build_crop_cache(
                        paths, ds.image_size, cache_dir, ds.load_crop, opts, progress=bar.update
                    )
            barrier(info)
        assert cache is not None
        ds.use_crops(cache)


def _resume(s: TrainingSetup) -> LoopState:
    """Load ``checkpoints/last``: weights, optimiser, scheduler, scaler, loop position and RNG state;
    drop the log rows the crashed run wrote after that checkpoint."""
    last_json = s.ckpt_dir / "last.json"
    meta = ckpt.read_checkpoint_meta(last_json)
    if meta.get("detector") != s.cfg.model.name:
        raise ConfigError(
            f"--resume: {last_json} is a {meta.get('detector')!r} run, not {s.cfg.model.name!r}"
        )
    ckpt.load_state_into(s.detector, ckpt.load_model_state(last_json, meta), str(last_json))
    tensors = ckpt.load_train_state(last_json, meta)
    ckpt.restore_optimizer(s.optimizer, tensors, meta)
    s.scheduler.load_state_dict(meta["resume"]["scheduler"])
    if s.scaler.is_enabled() and meta["resume"].get("scaler"):
        s.scaler.load_state_dict(meta["resume"]["scaler"])
    state = LoopState(**meta["resume"]["loop"])
    ckpt.restore_rng(tensors, meta["resume"]["rng"])
    if s.info.is_main:
        _truncate_csv(s.run / "steps.csv", "step", state.step)
        _truncate_csv(s.run / "log.csv", "epoch", state.epoch)  # 1-based rows of completed epochs
    return state


def _save_last(s: TrainingSetup, state: LoopState, epoch: int, batch: int) -> None:
    """``checkpoints/last`` (rank 0): the resume point ``(epoch, batch)`` with the full training state."""
    if not s.info.is_main:
        return
    loop = {**dataclasses.asdict(state), "epoch": epoch, "batch": batch}
    ckpt.save_checkpoint(
        s.ckpt_dir, "last", model=s.detector, cfg=s.cfg, detector_name=s.cfg.model.name, epoch=epoch,
        step=state.step, val_metrics={"auc": state.best_auc}, val_threshold=state.best_threshold,
        optimizer=s.optimizer,
        resume={"loop": loop, "scheduler": s.scheduler.state_dict(),
                "scaler": s.scaler.state_dict() if s.scaler.is_enabled() else None},
    )  # fmt: skip


def _optimiser_step(
    s: TrainingSetup, batch: dict[str, Any], epoch: int, i: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor], float, list[float]]:
    """Forward, loss (:func:`detector_loss`), backward, clip, Adam step, then the scheduler's step to
    the fractional epoch ``epoch + (i + 1) / iters``. Returns the loss, its parts, the gradient norm
    and the learning rates the step used."""
    tc = s.cfg.train
    if tc.channels_last and batch.get("image") is not None and batch["image"].dim() == 4:
        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
    with autocast_context(s.device, tc.amp, tc.amp_dtype):
        out = s.model(batch)
        losses = detector_loss(s.detector, batch, out, tc, epoch_progress=epoch + i / s.iters)
    loss = losses["total"]
    if not torch.isfinite(loss):
        raise FakescopeError(
            f"epoch {epoch + 1} step {i + 1}: loss is {loss.item()} (diverged); lower train.lr"
        )
    s.optimizer.zero_grad(set_to_none=True)
    s.scaler.scale(loss).backward()
    s.scaler.unscale_(s.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(s.detector.parameters(), tc.grad_clip)
    s.scaler.step(s.optimizer)
    s.scaler.update()
    lrs_used = [g["lr"] for g in s.optimizer.param_groups]
    s.scheduler.step(epoch + (i + 1) / s.iters)
    return loss.detach(), losses, float(grad_norm), lrs_used


def _run_epoch(
    s: TrainingSetup, state: LoopState, epoch: int, start_batch: int, stop_after: int | None
) -> None:
    """One epoch's optimiser steps from ``start_batch``, logging each to ``steps.csv`` and writing
    ``checkpoints/last`` every ``train.checkpoint_every_steps`` steps."""
    tc = s.cfg.train
    if start_batch == 0:
        state.loss_sum, state.loss_count = 0.0, 0
    s.sampler.set_epoch(epoch, start_batch)
    s.train_ds.set_epoch(epoch)
    s.model.train()
    step_fields = STEP_LOG_FIELDS + [f"lr_{n}" for n in s.group_names]
    bar = tqdm(
        total=s.iters, initial=start_batch, desc=f"epoch {epoch + 1}/{tc.epochs}", unit="step",
        disable=not (tc.progress and s.info.is_main), dynamic_ncols=True,
    )  # fmt: skip
    batches = iter(s.loader)
    with bar:
        for i in range(start_batch, s.iters):
            loss, losses, grad_norm, lrs_used = _optimiser_step(
                s, to_device(next(batches), s.device), epoch, i
            )
            state.step += 1
            state.loss_sum += float(loss)
            state.loss_count += 1
            if s.info.is_main:
                row = {
                    "epoch": epoch + 1, "step": state.step, "epoch_progress": round(epoch + (i + 1) / s.iters, 6),
                    "loss": float(loss), "grad_norm": grad_norm,
                    **{f"lr_{n}": lr for n, lr in zip(s.group_names, lrs_used, strict=True)},
                    **{k: float(v.detach()) for k, v in losses.items() if k != "total" and torch.is_tensor(v)},
                }  # fmt: skip
                _append_csv(s.run / "steps.csv", step_fields, row)
            bar.set_postfix(loss=f"{float(loss):.4f}", lr=f"{s.optimizer.param_groups[0]['lr']:.2e}")
            bar.update(1)
            if state.step % tc.checkpoint_every_steps == 0 and i + 1 < s.iters:
                _save_last(s, state, epoch, i + 1)
            if stop_after is not None and state.step >= stop_after:
                raise TrainingInterrupted(f"stopped after {state.step} steps (stop_after_steps)")


def _select(s: TrainingSetup, state: LoopState, val: dict[str, float], epoch: int) -> bool:
    """Keep the epoch as ``checkpoints/best`` when its validation AUC is the best so far (with the
    thresholds chosen on validation); count epochs without a gain for early stopping."""
    improved = val["auc"] > state.best_auc
    if improved:
        state.best_auc, state.best_epoch, state.best_threshold = val["auc"], epoch + 1, val["threshold"]
        state.bad_epochs = 0
        if s.info.is_main:
            ckpt.save_checkpoint(
                s.ckpt_dir, "best", model=s.detector, cfg=s.cfg, detector_name=s.cfg.model.name,
                epoch=epoch + 1, step=state.step, val_metrics=val,
                val_threshold={"frame": val["threshold"], "video": val["threshold_video"]},
            )  # fmt: skip
    else:
        state.bad_epochs += 1
    if state.bad_epochs >= s.cfg.train.early_stopping_patience:
        state.stopped_early = True
    return improved


def _log_epoch(
    s: TrainingSetup, state: LoopState, val: dict[str, float], epoch: int, improved: bool, seconds: float
) -> None:
    if not s.info.is_main:
        return
    train_loss = state.loss_sum / max(state.loss_count, 1)
    _append_csv(
        s.run / "log.csv", EPOCH_LOG_FIELDS,
        {"epoch": epoch + 1, "step": state.step, "train_loss": round(train_loss, 6),
         "val_auc": round(val["auc"], 6), "val_threshold": round(val["threshold"], 6),
         "val_acc": round(val["acc"], 6), "best_val_auc": round(state.best_auc, 6),
         "seconds": round(seconds, 2)},
    )  # fmt: skip
    tqdm.write(
        f"epoch {epoch + 1}: train loss {train_loss:.4f}  val AUC {val['auc']:.4f}"
        f"{'  (best)' if improved else ''}  [{seconds:.0f}s]"
    )


def train(
    cfg: ExperimentConfig,
    run_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> TrainResult:
    """Train ``cfg.model.name`` on ``cfg.data`` and write the run directory (see module docstring).

    ``resume`` continues from ``checkpoints/last``; ``stop_after_steps`` raises
    :class:`TrainingInterrupted` after that many optimiser steps (used to test resumption)."""
    device = resolve_device(cfg.device)
    info, device = init_distributed(device, cfg.train.ddp_backend)
    threads = torch.get_num_threads()
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    try:
        return _train(cfg, run_dir, device, info, resume, stop_after_steps)
    finally:
        torch.set_num_threads(threads)
        cleanup_distributed(info)


def _train(
    cfg: ExperimentConfig,
    run_dir: str | os.PathLike[str] | None,
    device: torch.device,
    info: DistInfo,
    resume: bool,
    stop_after_steps: int | None,
) -> TrainResult:
    run = _prepare_run_dir(cfg, run_dir, resume, info)
    seed_everything(cfg.seed)
    s = _set_up(cfg, run, device, info)
    state = _resume(s) if resume else LoopState()
    start_epoch = cfg.train.epochs if state.stopped_early else state.epoch
    t_start, epoch_seconds, time_cut = time.time(), 0.0, False
    for epoch in range(start_epoch, cfg.train.epochs):
        if _out_of_time(cfg.train.max_minutes, time.time() - t_start, epoch_seconds):
            time_cut = True
            log.warning(
                "train.max_minutes=%s reached after %d epoch(s): stopping before epoch %d of %d (the run is "
                "time-cut; --resume continues it)", cfg.train.max_minutes, state.epoch, epoch + 1, cfg.train.epochs,
            )  # fmt: skip
            break
        t_epoch = time.time()
        _run_epoch(s, state, epoch, state.batch if epoch == start_epoch else 0, stop_after_steps)
        val = _validate(s.detector, s.val_ds, cfg, device, info)
        improved = _select(s, state, val, epoch)
        epoch_seconds = time.time() - t_epoch
        _log_epoch(s, state, val, epoch, improved, epoch_seconds)
        state.epoch, state.batch = epoch + 1, 0
        _save_last(s, state, epoch + 1, 0)
        barrier(info)
        if state.stopped_early:
            break
    return TrainResult(
        run_dir=run, best_epoch=state.best_epoch, best_val_auc=state.best_auc,
        val_threshold=state.best_threshold, epochs_run=state.epoch, steps=state.step,
        stopped_early=state.stopped_early, time_cut=time_cut,
    )  # fmt: skip


def _out_of_time(max_minutes: float | None, elapsed: float, last_epoch_seconds: float) -> bool:
    """True when another epoch, as long as the last one, would end past ``max_minutes`` (the first
    epoch of a call always runs: there is no estimate before it)."""
    return (
        max_minutes is not None and last_epoch_seconds > 0 and elapsed + last_epoch_seconds > max_minutes * 60
    )
