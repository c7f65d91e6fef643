"""The rows ``train`` reads, in its order: the train/val split (the test split stays unread), every
image decoded once (``train.bad_images``), both splits checked again, and, with synthetic fakes, the
real faces alone. Nothing is written: the caller records the result once it accepts the run."""

from __future__ import annotations

from fakescope.config import ExperimentConfig
from fakescope.rows.rowset import RowSet
from fakescope.rows.splits import check_splits, train_val_rows
from fakescope.rows.synthetic import reals
from fakescope.rows.unreadable import drop_unreadable, refuse_unreadable

__all__ = ["training_rows"]


def training_rows(cfg: ExperimentConfig, progress: bool) -> RowSet:
    """The train and val rows a run trains and selects on, with the unreadable ones left out (or
    refused, under ``train.bad_images: error``). Raises :class:`~fakescope.errors.InputError` when a
    split is empty or holds one class."""
    tc = cfg.train
    rows = drop_unreadable(train_val_rows(cfg), cfg, desc="check {split} images", progress=progress)
    refuse_unreadable(rows, cfg)
    check_splits(rows, "after leaving out unreadable images", synthetic=tc.synthetic_fakes is not None)
    if tc.synthetic_fakes is not None:  # trained (and, with synthetic_val, selected) on real faces alone
        val = rows.splits["val"]
        rows = rows.replace(train=reals(rows.splits["train"]), val=reals(val) if tc.synthetic_val else val)
    return rows
