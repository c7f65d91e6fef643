"""The training loop (papers/AIRL.txt §III-G "Training Procedure"; papers/INFER.txt §3.5 / §4.1;
DESIGN.md "AIRL" Training and "Model selection").

- Adam on ``detector.param_groups(lr)`` (pretrained backbones at ``train.backbone_lr_mult`` x),
  weight decay ``train.weight_decay``.
- ``CosineAnnealingWarmRestarts(T_0=train.restart_period, eta_min=train.min_lr)`` stepped after
  **every** optimiser step with the fractional epoch ``epoch + (i + 1) / iters``, so the learning rate
  follows the cosine within an epoch and restarts every ``restart_period`` epochs.
- Gradient clipping at ``train.grad_clip`` (global L2 norm); optional autocast (``train.amp``).
- Balanced batches (:class:`~fakescope.data.sampler.BalancedBatchSampler`), seeded augmentation.
- After each epoch: validation AUC on the **validation split only**; the best epoch is saved as
  ``checkpoints/best`` with the decision threshold chosen on validation (``train.threshold_rule``);
  training stops after ``train.early_stopping_patience`` epochs without a gain. The test split is never
  loaded here.
- ``checkpoints/last`` is written every ``train.checkpoint_every_steps`` steps and after each epoch, with
  the optimiser, scheduler, sampler and RNG state, so ``resume=True`` continues an interrupted run to
  the same weights an uninterrupted run reaches.
- INFER-family detectors: INR heatmaps and frozen-backbone features are computed once, before the
  epochs, into a content-addressed cache shared between runs (``train.feature_cache_dir``).
"""

from __future__ import annotations

import contextlib
import csv
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from fakescope.config import ExperimentConfig, save_config
from fakescope.data.dataset import FaceDataset, collate_batch
from fakescope.data.manifest import ManifestRow, read_manifest, split_by_group
from fakescope.data.sampler import BalancedBatchSampler
from fakescope.errors import ConfigError, FakescopeError, InputError
from fakescope.eval.metrics import accuracy, auc, choose_thresholds
from fakescope.train import checkpoint as ckpt
from fakescope.train.ddp import DistInfo, all_gather_objects, barrier, cleanup_distributed, init_distributed
from fakescope.utils.atomic import atomic_write_text
from fakescope.utils.runtime import resolve_device, seed_everything

__all__ = [
    "TrainResult",
    "TrainingInterrupted",
    "train",
    "load_data_rows",
    "load_splits",
    "cap_rows",
    "precompute_inputs",
    "iter_predictions",
    "autocast_context",
]

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


# ---------------------------------------------------------------- data


def load_data_rows(data_cfg: Any) -> list[ManifestRow]:
    """The rows a ``data`` config section names: its ``manifest`` CSV, or a layout under ``root``."""
    if data_cfg.manifest:
        return read_manifest(data_cfg.manifest)
    if data_cfg.root is None:
        raise ConfigError("data: set data.manifest (a CSV) or data.layout + data.root")
    from fakescope.data.layouts import build_manifest

    return build_manifest(data_cfg.layout, data_cfg.root, data_cfg.layout_options)


def cap_rows(rows: Sequence[ManifestRow], cap: int | None, seed: int) -> list[ManifestRow]:
    """At most ``cap`` rows, half of each class where possible (seeded), keeping the input order."""
    rows = list(rows)
    if cap is None or len(rows) <= cap:
        return rows
    rng = np.random.default_rng(seed)
    by_class = {c: [i for i, r in enumerate(rows) if r.label == c] for c in (0, 1)}
    want = {0: cap // 2, 1: cap - cap // 2}
    for c, other in ((0, 1), (1, 0)):  # give a short class's unused share to the other
        if len(by_class[c]) < want[c]:
            want[other] += want[c] - len(by_class[c])
            want[c] = len(by_class[c])
    keep: list[int] = []
    for c in (0, 1):
        idx = by_class[c]
        keep.extend(rng.choice(idx, size=min(want[c], len(idx)), replace=False).tolist())
    return [rows[i] for i in sorted(keep)]


def load_splits(cfg: ExperimentConfig) -> dict[str, list[ManifestRow]]:
    """Train / val / test rows split by group (``data.split``), each capped at ``data.max_per_split``."""
    splits = split_by_group(load_data_rows(cfg.data), cfg.data.split)
    return {
        name: cap_rows(rows, cfg.data.max_per_split, cfg.data.split.seed + i)
        for i, (name, rows) in enumerate(splits.items())
    }


# ---------------------------------------------------------------- inputs & inference


def feature_cache_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.train.feature_cache_dir or cfg.inr.cache_dir)


