"""Every image decoded once, before the first step or the first score (streamed, under
``data.max_image_pixels``), so that one corrupt file can never end a run part-way: the rows that do
not decode (:data:`~fakescope.rows.rowset.UNREADABLE`) and the crops below the minimum face size
(:data:`~fakescope.rows.rowset.TOO_SMALL`, ``fakescope.data.images.MIN_FACE_SIDE``) are left out, each
with its reason and error."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from tqdm.auto import tqdm

from fakescope.config import ExperimentConfig
from fakescope.data.images import unreadable_images
from fakescope.errors import FaceTooSmallError, InputError
from fakescope.rows.rowset import TOO_SMALL, UNREADABLE, Exclusion, RowSet
from fakescope.utils.atomic import atomic_open
from fakescope.utils.text import PATH_CSV_ERRORS, one_line

__all__ = ["SKIPPED_ROWS_FILE", "drop_unreadable", "refuse_unreadable", "write_skipped_rows"]

#: Written into a run folder by ``train``: split, path, reason and error of every train/val image left
#: out.
SKIPPED_ROWS_FILE = "skipped_rows.csv"


def drop_unreadable(
    rows: RowSet, cfg: ExperimentConfig, *, desc: str, progress: bool, announce: str | None = None
) -> RowSet:
    """``rows`` less the images that do not decode and the crops below the minimum face size, recorded
    as :data:`UNREADABLE` and :data:`TOO_SMALL` exclusions. ``desc`` (``{split}`` is filled in) labels the progress bar, shown for splits over 100
    rows; with ``announce``, each left-out image is one line on stderr, ``"<announce>: skipped: <error>"``."""
    found: dict[str, Exclusion] = {}
    for split, split_rows in rows.splits.items():
        errors = unreadable_images(
            [r.path for r in split_rows], max_pixels=cfg.data.max_image_pixels,
            background=cfg.data.rgba_background, desc=desc.replace("{split}", split),
            progress=progress and len(split_rows) > 100,
        )  # fmt: skip
        for path, err in errors.items():
            reason = TOO_SMALL if isinstance(err, FaceTooSmallError) else UNREADABLE
            found[path] = Exclusion(split, reason, str(err))
            if announce is not None:
                print(one_line(f"{announce}: skipped: {err}"), file=sys.stderr)
    return rows.without(found)


#: What the stderr line and a refusal call the images left out for each reason.
_WHAT = {UNREADABLE: "unreadable image(s)", TOO_SMALL: "crop(s) too small to tell real from fake"}


def _bad_images(rows: RowSet) -> list[tuple[str, str, str, str]]:
    """(split, path, reason, error) of every image left out as unreadable or too small."""
    return [(e.split, path, e.reason, e.detail) for path, e in rows.excluded.items() if e.reason in _WHAT]


def refuse_unreadable(rows: RowSet, cfg: ExperimentConfig) -> None:
    """``train.bad_images: error``: refuse to start when any train or val image is unreadable or too
    small, naming the first."""
    bad = _bad_images(rows)
    if bad and cfg.train.bad_images == "error":
        counts = " and ".join(f"{n} {_WHAT[r]}" for r in _WHAT if (n := rows.count(r)))
        raise InputError(
            f"{bad[0][3]} ({counts} among the train/val images; train.bad_images=skip trains without them)"
        )


def write_skipped_rows(run: Path, rows: RowSet) -> None:
    """``RUN/skipped_rows.csv`` (split, path, reason, error) and, per reason, one line on stderr
    counting the images left out per split; nothing when every image is usable."""
    bad = _bad_images(rows)
    if not bad:
        return
    with atomic_open(
        run / SKIPPED_ROWS_FILE, "w", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS
    ) as fh:
        w = csv.writer(fh)
        w.writerow(["split", "path", "reason", "error"])
        w.writerows(bad)
    for reason, what in _WHAT.items():
        first = next((b for b in bad if b[2] == reason), None)
        if first is None:
            continue
        counts = ", ".join(f"{n} {s}" for s in rows.splits if (n := rows.count(reason, s)))
        tqdm.write(
            one_line(
                f"train: skipped {rows.count(reason)} {what} ({counts}; listed in {run / SKIPPED_ROWS_FILE}); "
                f"first: {first[3]}"
            ),
            file=sys.stderr,
        )
