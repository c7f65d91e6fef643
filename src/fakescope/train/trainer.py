"""The training loop (AIRL (Parihar), §III-G "Training Procedure"; INFER §3.5 / §4.1, anonymous
NeurIPS-format submission; docs/design.md, "Training recipe" and "Model selection").

- Adam on ``detector.param_groups(lr, train.backbone_lr_mult)`` (pretrained backbones at that multiple),
  weight decay ``train.weight_decay``.
- ``CosineAnnealingWarmRestarts(T_0=train.restart_period, eta_min=train.min_lr)`` stepped after
  **every** optimiser step with the fractional epoch ``epoch + (i + 1) / iters``, so the learning rate
  follows the cosine within an epoch and restarts every ``restart_period`` epochs.
- Gradient clipping at ``train.grad_clip`` (global L2 norm); optional autocast (``train.amp``).
- Balanced batches (:class:`~fakescope.data.sampler.BalancedBatchSampler`), seeded augmentation
  (``train.augment: auto``: AIRL's for image-only detectors, none for the INFER family, see
  :func:`fakescope.train.setup.resolve_augment`).
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
  :mod:`fakescope.rows.crop_caches`), ``data.num_workers`` with ``data.persistent_workers`` /
  ``data.prefetch_factor``, ``train.num_threads`` and ``train.compile``.

Before the loop, :func:`fakescope.train.setup.set_up` chooses the rows (:mod:`fakescope.rows`: splits,
the unreadable-image scan, synthetic fakes) and writes the run folder only once they are accepted, so a
refused run leaves nothing behind. The loop reads as its steps: :func:`_resume`, then per epoch
:func:`_run_epoch`, :func:`_validate`, :func:`_select` (best checkpoint, early stopping),
:func:`_log_epoch` and :func:`_save_last`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from fakescope.config import ExperimentConfig
from fakescope.data.dataset import FaceDataset, collate_batch
from fakescope.errors import ConfigError, FakescopeError
from fakescope.eval.metrics import accuracy, auc, choose_thresholds
from fakescope.inference import checkpoint as ckpt
from fakescope.inference.predict import autocast_context, collect_scores, to_device
from fakescope.train import state as train_state
from fakescope.train.logs import EPOCH_LOG_FIELDS, STEP_LOG_FIELDS, append_csv, truncate_csv
from fakescope.train.losses import detector_loss
from fakescope.train.setup import TrainingSetup, check_run_dir, set_up
from fakescope.utils.distributed import (
    DistInfo,
    all_gather_objects,
    barrier,
    cleanup_distributed,
    init_distributed,
)
from fakescope.utils.runtime import resolve_device, seed_everything

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "TrainingInterrupted", "budget_cut", "train"]


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
    mine = collect_scores(detector, loader, device, cfg.train.amp, cfg.train.amp_dtype)
    gathered = all_gather_objects((mine.labels, mine.scores, mine.videos), info)
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
    train_state.restore_optimizer(s.optimizer, tensors, meta)
    s.scheduler.load_state_dict(meta["resume"]["scheduler"])
    if s.scaler.is_enabled() and meta["resume"].get("scaler"):
        s.scaler.load_state_dict(meta["resume"]["scaler"])
    state = LoopState(**meta["resume"]["loop"])
    train_state.restore_rng(tensors, meta["resume"]["rng"])
    if s.info.is_main:
        truncate_csv(s.run / "steps.csv", "step", state.step)
        truncate_csv(s.run / "log.csv", "epoch", state.epoch)  # 1-based rows of completed epochs
    return state


def _save_last(s: TrainingSetup, state: LoopState, epoch: int, batch: int) -> None:
    """``checkpoints/last`` (rank 0): the resume point ``(epoch, batch)`` with the full training state."""
    if not s.info.is_main:
        return
    loop = {**dataclasses.asdict(state), "epoch": epoch, "batch": batch}
    tensors, resume = train_state.training_state(
        s.optimizer, {"loop": loop, "scheduler": s.scheduler.state_dict(),
                      "scaler": s.scaler.state_dict() if s.scaler.is_enabled() else None},
    )  # fmt: skip
    ckpt.save_checkpoint(
        s.ckpt_dir, "last", model=s.detector, cfg=s.cfg, detector_name=s.cfg.model.name, epoch=epoch,
        step=state.step, val_metrics={"auc": state.best_auc}, val_threshold=state.best_threshold,
        state_tensors=tensors, resume=resume,
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
    # The loss in float32 (a no-op without amp): SupCon divides similarities by tau = 0.07, which
    # would magnify bf16 rounding of the embeddings into the loss.
    out = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in out.items()}
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
                append_csv(s.run / "steps.csv", step_fields, row)
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
    append_csv(
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
    run = check_run_dir(cfg, run_dir, resume)
    seed_everything(cfg.seed)
    s = set_up(cfg, run, device, info)
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
