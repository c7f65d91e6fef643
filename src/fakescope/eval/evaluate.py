"""Score a trained run on one or more datasets (docs/design.md, "Data, evaluation and robustness";
AIRL (Parihar), §IV-C, §V-B; INFER §4.1 Table 1, anonymous NeurIPS-format submission).

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

The rows are chosen by :mod:`fakescope.rows` (the same checks ``train`` makes); every run's config and
weights and every dataset of every run are chosen and accepted before any is scored, so a refusal (a
missing run, damaged weights, a set left with one class) writes nothing; then
:mod:`fakescope.eval.scoring` scores each set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from fakescope.config import ExperimentConfig
from fakescope.data.manifest import ManifestRow
from fakescope.data.splits import cap_rows
from fakescope.errors import InputError
from fakescope.eval.evaluate_shards import ShardOutput
from fakescope.eval.scoring import EXCLUDED_COUNTS, RunPredictions, predict_rows, set_metrics
from fakescope.inference.checkpoint import load_detector, load_model_state, load_run_config
from fakescope.rows.datasets import resolve_dataset
from fakescope.rows.rowset import SEEN, TOO_SMALL, UNREADABLE, RowSet
from fakescope.rows.seen import drop_seen_rows, seen_hashes
from fakescope.rows.splits import check_two_classes, rows_to_score
from fakescope.rows.unreadable import drop_unreadable
from fakescope.utils.runtime import resolve_device
from fakescope.utils.sharding import SINGLE, Shard, fingerprint

__all__ = ["evaluate_runs"]


class _Output(Protocol):
    """Where scores go: :class:`_Metrics` (one process) or :class:`~fakescope.eval.evaluate_shards.ShardOutput`."""

    folder: Path

    def pick(self, rows: Sequence[ManifestRow], batch_size: int, name: str, part: str) -> list[int]: ...
    def accept(self, rows: Sequence[ManifestRow], name: str, part: str) -> None: ...
    def start(self) -> None:
        """Every set is accepted: only now may anything be written."""
        ...

    def begin_set(
        self, info: dict[str, Any], every: Sequence[ManifestRow], mine: list[int], rows: Sequence[ManifestRow]
    ) -> None: ...
    def add(self, pred: RunPredictions) -> None: ...
    def finish(self) -> dict[str, Any]: ...


class _Metrics:
    """One process scores every row: metrics per run, dataset and perturbation, then the tables
    (``metrics/``) and plots (``plots/``)."""

    def __init__(self, out: Path, plots: bool) -> None:
        self.folder, self.plots = out, plots
        self.results: list[RunPredictions] = []
        self.info: dict[str, Any] = {}

    def pick(self, rows: Sequence[ManifestRow], batch_size: int, name: str, part: str) -> list[int]:
        return list(range(len(rows)))

    def accept(self, rows: Sequence[ManifestRow], name: str, part: str) -> None:
        check_two_classes(rows, name, part)

    def start(self) -> None:
        """Nothing to prepare: the predictions, tables and plots create their folders as they are written."""

    def begin_set(
        self, info: dict[str, Any], every: Sequence[ManifestRow], mine: list[int], rows: Sequence[ManifestRow]
    ) -> None:
        self.info, self.n_images = info, len(rows)

    def add(self, pred: RunPredictions) -> None:
        set_metrics(pred, self.info, self.n_images, {k: self.info[k] for k in EXCLUDED_COUNTS})
        self.results.append(pred)

    def finish(self) -> dict[str, Any]:
        from fakescope.eval import plots as plot_mod
        from fakescope.eval.robustness import write_tables

        summary = write_tables(self.results, self.folder / "metrics")
        if self.plots:
            plot_mod.plot_all(self.results, self.folder / "plots", perplexity=None)
        return summary


@dataclass
class _ChosenSet:
    """One dataset's rows for one run: every row chosen (the same in every shard), this process's share
    left after the unreadable scan, and what the metrics say about the choice."""

    name: str
    every: list[ManifestRow]
    mine: list[int]
    rows: RowSet
    info: dict[str, Any]


def _select_rows(
    spec: str, cfg: ExperimentConfig, output: _Output, *, run_name: str, seen: dict[str, str] | None,
    split: str, data_root: str | os.PathLike[str] | None, cap: int | None, progress: bool,
) -> _ChosenSet:  # fmt: skip
    """The rows of ``spec`` this process scores: the part to score, less the run's own images (by
    content), capped, this shard's share, less the unreadable images and the crops below the minimum
    face size; refused when a class is missing."""
    ds = resolve_dataset(spec, data_root)
    rows, part = rows_to_score(ds, cfg, split)
    chosen = drop_seen_rows(RowSet({part: rows}), seen, f"{run_name} on {ds.name} ({part})")
    every = cap_rows(chosen.splits[part], cap, cfg.seed)
    mine = output.pick(every, cfg.eval.batch_size, ds.name, part)
    label = f"{run_name} on {ds.name}"
    # Decoded per shard (each its own images); the rows above are the same in every shard.
    scored = drop_unreadable(chosen.replace(**{part: [every[i] for i in mine]}), cfg,
                             desc=f"check {label}", progress=progress, announce=label)  # fmt: skip
    output.accept(scored.splits[part], ds.name, part)
    excluded = {s: scored.count(SEEN, s) for s in ("train", "val")} if seen is not None else {}
    info = {"run": run_name, "dataset": ds.name, "split": part, "excluded_seen": excluded,
            "excluded_unreadable": scored.count(UNREADABLE), "excluded_too_small": scored.count(TOO_SMALL),
            "total": len(every), "paths": fingerprint(r.path for r in every)}  # fmt: skip
    return _ChosenSet(ds.name, every, mine, scored, info)


@dataclass
class _ChosenRun:
    """One ``--run``, checked: its checkpoint, config (with ``--bootstrap`` applied), meta, the
    perturbations it is scored under and the chosen set of every dataset."""

    checkpoint: Path
    cfg: ExperimentConfig
    meta: dict[str, Any]
    perturbations: list[str]
    sets: list[_ChosenSet]


def _choose_run(
    run: str | os.PathLike[str], datasets: Sequence[str], output: _Output, *, robustness: bool,
    bootstrap: int | None, split: str, data_root: str | os.PathLike[str] | None, max_images: int | None,
    progress: bool,
) -> _ChosenRun:  # fmt: skip
    """Check one run before anything is scored: its checkpoint's config and weights (read and checked
    here, built later), its perturbations, and the rows of every dataset."""
    from fakescope.eval.robustness import perturbation_names

    checkpoint, cfg, meta = load_run_config(run)
    load_model_state(checkpoint, meta)  # damaged weights are refused now, not after other runs' scores
    if bootstrap is not None:
        cfg.eval.bootstrap = bootstrap
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent.parent
    perts = perturbation_names(cfg) if robustness else ["clean"]
    cap = max_images if max_images is not None else cfg.eval.max_images
    options = {"run_name": run_dir.name, "seen": seen_hashes(run_dir, cfg), "split": split,
               "data_root": data_root, "cap": cap}  # fmt: skip
    sets = [_select_rows(spec, cfg, output, progress=progress, **options) for spec in datasets]
    return _ChosenRun(checkpoint, cfg, meta, perts, sets)


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

    First every run is checked and the rows of every dataset selected (:mod:`fakescope.rows`); only
    when all are accepted is anything scored or written. ``shard`` (docs/scale.md) changes only where the scores go
    (:mod:`fakescope.eval.evaluate_shards`): a shard scores its share into ``out_dir/shards/K-of-N/``
    and :func:`~fakescope.eval.evaluate_shards.merge_evaluate` computes the metrics once on the merged
    predictions; it returns the shard's counts then."""
    if not runs:
        raise InputError("evaluate: give at least one --run")
    if not datasets:
        raise InputError("evaluate: give at least one --data")
    dev = resolve_device(device)
    out = Path(out_dir) if out_dir is not None else Path(runs[0])
    output: _Output = ShardOutput(out, shard) if shard.enabled else _Metrics(out, plots)
    options = {"robustness": robustness, "bootstrap": bootstrap, "split": split, "data_root": data_root,
               "max_images": max_images, "progress": progress}  # fmt: skip
    chosen = [_choose_run(run, datasets, output, **options) for run in runs]
    output.start()
    for ch in chosen:
        detector, _, _ = load_detector(ch.checkpoint, dev)
        cfg, perts = ch.cfg, ch.perturbations
        for sel in ch.sets:
            info = {**sel.info, "threshold": ch.meta.get("val_threshold"), "bootstrap": cfg.eval.bootstrap,
                    "seed": cfg.seed, "perturbations": perts, "plots": plots}  # fmt: skip
            output.begin_set(info, sel.every, sel.mine, sel.rows.splits[info["split"]])
            _score_set(detector, cfg, dev, output, sel, perts, plots=plots, progress=progress)
        del detector
    return output.finish()


def _score_set(
    detector: torch.nn.Module, cfg: ExperimentConfig, dev: torch.device, output: _Output, sel: _ChosenSet,
    perts: list[str], *, plots: bool, progress: bool,
) -> None:  # fmt: skip
    """Score one chosen set under every perturbation, one predictions CSV each."""
    run_name, rows = sel.info["run"], sel.rows.splits[sel.info["split"]]
    for pert in perts:
        suffix = "" if pert == "clean" else f"__{pert}"
        pred = predict_rows(
            detector, cfg, rows, dev, run_name=run_name, dataset=sel.name, perturbation=pert,
            csv_path=output.folder / "predictions" / f"{run_name}__{sel.name}{suffix}.csv",
            keep_features=plots and pert == "clean", progress=progress,
        )  # fmt: skip
        output.add(pred)
