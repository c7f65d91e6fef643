"""The leakage guard, by content: whatever path or manifest an image comes back under, an image whose
bytes equal one of a run's train or val images is never scored. ``train`` records the SHA-256 of every
image it trained and selected on (``RUN/seen_rows.csv``); ``evaluate`` leaves those images out."""

from __future__ import annotations

import sys
from pathlib import Path

from fakescope.config import ExperimentConfig
from fakescope.data.splits import SEEN_ROWS_FILE, load_splits, read_seen_hashes, seen_hashes_of, split_seen
from fakescope.data.splits import write_seen_rows as _write_seen_rows
from fakescope.errors import FakescopeError, InputError
from fakescope.rows.rowset import SEEN, Exclusion, RowSet

__all__ = ["drop_seen_rows", "seen_hashes", "write_seen_rows"]


def write_seen_rows(run: Path, rows: RowSet) -> None:
    """``RUN/seen_rows.csv``: the content hash of every train and val image the run reads."""
    _write_seen_rows(run / SEEN_ROWS_FILE, rows.splits)


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


def drop_seen_rows(rows: RowSet, seen: dict[str, str] | None, label: str) -> RowSet:
    """``rows`` less the images whose content the run trained or selected on (:data:`SEEN` exclusions,
    counted under the run's split that holds them); one line on stderr says how many. A set made only
    of such images is an error."""
    if seen is None:
        print(f"warning: {label}: the run has no {SEEN_ROWS_FILE} and its training data is not readable "
              "here, so overlap with its train/val images cannot be checked", file=sys.stderr)  # fmt: skip
        return rows
    found: dict[str, Exclusion] = {}
    for part_rows in rows.splits.values():
        found.update({r.path: Exclusion(split, SEEN) for r, split in split_seen(part_rows, seen)[1]})
    kept = rows.without(found)
    if found:
        total = sum(len(r) for r in rows.splits.values())
        print(f"{label}: {len(found)} of {total} images are the run's own training images by content "
              f"({kept.count(SEEN, 'train')} train, {kept.count(SEEN, 'val')} val); they are excluded, not scored",
              file=sys.stderr)  # fmt: skip
    if not all(kept.splits.values()):
        raise InputError(f"{label}: every image is one the run trained or selected on; nothing left to test")
    return kept
