"""Score one set of rows with a run's detector: one predictions CSV row per image, streamed as
scoring goes (docs/CONTRACTS.md "Predictions"), and the metrics of the scores."""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from fakescope.config import ExperimentConfig
from fakescope.data.dataset import FaceDataset, collate_batch
from fakescope.data.manifest import LABEL_NAMES, ManifestRow
from fakescope.inference.inputs import detector_inputs, precompute_inputs
from fakescope.inference.predict import collect_scores
from fakescope.utils.atomic import atomic_open
from fakescope.utils.text import PATH_CSV_ERRORS

__all__ = [
    "EXCLUDED_COUNTS",
    "PREDICTION_FIELDS",
    "RunPredictions",
    "predict_rows",
    "prediction_row",
    "row_fields",
    "set_metrics",
]

PREDICTION_FIELDS = ["path", "label", "score", "group", "video", "dataset", "method", "perturbation"]
#: The metrics' counts of images left out before scoring, one per reason (``fakescope.rows.rowset``): they
#: do not decode, or their short side is below the minimum face size.
EXCLUDED_COUNTS = ("excluded_unreadable", "excluded_too_small")


@dataclass
class RunPredictions:
    """Scores of one run on one dataset under one perturbation."""

    run: str
    dataset: str
    perturbation: str
    labels: np.ndarray
    scores: np.ndarray
    videos: list[str]
    features: np.ndarray | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def row_fields(r: ManifestRow, dataset: str) -> list[Any]:
    """What a predictions CSV says about a row (besides its score), as stored in a shard marker."""
    return [r.path, r.label, r.group, r.video_id, r.dataset or dataset, r.method]


def prediction_row(fields: Sequence[Any], score: float, perturbation: str) -> dict[str, Any]:
    path, label, group, video, dataset, method = fields
    return {"path": path, "label": LABEL_NAMES[label], "score": f"{score:.6f}", "group": group,
            "video": video, "dataset": dataset, "method": method, "perturbation": perturbation}  # fmt: skip


def predict_rows(
    detector: torch.nn.Module,
    cfg: ExperimentConfig,
    rows: Sequence[ManifestRow],
    device: torch.device,
    *,
    run_name: str,
    dataset: str,
    perturbation: str = "clean",
    csv_path: str | os.PathLike[str] | None = None,
    keep_features: bool = False,
    progress: bool = True,
) -> RunPredictions:
    """Score ``rows`` (after ``perturbation``), streaming one CSV row per image to ``csv_path``."""
    ds = FaceDataset(
        rows,
        cfg.data.image_size,
        perturbation=perturbation,
        perturb_before_resize=cfg.eval.perturb_before_resize,
        max_image_pixels=cfg.data.max_image_pixels,
        background=cfg.data.rgba_background,
    )
    fit_log = Path(csv_path).with_name(Path(csv_path).stem + ".inr_fits.csv") if csv_path else None
    precompute_inputs(detector_inputs(detector), ds, cfg, device, detector=detector,
                      desc=f"{dataset}/{perturbation}", fit_log=fit_log)  # fmt: skip
    loader = DataLoader(ds, batch_size=cfg.eval.batch_size, shuffle=False, num_workers=cfg.data.num_workers,
                        collate_fn=collate_batch)  # fmt: skip
    feats: list[np.ndarray] = []
    # surrogateescape: a path that is not UTF-8 is written as its bytes and read back the same
    sink = (
        atomic_open(csv_path, "w", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS)
        if csv_path
        else contextlib.nullcontext()
    )
    with sink as fh:
        writer = csv.DictWriter(fh, fieldnames=PREDICTION_FIELDS) if fh is not None else None
        if writer:
            writer.writeheader()

        def stream(batch: dict[str, Any], out: dict[str, torch.Tensor]) -> None:
            if writer:
                for idx, prob in zip(batch["index"].tolist(), out["prob"].tolist(), strict=True):
                    writer.writerow(prediction_row(row_fields(ds.rows[idx], dataset), prob, perturbation))
            if keep_features and "features" in out:
                feats.append(out["features"].numpy())

        scored = collect_scores(
            detector, loader, device, cfg.train.amp, cfg.train.amp_dtype, progress=progress,
            desc=f"{run_name} {dataset} {perturbation}", on_batch=stream,
        )  # fmt: skip
    return RunPredictions(
        run=run_name,
        dataset=dataset,
        perturbation=perturbation,
        labels=np.asarray(scored.labels, dtype=np.int64),
        scores=np.asarray(scored.scores, dtype=np.float64),
        videos=scored.videos,
        features=np.concatenate(feats) if feats else None,
    )


def set_metrics(pred: RunPredictions, info: dict[str, Any], n_images: int, excluded: dict[str, int]) -> None:
    """``pred.metrics``: frame and video metrics at the run's validation threshold
    (:func:`fakescope.eval.metrics.compute_metrics`), with how the set was chosen (``info``: the split,
    the threshold, bootstrap and seed, the images the leakage guard left out) and ``excluded``, the
    :data:`EXCLUDED_COUNTS` of the images left out before scoring."""
    from fakescope.eval.metrics import compute_metrics

    pred.metrics = compute_metrics(
        pred.labels, pred.scores, videos=pred.videos, threshold=info["threshold"],
        bootstrap=info["bootstrap"], seed=info["seed"],
    )  # fmt: skip
    pred.metrics.update({"split": info["split"], "n_images": n_images, "val_threshold": info["threshold"],
                         "excluded_seen": info["excluded_seen"], **excluded})  # fmt: skip
