"""Calibrate a trained run: score its validation rows (and a seeded subsample of its training rows)
with its best checkpoint, fit a calibration (:mod:`fakescope.eval.calibration`) and a familiarity model
(:mod:`fakescope.inference.familiarity`), and write them into the run directory:

- ``RUN/calibration.json``: the calibrator (temperature scaling, Guo et al., ICML 2017, §4.2, or
  isotonic regression, §4.1, chosen by cross-fitted NLL), the operating threshold at ``fpr`` on the
  validation reals, ECE before and after with bootstrap intervals, and what it was fitted on;
- ``RUN/familiarity.safetensors``: Mahalanobis (Lee et al., NeurIPS 2018, §2) fitted on the training
  faces' penultimate features, the same at every stage of the network combined (``mahalanobis_layers``,
  their §2.2 feature ensemble, standardised on the validation faces), or the energy score (Liu et al., NeurIPS 2020, §3), with its threshold at
  the 95th percentile of the validation faces;
- ``RUN/reliability.png``: the reliability diagram, raw and calibrated.

The rows are chosen as ``fakescope evaluate --split`` chooses them (:mod:`fakescope.rows`): the run's own
training manifest is split by group exactly as ``train`` split it, a manifest with official splits by
its ``split`` column. Unreadable images and crops below the minimum face size are left out, each named on
stderr. Nothing is written until everything is fitted; each file is written atomically, the JSON last.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from fakescope.config import ExperimentConfig
from fakescope.data.dataset import FaceDataset, collate_batch
from fakescope.data.manifest import ManifestRow
from fakescope.data.splits import cap_rows
from fakescope.errors import InputError
from fakescope.eval.calibration import fit_calibration, reliability_diagram
from fakescope.inference.calibration import CALIBRATION_FILE
from fakescope.inference.checkpoint import load_detector, load_run_config
from fakescope.inference.familiarity import (
    FAMILIARITY_FILE,
    METHODS,
    POOLED,
    PooledOutputs,
    familiarity_layers,
    fit_familiarity,
)
from fakescope.inference.inputs import detector_inputs, precompute_inputs
from fakescope.inference.predict import Scores, collect_scores
from fakescope.rows.datasets import resolve_dataset
from fakescope.rows.rowset import RowSet
from fakescope.rows.splits import check_two_classes, rows_to_score
from fakescope.rows.unreadable import drop_unreadable
from fakescope.utils.atomic import atomic_write_json
from fakescope.utils.runtime import resolve_device

__all__ = ["RELIABILITY_FILE", "calibrate_run", "score_split"]

RELIABILITY_FILE = "reliability.png"


def _score(
    detector: torch.nn.Module, cfg: ExperimentConfig, rows: list[ManifestRow], dev: torch.device,
    keep: tuple[str, ...], desc: str, progress: bool,
) -> Scores:  # fmt: skip
    """Score ``rows`` as ``evaluate`` does (clean crops, the run's inputs and autocast), keeping ``keep``."""
    ds = FaceDataset(rows, cfg.data.image_size, perturbation="clean",
                     perturb_before_resize=cfg.eval.perturb_before_resize,
                     max_image_pixels=cfg.data.max_image_pixels, background=cfg.data.rgba_background)  # fmt: skip
    precompute_inputs(detector_inputs(detector), ds, cfg, dev, detector=detector, desc=desc)
    loader = DataLoader(ds, batch_size=cfg.eval.batch_size, shuffle=False, num_workers=cfg.data.num_workers,
                        collate_fn=collate_batch)  # fmt: skip
    return collect_scores(detector, loader, dev, cfg.train.amp, cfg.train.amp_dtype, progress=progress,
                          desc=desc, keep=keep)  # fmt: skip


def _choose_rows(
    cfg: ExperimentConfig, manifest: str, split: str, train_split: str | None, *, data_root: Any,
    max_train: int, max_val: int | None, progress: bool,
) -> tuple[str, str, RowSet]:  # fmt: skip
    """The dataset's name, the validation part's name and the rows: ``val`` (capped at ``max_val``,
    class-stratified, seeded) and, with ``train_split``, ``train`` (capped at ``max_train``)."""
    ds = resolve_dataset(manifest, data_root)
    val_rows, part = rows_to_score(ds, cfg, split)
    chosen = {"val": cap_rows(val_rows, max_val, cfg.seed)}
    if train_split is not None:
        train_rows, _ = rows_to_score(ds, cfg, train_split)
        chosen["train"] = cap_rows(train_rows, max_train, cfg.seed)
    rows = drop_unreadable(RowSet(chosen), cfg, desc=f"check {ds.name} ({{split}})", progress=progress,
                           announce=f"calibrate on {ds.name}")  # fmt: skip
    check_two_classes(rows.splits["val"], ds.name, part)
    return ds.name, part, rows


def score_split(
    run_dir: str | os.PathLike[str], manifest: str | os.PathLike[str], split: str = "val", *,
    device: str = "auto", data_root: str | os.PathLike[str] | None = None, progress: bool = False,
) -> tuple[list[ManifestRow], Scores]:  # fmt: skip
    """A run's best checkpoint on one split of ``manifest``, its own val split included (``evaluate``
    refuses the images a run selected on; calibrating and choosing ensemble members are what they are
    for): the rows scored, in order, and their :class:`~fakescope.inference.predict.Scores`."""
    checkpoint, cfg, _ = load_run_config(Path(run_dir))
    name, part, rows = _choose_rows(cfg, str(manifest), split, None, data_root=data_root, max_train=0,
                                    max_val=None, progress=progress)  # fmt: skip
    dev = resolve_device(device)
    detector, _, _ = load_detector(checkpoint, dev)
    return rows.splits["val"], _score(detector, cfg, rows.splits["val"], dev, (), f"{name} {part}", progress)


def calibrate_run(
    run_dir: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    split: str = "val",
    train_split: str = "train",
    *,
    fpr: float = 0.05,
    familiarity: str = "mahalanobis_layers",
    method: str = "auto",
    quantile: float = 0.95,
    max_train: int = 4000,
    max_val: int | None = None,
    max_dims: int = 256,
    bootstrap: int = 200,
    device: str = "auto",
    data_root: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit and write ``RUN/calibration.json``, ``RUN/familiarity.safetensors`` and ``RUN/reliability.png``
    (see the module docstring); returns a summary: ECE before and after with intervals, the chosen
    method, the operating threshold and the false-positive rate it gives on the validation reals, and the
    familiarity threshold with the share of validation faces it counts as familiar."""
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError(f"--run {run}: not a run directory (calibrate writes its files into it)")
    if familiarity not in METHODS:
        raise InputError(f"--familiarity {familiarity!r}: choose {', '.join(METHODS)}")
    if not 0.0 <= fpr < 1.0:
        raise InputError(f"--fpr must be in [0, 1), got {fpr}")
    checkpoint, cfg, meta = load_run_config(run)
    train_part = train_split if familiarity != "energy" else None
    name, part, rows = _choose_rows(cfg, str(manifest), split, train_part, data_root=data_root,
                                    max_train=max_train, max_val=max_val, progress=progress)  # fmt: skip
    dev = resolve_device(device)
    detector, _, _ = load_detector(checkpoint, dev)
    keep: tuple[str, ...] = ("logits", "features")
    if familiarity == "mahalanobis_layers":
        layers = familiarity_layers(detector)
        PooledOutputs(detector, layers)  # this detector is used for nothing else: the hooks stay on
        keep += tuple(POOLED + n for n in layers)
    val = _score(detector, cfg, rows.splits["val"], dev, keep, f"{name} {part}", progress)
    labels, scores = np.asarray(val.labels), np.asarray(val.scores, dtype=np.float64)
    cal = fit_calibration(scores, labels, val.videos, fpr=fpr, method=method, bootstrap=bootstrap,
                          seed=cfg.seed)  # fmt: skip
    if train_part is not None:
        train = _score(detector, cfg, rows.splits["train"], dev, keep[1:], f"{name} {train_split}", progress)
        fam = fit_familiarity(familiarity, train.output("features"), np.asarray(train.labels), max_dims=max_dims,
                              outputs={k: train.output(k) for k in keep[1:]})  # fmt: skip
    else:
        fam = fit_familiarity(familiarity)
    val_outputs = {k: val.output(k) for k in keep}
    fam.standardise(val_outputs)
    val_fam = fam.score_outputs(val_outputs)
    if val_fam is None:
        raise InputError(f"familiarity ({familiarity}): the detector did not give {' or '.join(fam.needs)}")
    fam.set_threshold(val_fam, quantile)
    fitted_on = {"manifest": str(manifest), "dataset": name, "split": part, "checkpoint": str(checkpoint),
                 "step": meta.get("step"), "weights_sha256": meta.get("weights_sha256")}  # fmt: skip
    fam.info.update({"dataset": name, "split": part, "train_split": str(train_part or ""),
                     "weights_sha256": str(meta.get("weights_sha256") or ""), "step": str(meta.get("step", ""))})  # fmt: skip
    familiar = {"method": familiarity, "threshold": fam.threshold, "quantile": quantile,
                "familiar_fraction_val": float(np.mean(~fam.unfamiliar(val_fam))),
                "n_train": len(rows.splits.get("train", []))}  # fmt: skip
    cal.info.update({"fitted_on": fitted_on, "familiarity": familiar})
    # Nothing is written until every part is fitted; the JSON, which detect reads first, goes last.
    reliability_diagram(labels, {"raw": scores, f"calibrated ({cal.method})": cal.apply(scores)},
                        run / RELIABILITY_FILE, title=f"{run.name} on {name} ({part})")  # fmt: skip
    fam.save(run / FAMILIARITY_FILE)
    atomic_write_json(run / CALIBRATION_FILE, cal.to_json())
    info = cal.info
    return {
        "run": str(run), **fitted_on, "method": cal.method, "temperature": cal.temperature,
        "ece_before": info["ece_before"], "ece_after": info["ece_after"],
        "nll_before": info["nll_before"], "nll_after": info["nll_after"], "selection": info["selection"],
        "target_fpr": fpr, "threshold": cal.threshold, "video_threshold": cal.video_threshold,
        "threshold_probability": cal.threshold_probability, "val_fpr": info["val_fpr"],
        "val_tpr": info["val_tpr"], "n_val": info["n_val"], "familiarity": familiar,
        "files": [str(run / f) for f in (CALIBRATION_FILE, FAMILIARITY_FILE, RELIABILITY_FILE)],
    }  # fmt: skip
