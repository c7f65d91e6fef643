"""The rows a ``data`` config section names, split by group and capped (docs/design.md, "Datasets"; docs/data.md
"Splits"). Training, evaluation and ``learn-inr-init`` all split through here, so a face that is in
the test split for one of them is in the test split for all of them."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence

import numpy as np

from fakescope.data.config import DataConfig
from fakescope.data.manifest import ManifestRow, read_manifest, split_by_group
from fakescope.errors import ConfigError
from fakescope.utils.atomic import atomic_open
from fakescope.utils.hashing import file_sha256
from fakescope.utils.text import PATH_CSV_ERRORS

__all__ = [
    "SEEN_ROWS_FILE",
    "cap_rows",
    "load_data_rows",
    "load_splits",
    "read_seen_hashes",
    "seen_hashes_of",
    "split_seen",
    "write_seen_rows",
]


def load_data_rows(data_cfg: DataConfig) -> list[ManifestRow]:
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


def load_splits(data_cfg: DataConfig) -> dict[str, list[ManifestRow]]:
    """Train / val / test rows split by group (``data.split``), each capped at ``data.max_per_split``."""
    splits = split_by_group(load_data_rows(data_cfg), data_cfg.split)
    return {
        name: cap_rows(rows, data_cfg.max_per_split, data_cfg.split.seed + i)
        for i, (name, rows) in enumerate(splits.items())
    }


# ---------------------------------------------------------------- what a run has seen, by content

#: Written into a run folder by ``train``: split, path and SHA-256 of every train and val image.
SEEN_ROWS_FILE = "seen_rows.csv"


def _sha256_or_none(path: str) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def write_seen_rows(path: str | os.PathLike[str], splits: dict[str, Sequence[ManifestRow]]) -> None:
    """Record the content hash of every image a run trained or selected its model on, so evaluation can
    recognise those images by content, whatever path or manifest they come back under."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["split", "path", "sha256"])
    for split, rows in splits.items():
        for r in rows:
            writer.writerow([split, r.path, _sha256_or_none(r.path) or ""])
    # surrogateescape: a path that is not UTF-8 is written as its bytes (utils.text)
    with atomic_open(path, "w", encoding="utf-8", errors=PATH_CSV_ERRORS) as fh:
        fh.write(buf.getvalue())


def seen_hashes_of(splits: dict[str, Sequence[ManifestRow]]) -> dict[str, str]:
    """``{sha256: split}`` of readable rows, as :data:`SEEN_ROWS_FILE` records them."""
    out: dict[str, str] = {}
    for split, rows in splits.items():
        for r in rows:
            digest = _sha256_or_none(r.path)
            if digest:
                out[digest] = split
    return out


def read_seen_hashes(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{sha256: split}`` from a run's :data:`SEEN_ROWS_FILE`."""
    with open(path, newline="", encoding="utf-8", errors=PATH_CSV_ERRORS) as fh:
        return {row["sha256"]: row["split"] for row in csv.DictReader(fh) if row.get("sha256")}


def split_seen(
    rows: Sequence[ManifestRow], seen: dict[str, str]
) -> tuple[list[ManifestRow], list[tuple[ManifestRow, str]]]:
    """``rows`` whose content the run never saw, and the others with the split they were in."""
    unseen: list[ManifestRow] = []
    overlap: list[tuple[ManifestRow, str]] = []
    for r in rows:
        split = seen.get(_sha256_or_none(r.path) or "")
        if split is None:
            unseen.append(r)
        else:
            overlap.append((r, split))
    return unseen, overlap
