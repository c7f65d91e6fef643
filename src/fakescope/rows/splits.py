"""Which split of the data a job reads, and the checks every split must pass: the train and val rows a
run trains and selects on (the test split stays unread), the part of a dataset an evaluation scores,
and the two classes an AUC needs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fakescope.config import ExperimentConfig
from fakescope.data.manifest import ManifestRow, split_by_group
from fakescope.data.splits import load_splits
from fakescope.errors import InputError
from fakescope.rows.datasets import EvalSet
from fakescope.rows.rowset import RowSet

__all__ = ["check_splits", "check_two_classes", "rows_to_score", "train_val_rows"]


def train_val_rows(cfg: ExperimentConfig) -> RowSet:
    """The train and val rows (:func:`fakescope.data.splits.load_splits`), checked; the test split
    stays unread."""
    splits = load_splits(cfg.data)
    rows = RowSet({"train": splits["train"], "val": splits["val"]})
    check_splits(rows, synthetic=cfg.train.synthetic_fakes is not None)
    return rows


def check_splits(rows: RowSet, when: str = "", synthetic: bool = False) -> None:
    """Both splits non-empty and holding both classes (with synthetic fakes: real faces, the fakes are
    made from them)."""
    train_rows, val_rows = rows.splits["train"], rows.splits["val"]
    note = f" {when}" if when else ""
    if not train_rows or not val_rows:
        raise InputError(
            f"data: need train and val rows (got {len(train_rows)} train, {len(val_rows)} val{note}); "
            "check data.split or the manifest's split column"
        )
    if synthetic:
        return
    if len({r.label for r in val_rows}) < 2:
        raise InputError(
            f"data: the validation split holds one class only ({len(val_rows)} rows{note}); AUC needs both"
        )
    if len({r.label for r in train_rows}) < 2:
        raise InputError(f"data: the train split holds one class only ({len(train_rows)} rows{note})")


def check_two_classes(rows: Sequence[ManifestRow], name: str, part: str) -> None:
    """A scored set must hold both classes: an AUC needs them."""
    if len({r.label for r in rows}) < 2:
        raise InputError(f"{name} ({part}): holds one class only ({len(rows)} rows); AUC needs both")


def _training_source(cfg: ExperimentConfig) -> set[Path]:
    out: set[Path] = set()
    if cfg.data.manifest:
        out.add(Path(cfg.data.manifest).resolve())
    if cfg.data.root:
        r = Path(cfg.data.root).resolve()
        out |= {r, r / "manifest.csv"}
    return out


def rows_to_score(ds: EvalSet, cfg: ExperimentConfig, split: str = "auto") -> tuple[list[ManifestRow], str]:
    """The rows to score and which part they are (``test`` / ``all`` / a split name). The run's own
    training dataset is split by group exactly as ``train`` split it."""
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
