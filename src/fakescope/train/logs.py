"""A run's CSV logs: ``steps.csv`` (one row per optimiser step) and ``log.csv`` (one row per epoch),
appended as the run goes and cut back to the checkpoint a resumed run starts from."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from fakescope.utils.atomic import atomic_write_text

__all__ = ["EPOCH_LOG_FIELDS", "STEP_LOG_FIELDS", "append_csv", "truncate_csv"]

# lr_<group>: the rate this step used; epoch_progress: the fractional epoch the scheduler moved to after it.
STEP_LOG_FIELDS = ["epoch", "step", "epoch_progress", "loss", "ce", "supcon", "grad_norm"]
EPOCH_LOG_FIELDS = [
    "epoch", "step", "train_loss", "val_auc", "val_threshold", "val_acc", "best_val_auc", "seconds",
]  # fmt: skip


def append_csv(path: Path, fields: list[str], row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def truncate_csv(path: Path, key: str, keep_upto: float) -> None:
    """Drop rows logged after the checkpoint we resume from (the crashed run's extra steps)."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = [r for r in reader if float(r[key]) <= keep_upto]
    lines = [",".join(fields)] + [",".join(r[f] for f in fields) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")
