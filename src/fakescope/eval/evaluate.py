"""Score a trained run on one or more datasets (DESIGN.md "Data, evaluation, robustness";
papers/AIRL.txt §IV-C, §V-B; papers/INFER.txt §4.1 Table 1).

For every dataset (and, with ``--robustness``, every perturbation of :mod:`fakescope.eval.robustness`)
the run's best checkpoint scores each face crop; the scores are streamed to
``predictions/<dataset>[__<perturbation>].csv`` (one row per frame, docs/CONTRACTS.md "Predictions")
and summarised with :func:`fakescope.eval.metrics.compute_metrics` at frame and video level: AUC with
a bootstrap 95 % interval, AP, EER, and accuracy at the threshold chosen on the **validation split**
during training and at 0.5.

Which rows of a dataset are scored: the run's own training dataset is scored on its **test split** only
(the same group split the trainer used); a dataset whose rows carry official splits is scored on
``test``; any other dataset is scored whole (cross-dataset). ``eval.max_images`` caps each dataset
(class-stratified, seeded) for quick runs.

Leakage guard, by content: whatever path or manifest an image comes back under, an image whose bytes
equal one of the run's train or val images (``RUN/seen_rows.csv``, written by ``train``) is never
scored. It is dropped from the rows, counted in the metrics (``excluded_seen``) and named in one line
on stderr; a dataset made only of such images is an error.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from fakescope.config import ExperimentConfig
from fakescope.data.dataset import FaceDataset, collate_batch
from fakescope.data.manifest import LABEL_NAMES, ManifestRow, read_manifest, split_by_group
from fakescope.data.splits import (
    SEEN_ROWS_FILE,
    cap_rows,
    load_splits,
    read_seen_hashes,
    seen_hashes_of,
    split_seen,
)
from fakescope.errors import FakescopeError, InputError
from fakescope.inference.checkpoint import load_detector
from fakescope.inference.inputs import detector_inputs, precompute_inputs
from fakescope.inference.predict import iter_predictions
from fakescope.utils.atomic import atomic_open, atomic_write_text
from fakescope.utils.runtime import resolve_device
from fakescope.utils.sharding import SINGLE, Shard, begin_shard, fingerprint, finish_shard, read_shards
from fakescope.utils.text import PATH_CSV_ERRORS

__all__ = [
    "DEFAULT_DATA_ROOT",
    "EvalSet",
    "RunPredictions",
    "resolve_dataset",
    "rows_to_score",
    "predict_rows",
    "evaluate_runs",
    "merge_evaluate",
]

DEFAULT_DATA_ROOT = Path(os.environ.get("FAKESCOPE_DATA", Path.cwd().parent / "shared" / "data"))
PREDICTION_FIELDS = ["path", "label", "score", "group", "video", "dataset", "method", "perturbation"]


@dataclass
class EvalSet:
    """A named dataset: its rows and where they came from (a manifest file or a folder)."""

    name: str
    rows: list[ManifestRow]
    source: Path


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


def resolve_dataset(spec: str, data_root: str | os.PathLike[str] | None = None) -> EvalSet:
    """``spec`` is a folder name under ``data_root`` (default ``../shared/data``), any folder holding a
    ``manifest.csv`` or ``real/`` + ``fake/``, or a manifest CSV file."""
    root = Path(data_root) if data_root is not None else DEFAULT_DATA_ROOT
    p = Path(spec).expanduser()
    if not p.exists() and (root / spec).exists():
        p = root / spec
    if p.is_file():
        return EvalSet(p.stem if p.name != "manifest.csv" else p.parent.name, read_manifest(p), p.resolve())
    if p.is_dir():
        if (p / "manifest.csv").is_file():
            return EvalSet(p.name, read_manifest(p / "manifest.csv"), (p / "manifest.csv").resolve())
        if (p / "real").is_dir() or (p / "fake").is_dir():
            from fakescope.data.layouts import build_manifest

            return EvalSet(p.name, build_manifest("folder", p), p.resolve())
        raise InputError(f"{p}: no manifest.csv and no real/ or fake/ folder to evaluate")
    raise InputError(f"--data {spec}: not a file, a folder, or a dataset name under {root}")


def _training_source(cfg: ExperimentConfig) -> set[Path]:
    out: set[Path] = set()
    if cfg.data.manifest:
        out.add(Path(cfg.data.manifest).resolve())
    if cfg.data.root:
        r = Path(cfg.data.root).resolve()
        out |= {r, r / "manifest.csv"}
    return out


def rows_to_score(ds: EvalSet, cfg: ExperimentConfig, split: str = "auto") -> tuple[list[ManifestRow], str]:
    """The rows to score and which part they are (``test`` / ``all`` / a split name)."""
    if split == "auto":
        if ds.source in _training_source(cfg) or any(r.split for r in ds.rows):
            split = "test"
        else:
            split = "all"
    if split == "all":
        return list(ds.rows), "all"
    if ds.source in _training_source(cfg) or not any(r.split for r in ds.rows):
        parts = split_by_group(ds.rows, cfg.data.split)
    else:
        parts = {s: [r for r in ds.rows if r.split == s] for s in ("train", "val", "test")}
    rows = parts.get(split, [])
    if not rows:
        raise InputError(f"{ds.name}: its {split!r} split is empty")
    return rows, split


def seen_hashes(run_dir: Path, cfg: ExperimentConfig) -> dict[str, str] | None:
    """``{sha256: split}`` of the images a run trained and selected on: from ``RUN/seen_rows.csv``, or,
    for a run trained before that file existed, recomputed from its config's data when it resolves.
    ``None`` when neither is possible."""
    if (run_dir / SEEN_ROWS_FILE).is_file():
        return read_seen_hashes(run_dir / SEEN_ROWS_FILE)
    try:
        splits = load_splits(cfg.data)
    except (OSError, FakescopeError):
        return None
    return seen_hashes_of({"train": splits["train"], "val": splits["val"]})


def drop_seen_rows(
    rows: list[ManifestRow], seen: dict[str, str] | None, label: str
) -> tuple[list[ManifestRow], dict[str, int]]:
    """Remove the rows whose content the run trained or selected on; say so in one line."""
    if seen is None:
        print(f"warning: {label}: the run has no {SEEN_ROWS_FILE} and its training data is not readable "
              "here, so overlap with its train/val images cannot be checked", file=sys.stderr)  # fmt: skip
        return rows, {}
    unseen, overlap = split_seen(rows, seen)
    counts = {s: sum(1 for _, sp in overlap if sp == s) for s in ("train", "val")}
    if overlap:
        print(f"{label}: {len(overlap)} of {len(rows)} images are the run's own training images by content "
              f"({counts['train']} train, {counts['val']} val); they are excluded, not scored", file=sys.stderr)  # fmt: skip
    if not unseen:
        raise InputError(f"{label}: every image is one the run trained or selected on; nothing left to test")
    return unseen, counts


def drop_unreadable_rows(
    rows: list[ManifestRow], cfg: ExperimentConfig, label: str, progress: bool = False
) -> tuple[list[ManifestRow], int]:
    """Decode every row's image once before scoring (streamed, under ``data.max_image_pixels``), so
    one corrupt file cannot end the evaluation: each unreadable one is one line on stderr and is
    left out (counted as ``excluded_unreadable`` in the metrics)."""
    bad = _unreadable_paths(rows, cfg, label, progress)
    return [r for r in rows if r.path not in bad], len(bad)


def _row_fields(r: ManifestRow, dataset: str) -> list[Any]:
    """What a predictions CSV says about a row (besides its score), as stored in a shard marker."""
    return [r.path, r.label, r.group, r.video_id, r.dataset or dataset, r.method]


def _prediction_row(fields: Sequence[Any], score: float, perturbation: str) -> dict[str, Any]:
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
    labels: list[int] = []
    scores: list[float] = []
    videos: list[str] = []
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
        for batch, out in iter_predictions(
            detector, loader, device, cfg.train.amp, cfg.train.amp_dtype, progress=progress,
            desc=f"{run_name} {dataset} {perturbation}",
        ):  # fmt: skip
            probs = out["prob"].tolist()
            for j, idx in enumerate(batch["index"].tolist()):
                r = ds.rows[idx]
                labels.append(r.label)
                scores.append(probs[j])
                videos.append(r.video_id)
                if writer:
                    writer.writerow(_prediction_row(_row_fields(r, dataset), probs[j], perturbation))
            if keep_features and "features" in out:
                feats.append(out["features"].numpy())
    return RunPredictions(
        run=run_name,
        dataset=dataset,
        perturbation=perturbation,
        labels=np.asarray(labels, dtype=np.int64),
        scores=np.asarray(scores, dtype=np.float64),
        videos=videos,
        features=np.concatenate(feats) if feats else None,
    )


def _metrics(pred: RunPredictions, threshold: float | None, bootstrap: int, seed: int) -> dict[str, Any]:
    from fakescope.eval.metrics import compute_metrics

    return compute_metrics(
        pred.labels,
        pred.scores,
        videos=pred.videos,
        threshold=threshold,
        bootstrap=bootstrap,
        seed=seed,
    )


def evaluate_runs(
    runs: Sequence[str | os.PathLike[str]],
    datasets: Sequence[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    robustness: bool = False,
    device: str = "auto",
    data_root: str | os.PathLike[str] | None = None,
    split: str = "auto",
    max_images: int | None = None,
    plots: bool = True,
    progress: bool = True,
    bootstrap: int | None = None,
    shard: Shard = SINGLE,
) -> dict[str, Any]:
    """Evaluate every run on every dataset; write predictions, tables and plots under ``out_dir``
    (default: the first run's directory). Returns the JSON-able summary that ``metrics/*.json`` holds.

    ``shard`` (docs/scale.md): every shard chooses the same rows (split, leakage guard, cap), then
    scores only the batches ``K, K + N, ...`` of each dataset (:func:`_shard_by_batch`) into
    ``out_dir/shards/K-of-N/``, with its scores at full precision in its done-marker; no metric is
    computed on a shard. :func:`merge_evaluate` computes them once on the merged predictions. Returns
    the shard's counts then."""
    from fakescope.eval import plots as plot_mod
    from fakescope.eval.robustness import perturbation_names, write_tables

    if not runs:
        raise InputError("evaluate: give at least one --run")
    if not datasets:
        raise InputError("evaluate: give at least one --data")
    dev = resolve_device(device)
    out = Path(out_dir) if out_dir is not None else Path(runs[0])
    folder = begin_shard(out, shard) if shard.enabled else out
    results: list[RunPredictions] = []
    sets: list[dict[str, Any]] = []  # with a shard: what the merge needs, one entry per run and dataset
    for run in runs:
        detector, cfg, meta = load_detector(run, dev)
        if bootstrap is not None:
            cfg.eval.bootstrap = bootstrap
        run_name = Path(run).name if Path(run).is_dir() else Path(run).parent.parent.name
        cap = max_images if max_images is not None else cfg.eval.max_images
        threshold = meta.get("val_threshold")
        perts = perturbation_names(cfg) if robustness else ["clean"]
        seen = seen_hashes(Path(run) if Path(run).is_dir() else Path(run).parent.parent, cfg)
        for spec in datasets:
            ds = resolve_dataset(spec, data_root)
            rows, part = rows_to_score(ds, cfg, split)
            rows, excluded = drop_seen_rows(rows, seen, f"{run_name} on {ds.name} ({part})")
            rows = cap_rows(rows, cap, cfg.seed)
            every = rows
            if shard.enabled:
                _check_two_classes(rows, ds.name, part)
                mine = _shard_by_batch(len(rows), cfg.eval.batch_size, shard)
                rows = [every[i] for i in mine]
            bad = _unreadable_paths(rows, cfg, f"{run_name} on {ds.name}", progress)
            # Decoded per shard (each its own images); the rows above are the same in every shard.
            rows = [r for r in rows if r.path not in bad]
            if not shard.enabled:
                _check_two_classes(rows, ds.name, part)
            info = {"run": run_name, "dataset": ds.name, "split": part, "threshold": threshold,
                    "bootstrap": cfg.eval.bootstrap, "seed": cfg.seed, "excluded_seen": excluded,
                    "excluded_unreadable": len(bad), "total": len(every), "perturbations": perts,
                    "plots": plots, "paths": fingerprint(r.path for r in every)}  # fmt: skip
            if shard.enabled:
                info["items"] = mine
                info["rows"] = [
                    [i, *_row_fields(every[i], ds.name)] for i in mine if every[i].path not in bad
                ]
                info["scores"] = {}
            for pert in perts:
                suffix = "" if pert == "clean" else f"__{pert}"
                csv_path = folder / "predictions" / f"{run_name}__{ds.name}{suffix}.csv"
                pred = predict_rows(
                    detector, cfg, rows, dev, run_name=run_name, dataset=ds.name, perturbation=pert,
                    csv_path=csv_path, keep_features=plots and pert == "clean", progress=progress,
                )  # fmt: skip
                if shard.enabled:
                    # Full precision (the CSV keeps 6 digits): the merge computes exactly the metrics
                    # one process computes.
                    info["scores"][pert] = pred.scores.tolist()
                    if pred.features is not None:
                        _save_features(folder / "features" / f"{len(sets)}.npy", pred.features)
                    continue
                pred.metrics = _metrics(pred, threshold, cfg.eval.bootstrap, cfg.seed)
                pred.metrics.update({"split": part, "n_images": len(rows), "val_threshold": threshold,
                                     "excluded_seen": excluded, "excluded_unreadable": len(bad)})  # fmt: skip
                results.append(pred)
            sets.append(info)
        del detector
    if shard.enabled:
        return _finish_evaluate_shard(out, shard, sets)
    summary = write_tables(results, out / "metrics")
    if plots:
        plot_mod.plot_all(results, out / "plots", perplexity=None)
    return summary


def _check_two_classes(rows: Sequence[ManifestRow], name: str, part: str) -> None:
    if len({r.label for r in rows}) < 2:
        raise InputError(f"{name} ({part}): holds one class only ({len(rows)} rows); AUC needs both")


def _shard_by_batch(n_rows: int, batch_size: int, shard: Shard) -> list[int]:
    """Indices of the batches ``K, K + N, ...`` of the rows (batches of ``eval.batch_size`` in row
    order). A shard's loader then forms exactly the batches one process forms: a network's output for
    an image can change in its last bits with the other images of its batch (the convolution kernels
    chosen depend on the batch), so other batches would not give the same scores. A video's frames
    may land in two shards; its video score is the mean computed at the merge over all of them."""
    blocks = range(shard.index * batch_size, n_rows, shard.count * batch_size)
    return [i for start in blocks for i in range(start, min(start + batch_size, n_rows))]


def _unreadable_paths(
    rows: Sequence[ManifestRow], cfg: ExperimentConfig, label: str, progress: bool
) -> set[str]:
    from fakescope.data.images import unreadable_images
    from fakescope.utils.text import one_line

    bad = unreadable_images(
        [r.path for r in rows], max_pixels=cfg.data.max_image_pixels, background=cfg.data.rgba_background,
        progress=progress and len(rows) > 100, desc=f"check {label}",
    )  # fmt: skip
    for err in bad.values():
        print(one_line(f"{label}: skipped: {err}"), file=sys.stderr)
    return set(bad)


def _save_features(path: Path, features: np.ndarray) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, features, allow_pickle=False)