def precompute_inputs(
    inputs: frozenset[str] | set[str],
    dataset: FaceDataset,
    cfg: ExperimentConfig,
    device: torch.device,
    info: DistInfo | None = None,
    detector: torch.nn.Module | None = None,
    desc: str = "",
    fit_log: str | os.PathLike[str] | None = None,
) -> None:
    """Fill ``dataset.stores`` with what ``inputs`` needs beyond the image: ``heatmaps`` (INR, via
    :func:`fakescope.inr.heatmaps_for_images` with a shared :class:`HeatmapCache`) and ``clip``
    (frozen-backbone embedding, via the models package's feature cache). Under DDP each rank fits its
    share into the shared cache first, then every rank reads all of it. Each image's INR fit (steps,
    final PSNR, target reached, cached) goes to ``fit_log`` (CSV) when given: none is dropped silently."""
    info = info or DistInfo()
    needed = set(inputs) - {"image"} - set(dataset.stores)
    if not needed:
        return
    crops = [
        dataset.load_crop(i)
        for i in tqdm(
            range(len(dataset)),
            desc=f"load {desc}",
            disable=not cfg.train.progress or not info.is_main,
            leave=False,
        )
    ]
    paths = [r.path for r in dataset.rows]
    if "heatmaps" in needed:
        from fakescope.inr import HeatmapCache, heatmaps_for_images

        cache = HeatmapCache(feature_cache_dir(cfg), cfg.inr)
        if info.enabled:
            mine = list(range(info.rank, len(crops), info.world_size))
            heatmaps_for_images([crops[i] for i in mine], cfg.inr, device, cache=cache)
            barrier(info)
        maps, records = heatmaps_for_images(crops, cfg.inr, device, cache=cache)
        if fit_log is not None and info.is_main:
            lines = ["path,steps,final_psnr,reached,cached"]
            lines += [
                f"{p},{r.steps},{r.final_psnr:.3f},{int(r.reached)},{int(r.cached)}"
                for p, r in zip(paths, records, strict=True)
            ]
            atomic_write_text(fit_log, "\n".join(lines) + "\n")
            reached = sum(r.reached for r in records)
            tqdm.write(
                f"INR heatmaps {desc}: {len(records)} images, {reached} reached {cfg.inr.target_psnr} dB, "
                f"mean {np.mean([r.final_psnr for r in records]):.2f} dB, log {fit_log}"
            )
        dataset.stores["heatmaps"] = {
            p: np.asarray(m, dtype=np.float32) for p, m in zip(paths, maps, strict=True)
        }
    if "clip" in needed:
        from fakescope.models.features import clip_features_for_images  # type: ignore[import-not-found]

        feats = clip_features_for_images(
            crops, cfg, device, cache_dir=feature_cache_dir(cfg), detector=detector
        )
        dataset.stores["clip"] = {
            p: np.asarray(f, dtype=np.float32) for p, f in zip(paths, feats, strict=True)
        }
    unknown = needed - {"heatmaps", "clip"}
    if unknown:
        raise ConfigError(f"detector needs inputs {sorted(unknown)} that the trainer cannot provide")


def autocast_context(device: torch.device, enabled: bool, dtype_name: str = "bfloat16") -> Any:
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if dtype_name == "float16" and device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()
    }


def iter_predictions(
    detector: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    amp: bool = False,
    amp_dtype: str = "bfloat16",
    progress: bool = False,
    desc: str = "predict",
) -> Iterator[tuple[dict[str, Any], dict[str, torch.Tensor]]]:
    """Yield ``(batch, outputs)`` per batch with outputs detached on the CPU in float32."""
    was_training = detector.training
    detector.eval()
    try:
        with torch.no_grad():
            for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, unit="batch"):
                with autocast_context(device, amp, amp_dtype):
                    out = detector(_to_device(batch, device))
                yield (
                    batch,
                    {k: v.detach().float().cpu() for k, v in out.items() if isinstance(v, torch.Tensor)},
                )
    finally:
        detector.train(was_training)


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


# ---------------------------------------------------------------- the loop


def _param_group_names(optimizer: torch.optim.Optimizer) -> list[str]:
    return [str(g.get("name", f"group{i}")) for i, g in enumerate(optimizer.param_groups)]


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
    from fakescope.models.registry import build_detector

    device = resolve_device(cfg.device)
    info, device = init_distributed(device, cfg.train.ddp_backend)
    try:
        return _train(cfg, run_dir, device, info, resume, stop_after_steps, build_detector)
    finally:
        cleanup_distributed(info)