def _finish_evaluate_shard(out: Path, shard: Shard, sets: list[dict[str, Any]]) -> dict[str, Any]:
    offsets = np.cumsum([0, *(s["total"] for s in sets)]).tolist()
    items = [offsets[k] + i for k, s in enumerate(sets) for i in s["items"]]
    keys = [f"{s['run']}|{s['dataset']}|{s['paths']}|{','.join(s['perturbations'])}" for s in sets]
    finish_shard(out, shard, "evaluate", total=offsets[-1], items=items, print_=fingerprint(keys),
                 payload={"sets": sets})  # fmt: skip
    return {"shard": shard.name, "sets": [{"run": s["run"], "dataset": s["dataset"], "n_images": len(s["rows"]),
            "excluded_unreadable": s["excluded_unreadable"]} for s in sets]}  # fmt: skip


def merge_evaluate(out_dir: str | os.PathLike[str], count: int | None = None) -> dict[str, Any]:
    """Predictions, metrics and plots of a sharded ``evaluate --run`` from its finished shards: the
    predictions in the order one process writes them, and every metric (AUC, bootstrap interval,
    thresholded accuracy) computed once on the merged scores, never averaged over shards. Raises
    :class:`InputError` naming a missing or unfinished shard."""
    from fakescope.eval import plots as plot_mod
    from fakescope.eval.robustness import write_tables

    out = Path(out_dir)
    markers = read_shards(out, count, "evaluate")
    results: list[RunPredictions] = []
    for k, info in enumerate(markers[0]["payload"]["sets"]):
        parts = [(m["index"], m["payload"]["sets"][k]) for m in markers]
        # Row indices in the list every shard chose: sorting them gives one process's order.
        rows = {r[0]: r[1:] for _, p in parts for r in p["rows"]}
        merged = [rows[i] for i in sorted(rows)]
        _check_two_classes([ManifestRow(f[0], f[1], f[2]) for f in merged], info["dataset"], info["split"])
        unreadable = sum(p["excluded_unreadable"] for _, p in parts)
        feats = _merged_features(out, markers, k, parts) if info["plots"] else None
        for pert in info["perturbations"]:
            by_index = {
                r[0]: sc for _, p in parts for r, sc in zip(p["rows"], p["scores"][pert], strict=True)
            }
            scores = np.asarray([by_index[i] for i in sorted(by_index)], dtype=np.float64)
            suffix = "" if pert == "clean" else f"__{pert}"
            with atomic_open(out / "predictions" / f"{info['run']}__{info['dataset']}{suffix}.csv", "w",
                             newline="", encoding="utf-8", errors=PATH_CSV_ERRORS) as fh:  # fmt: skip
                writer = csv.DictWriter(fh, fieldnames=PREDICTION_FIELDS)
                writer.writeheader()
                for fields, score in zip(merged, scores, strict=True):
                    writer.writerow(_prediction_row(fields, float(score), pert))
            _merge_fit_logs(out, markers, parts, f"{info['run']}__{info['dataset']}{suffix}.inr_fits.csv")
            pred = RunPredictions(
                run=info["run"], dataset=info["dataset"], perturbation=pert,
                labels=np.asarray([f[1] for f in merged], dtype=np.int64), scores=scores,
                videos=[f[3] for f in merged], features=feats if pert == "clean" else None,
            )  # fmt: skip
            pred.metrics = _metrics(pred, info["threshold"], info["bootstrap"], info["seed"])
            pred.metrics.update({"split": info["split"], "n_images": len(merged), "val_threshold": info["threshold"],
                                 "excluded_seen": info["excluded_seen"], "excluded_unreadable": unreadable})  # fmt: skip
            results.append(pred)
    summary = write_tables(results, out / "metrics")
    if any(r.features is not None for r in results):
        plot_mod.plot_all(results, out / "plots", perplexity=None)
    return summary


def _merge_fit_logs(
    out: Path, markers: Sequence[dict[str, Any]], parts: Sequence[tuple[int, dict[str, Any]]], name: str
) -> None:
    """INFER-family runs: the shards' per-image INR fit logs as one, in merged row order."""
    lines: list[tuple[int, str]] = []
    header = None
    for m, (_, p) in zip(markers, parts, strict=True):
        path = out / "shards" / f"{m['index']}-of-{m['count']}" / "predictions" / name
        if not p["rows"]:
            continue
        if not path.is_file():
            return  # a detector without heatmaps writes none
        header, *body = path.read_text(encoding="utf-8", errors=PATH_CSV_ERRORS).splitlines()
        lines += zip((r[0] for r in p["rows"]), body, strict=True)
    if header is not None:
        text = "\n".join([header, *(line for _, line in sorted(lines))]) + "\n"
        atomic_write_text(out / "predictions" / name, text)


def _merged_features(
    out: Path, markers: Sequence[dict[str, Any]], k: int, parts: Sequence[tuple[int, dict[str, Any]]]
) -> np.ndarray | None:
    """The shards' clean-image embeddings of set ``k``, in merged row order (for the t-SNE plot)."""
    chunks, index = [], []
    for m, (_, p) in zip(markers, parts, strict=True):
        path = out / "shards" / f"{m['index']}-of-{m['count']}" / "features" / f"{k}.npy"
        if p["rows"]:
            if not path.is_file():
                return None
            chunks.append(np.load(path, allow_pickle=False))
            index += [r[0] for r in p["rows"]]
    if not chunks:
        return None
    return np.concatenate(chunks)[np.argsort(index, kind="stable")]