def _train(  # noqa: C901
    cfg: ExperimentConfig,
    run_dir: str | os.PathLike[str] | None,
    device: torch.device,
    info: DistInfo,
    resume: bool,
    stop_after_steps: int | None,
    build_detector: Any,
) -> TrainResult:
    tc = cfg.train
    run = Path(run_dir) if run_dir is not None else Path(cfg.output_dir) / cfg.name
    ckpt_dir = run / "checkpoints"
    last_json = ckpt_dir / "last.json"
    if resume and not last_json.is_file():
        raise ConfigError(f"--resume: {last_json} not found (nothing to resume in {run})")
    if not resume and last_json.is_file():
        raise ConfigError(f"{run} already holds a run; pass --resume to continue it or --out for a new one")
    if info.is_main:
        run.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run / "config.yaml")
    seed_everything(cfg.seed)

    splits = load_splits(cfg)  # only train and val are used below; test stays unread
    train_rows, val_rows = splits["train"], splits["val"]
    if not train_rows or not val_rows:
        raise InputError(
            f"data: need train and val rows (got {len(train_rows)} train, {len(val_rows)} val); "
            "check data.split or the manifest's split column"
        )
    if len({r.label for r in val_rows}) < 2:
        raise InputError(
            f"data: the validation split holds one class only ({len(val_rows)} rows); AUC needs both"
        )

    detector = build_detector(cfg).to(device)
    train_ds = FaceDataset(
        train_rows, cfg.data.image_size, augment=tc.augment, seed=cfg.seed,
        max_image_pixels=cfg.data.max_image_pixels, background=cfg.data.rgba_background,
    )  # fmt: skip
    val_ds = FaceDataset(
        val_rows, cfg.data.image_size, max_image_pixels=cfg.data.max_image_pixels,
        background=cfg.data.rgba_background,
    )  # fmt: skip
    inputs = frozenset(getattr(detector, "inputs", {"image"}))
    precompute_inputs(inputs, train_ds, cfg, device, info, detector, "train", run / "inr_fits_train.csv")
    precompute_inputs(inputs, val_ds, cfg, device, info, detector, "val", run / "inr_fits_val.csv")

    sampler = BalancedBatchSampler(
        [r.label for r in train_rows],
        tc.batch_size,
        seed=cfg.seed,
        rank=info.rank,
        world_size=info.world_size,
    )
    loader = DataLoader(
        train_ds, batch_sampler=sampler, num_workers=cfg.data.num_workers, collate_fn=collate_batch,
        pin_memory=device.type == "cuda", persistent_workers=False,
        # Own generator: creating an iterator must not draw from the global RNG, or a resumed run's
        # dropout masks would drift from the uninterrupted run's.
        generator=torch.Generator().manual_seed(cfg.seed),
    )  # fmt: skip
    iters = len(sampler) if tc.max_steps_per_epoch is None else min(len(sampler), tc.max_steps_per_epoch)

    model: torch.nn.Module = detector
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(
            detector,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    optimizer = torch.optim.Adam(detector.param_groups(tc.lr), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=tc.restart_period, eta_min=tc.min_lr
    )
    scaler = torch.amp.GradScaler(
        "cuda", enabled=tc.amp and tc.amp_dtype == "float16" and device.type == "cuda"
    )
    group_names = _param_group_names(optimizer)
    step_fields = STEP_LOG_FIELDS + [f"lr_{n}" for n in group_names]

    state: dict[str, Any] = {
        "epoch": 0, "batch": 0, "step": 0, "best_auc": -1.0, "best_epoch": -1, "best_threshold": 0.5,
        "bad_epochs": 0, "loss_sum": 0.0, "loss_count": 0, "stopped_early": False,
    }  # fmt: skip
    if resume:
        meta = ckpt.read_checkpoint_meta(last_json)
        if meta.get("detector") != cfg.model.name:
            raise ConfigError(
                f"--resume: {last_json} is a {meta.get('detector')!r} run, not {cfg.model.name!r}"
            )
        ckpt.load_state_into(detector, ckpt.load_model_state(last_json, meta), str(last_json))
        tensors = ckpt.load_train_state(last_json, meta)
        ckpt.restore_optimizer(optimizer, tensors, meta)
        scheduler.load_state_dict(meta["resume"]["scheduler"])
        if scaler.is_enabled() and meta["resume"].get("scaler"):
            scaler.load_state_dict(meta["resume"]["scaler"])
        state.update(meta["resume"]["loop"])
        ckpt.restore_rng(tensors, meta["resume"]["rng"])
        if info.is_main:
            _truncate_csv(run / "steps.csv", "step", state["step"])
            _truncate_csv(run / "log.csv", "epoch", state["epoch"])  # 1-based rows of completed epochs

    def save_last(epoch: int, batch: int) -> None:
        if not info.is_main:
            return
        loop = {**state, "epoch": epoch, "batch": batch}
        ckpt.save_checkpoint(
            ckpt_dir, "last", model=detector, cfg=cfg, detector_name=cfg.model.name, epoch=epoch,
            step=state["step"], val_metrics={"auc": state["best_auc"]}, val_threshold=state["best_threshold"],
            optimizer=optimizer,
            resume={"loop": loop, "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler.is_enabled() else None},
        )  # fmt: skip

    start_epoch = int(state["epoch"])
    if state["stopped_early"]:
        start_epoch = tc.epochs
    for epoch in range(start_epoch, tc.epochs):
        t_epoch = time.time()
        start_batch = int(state["batch"]) if epoch == start_epoch else 0
        if start_batch == 0:
            state["loss_sum"], state["loss_count"] = 0.0, 0
        sampler.set_epoch(epoch, start_batch)
        train_ds.set_epoch(epoch)
        model.train()
        bar = tqdm(
            total=iters, initial=start_batch, desc=f"epoch {epoch + 1}/{tc.epochs}", unit="step",
            disable=not (tc.progress and info.is_main), dynamic_ncols=True,
        )  # fmt: skip
        batches = iter(loader)
        for i in range(start_batch, iters):
            batch = _to_device(next(batches), device)
            with autocast_context(device, tc.amp, tc.amp_dtype):
                out = model(batch)
                losses = detector.compute_loss(batch, out)
            loss = losses["total"]
            if not torch.isfinite(loss):
                raise FakescopeError(
                    f"epoch {epoch + 1} step {i + 1}: loss is {loss.item()} (diverged); lower train.lr"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(detector.parameters(), tc.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            lrs_used = [g["lr"] for g in optimizer.param_groups]
            scheduler.step(epoch + (i + 1) / iters)
            state["step"] += 1
            state["loss_sum"] += float(loss.detach())
            state["loss_count"] += 1
            if info.is_main:
                row = {
                    "epoch": epoch + 1, "step": state["step"], "epoch_progress": round(epoch + (i + 1) / iters, 6),
                    "loss": float(loss.detach()), "grad_norm": float(grad_norm),
                }  # fmt: skip
                row.update({f"lr_{n}": lr for n, lr in zip(group_names, lrs_used, strict=True)})
                row.update(
                    {k: float(v.detach()) for k, v in losses.items() if k != "total" and torch.is_tensor(v)}
                )
                _append_csv(run / "steps.csv", step_fields, row)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            bar.update(1)
            if state["step"] % tc.checkpoint_every_steps == 0 and i + 1 < iters:
                save_last(epoch, i + 1)
            if stop_after_steps is not None and state["step"] >= stop_after_steps:
                bar.close()
                raise TrainingInterrupted(f"stopped after {state['step']} steps (stop_after_steps)")
        bar.close()

        val = _validate(detector, val_ds, cfg, device, info)
        train_loss = state["loss_sum"] / max(state["loss_count"], 1)
        improved = val["auc"] > state["best_auc"]
        if improved:
            state.update(
                best_auc=val["auc"], best_epoch=epoch + 1, best_threshold=val["threshold"], bad_epochs=0
            )
            if info.is_main:
                ckpt.save_checkpoint(
                    ckpt_dir, "best", model=detector, cfg=cfg, detector_name=cfg.model.name, epoch=epoch + 1,
                    step=state["step"], val_metrics=val,
                    val_threshold={"frame": val["threshold"], "video": val["threshold_video"]},
                )  # fmt: skip
        else:
            state["bad_epochs"] += 1
        if state["bad_epochs"] >= tc.early_stopping_patience:
            state["stopped_early"] = True
        if info.is_main:
            _append_csv(
                run / "log.csv", EPOCH_LOG_FIELDS,
                {"epoch": epoch + 1, "step": state["step"], "train_loss": round(train_loss, 6),
                 "val_auc": round(val["auc"], 6), "val_threshold": round(val["threshold"], 6),
                 "val_acc": round(val["acc"], 6), "best_val_auc": round(state["best_auc"], 6),
                 "seconds": round(time.time() - t_epoch, 2)},
            )  # fmt: skip
            tqdm.write(
                f"epoch {epoch + 1}: train loss {train_loss:.4f}  val AUC {val['auc']:.4f}"
                f"{'  (best)' if improved else ''}  [{time.time() - t_epoch:.0f}s]",
                file=None,
            )
        state["epoch"] = epoch + 1
        save_last(epoch + 1, 0)
        barrier(info)
        if state["stopped_early"]:
            break

    return TrainResult(
        run_dir=run,
        best_epoch=int(state["best_epoch"]),
        best_val_auc=float(state["best_auc"]),
        val_threshold=float(state["best_threshold"]),
        epochs_run=int(state["epoch"]),
        steps=int(state["step"]),
        stopped_early=bool(state["stopped_early"]),
    )
