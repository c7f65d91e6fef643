"""Manifests: the one tabular format (CSV) for every image, frame and video set.

Columns ``path,label,group`` are required; ``dataset,method,split,video,frame`` are optional
(docs/CONTRACTS.md). Labels are ``real`` / ``fake`` in the file and ``0`` / ``1`` in memory.
Splits are made **by group** (docs/design.md, "Datasets"): a person or a source video
lands on exactly one side of train / val / test, so a detector cannot score well by recognising faces.
"""

from __future__ import annotations

import csv
import os
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from fakescope.data.config import SplitConfig
from fakescope.errors import ManifestError
from fakescope.utils.atomic import atomic_open
from fakescope.utils.paths import not_a_file_reason
from fakescope.utils.text import PATH_CSV_ERRORS

REQUIRED_COLUMNS = ("path", "label", "group")
OPTIONAL_COLUMNS = ("dataset", "method", "split", "video", "frame")
LABEL_NAMES = {0: "real", 1: "fake"}
# Accepted spellings in a CSV; "0"/"1" are tolerated because hand-made manifests often use them.
LABEL_VALUES = {"real": 0, "fake": 1, "0": 0, "1": 1}
SPLITS = ("train", "val", "test")
MAX_LISTED_PROBLEMS = 10


@dataclass
class ManifestRow:
    """One image, frame or video. ``path`` is absolute once read from a manifest."""

    path: str
    label: int
    group: str
    dataset: str = ""
    method: str = ""
    split: str = ""
    video: str = ""
    frame: int | None = None

    @property
    def label_name(self) -> str:
        return LABEL_NAMES[self.label]

    @property
    def video_id(self) -> str:
        """The full identity of the video this row comes from: ``dataset/method/video``.

        The folder or file name alone is not enough: FaceForensics++ names the Deepfakes, Face2Face,
        FaceSwap, ... versions of one source pair identically (``000_003``), and video-level metrics
        (the mean of a video's frame scores; docs/design.md, "Metrics") must never pool them. Without a ``video`` column
        each file is its own video, identified by its path without extension.
        """
        video = self.video or os.path.splitext(self.path)[0]
        return f"{self.dataset}/{self.method}/{video}"


def _problem_message(source: str, problems: list[str]) -> str:
    shown = problems[:MAX_LISTED_PROBLEMS]
    more = len(problems) - len(shown)
    tail = f"; ... and {more} more" if more > 0 else ""
    return f"{source}: {len(problems)} problem(s): " + "; ".join(shown) + tail


def parse_label(value: str) -> int | None:
    """``real``/``fake`` (any case) or ``0``/``1`` → 0/1; anything else → None."""
    return LABEL_VALUES.get(str(value).strip().lower())


def read_manifest(path: str | os.PathLike[str], check_files: bool = True) -> list[ManifestRow]:
    """Read and validate a manifest CSV.

    Relative paths are resolved against the manifest's folder. Every problem (unknown label, empty
    group, bad split or frame, missing file, duplicated path) is collected first and reported in one
    ``ManifestError`` naming the CSV line of each offending row, so a user fixes them all in one go.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    base = path.parent.resolve()
    problems: list[str] = []
    rows: list[ManifestRow] = []
    first_line: dict[str, int] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig", errors=PATH_CSV_ERRORS) as fh:
            reader = csv.DictReader(fh)
            header = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise ManifestError(
                    f"{path}: missing column(s) {', '.join(missing)} (header is {','.join(header) or 'empty'};"
                    f" required: {','.join(REQUIRED_COLUMNS)})"
                )
            reader.fieldnames = header
            for line_no, raw in enumerate(reader, start=2):
                rec = {k: (v or "").strip() for k, v in raw.items() if k is not None}
                where = f"line {line_no}"
                label = parse_label(rec["label"])
                if label is None:
                    problems.append(f"{where}: unknown label {rec['label']!r} (use real or fake)")
                if not rec["path"]:
                    problems.append(f"{where}: empty path")
                    continue
                if not rec["group"]:
                    problems.append(f"{where}: empty group for {rec['path']}")
                split = rec.get("split", "")
                if split and split not in SPLITS:
                    problems.append(f"{where}: unknown split {split!r} (use train, val or test)")
                frame: int | None = None
                if rec.get("frame"):
                    try:
                        frame = int(rec["frame"])
                    except ValueError:
                        problems.append(f"{where}: frame {rec['frame']!r} is not an integer")
                full = os.path.normpath(os.path.join(base, os.path.expanduser(rec["path"])))
                if full in first_line:
                    problems.append(
                        f"{where}: duplicated path {rec['path']} (first on line {first_line[full]})"
                    )
                    continue
                first_line[full] = line_no
                reason = not_a_file_reason(full) if check_files else None
                if reason == "no such file":
                    problems.append(f"{where}: file not found {full}")
                elif reason is not None:
                    problems.append(f"{where}: {full} is {reason}")
                rows.append(
                    ManifestRow(
                        path=full,
                        label=label if label is not None else -1,
                        group=rec["group"],
                        dataset=rec.get("dataset", ""),
                        method=rec.get("method", ""),
                        split=split,
                        video=rec.get("video", ""),
                        frame=frame,
                    )
                )
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path}: not a UTF-8 CSV ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise ManifestError(f"{path}: malformed CSV ({err})") from None
    if problems:
        raise ManifestError(_problem_message(str(path), problems))
    if not rows:
        raise ManifestError(f"{path}: manifest has no rows")
    return rows


def validate_rows(rows: Sequence[ManifestRow], source: str = "manifest", check_files: bool = True) -> None:
    """The same checks as :func:`read_manifest`, for rows built in memory (e.g. by a layout builder)."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        where = f"row {i}"
        if row.label not in LABEL_NAMES:
            problems.append(f"{where}: unknown label {row.label!r} for {row.path}")
        if not row.group:
            problems.append(f"{where}: empty group for {row.path}")
        if row.split and row.split not in SPLITS:
            problems.append(f"{where}: unknown split {row.split!r} for {row.path}")
        key = os.path.normpath(row.path)
        if key in seen:
            problems.append(f"{where}: duplicated path {row.path} (first in row {seen[key]})")
        else:
            seen[key] = i
        if check_files and not os.path.exists(row.path):
            problems.append(f"{where}: file not found {row.path}")
    if problems:
        raise ManifestError(_problem_message(source, problems))


def _relative_path(p: str, manifest_dir: Path, relative_to: Path) -> str:
    full = Path(os.path.abspath(p))
    try:
        full.relative_to(relative_to)
    except ValueError:
        return str(full)
    return Path(os.path.relpath(full, manifest_dir)).as_posix()


def write_manifest(
    rows: Iterable[ManifestRow],
    path: str | os.PathLike[str],
    relative_to: str | os.PathLike[str] | None = None,
) -> Path:
    """Write rows as a manifest CSV, atomically.

    Paths inside ``relative_to`` (default: the manifest's own folder) are written relative to the
    manifest's folder, so a dataset folder can be moved as a whole; other paths stay absolute.
    Optional columns are written only when some row uses them.
    """
    path = Path(path)
    manifest_dir = path.parent.resolve()
    base = Path(relative_to).resolve() if relative_to is not None else manifest_dir
    rows = list(rows)
    used = [c for c in OPTIONAL_COLUMNS if any(getattr(r, c) not in ("", None) for r in rows)]
    columns = list(REQUIRED_COLUMNS) + used
    with atomic_open(path, "w", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS) as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for r in rows:
            if r.label not in LABEL_NAMES:
                raise ManifestError(f"{path}: row for {r.path} has unknown label {r.label!r}")
            rec = {
                "path": _relative_path(r.path, manifest_dir, base),
                "label": LABEL_NAMES[r.label],
                "group": r.group,
                "dataset": r.dataset,
                "method": r.method,
                "split": r.split,
                "video": r.video,
                "frame": "" if r.frame is None else str(r.frame),
            }
            writer.writerow([rec[c] for c in columns])
    return path


def _assign_groups(
    groups: list[str], sizes: dict[str, int], fractions: dict[str, float], rng: random.Random
) -> dict[str, str]:
    """Give each group a split so that row counts follow ``fractions``.

    Groups are shuffled (seeded), then each positive-fraction split first receives one group when
    there are enough groups (so a small stratum still reaches val and test), then every further group
    goes to the split furthest below its target row count.
    """
    order = sorted(groups)
    rng.shuffle(order)
    names = [s for s in SPLITS if fractions.get(s, 0) > 0]
    assigned = {s: 0 for s in names}
    out: dict[str, str] = {}
    total = 0
    start = 0
    if len(order) >= len(names):
        # Smallest fraction first, so with few groups the largest split is the one left short.
        for s in sorted(names, key=lambda n: (fractions[n], SPLITS.index(n))):
            g = order[start]
            out[g] = s
            assigned[s] += sizes[g]
            total += sizes[g]
            start += 1
    for g in order[start:]:
        total += sizes[g]
        best = max(names, key=lambda n: (fractions[n] * total - assigned[n], -SPLITS.index(n)))
        out[g] = best
        assigned[best] += sizes[g]
    return out


def _split_groups(
    rows: Sequence[ManifestRow], fractions: dict[str, float], cfg: SplitConfig
) -> dict[str, str]:
    sizes: dict[str, int] = defaultdict(int)
    labels: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        sizes[r.group] += 1
        labels[r.group].add(r.label)
    strata: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for g, labs in labels.items():
        strata[tuple(sorted(labs)) if cfg.stratify else ()].append(g)
    out: dict[str, str] = {}
    for key in sorted(strata):
        # One generator per stratum, seeded from the stratum, so adding a class does not reshuffle the other.
        rng = random.Random(f"{cfg.seed}:{key}")
        out.update(_assign_groups(strata[key], sizes, fractions, rng))
    return out


def split_by_group(
    rows: Sequence[ManifestRow], cfg: SplitConfig | None = None
) -> dict[str, list[ManifestRow]]:
    """Split rows into ``train`` / ``val`` / ``test`` by group, deterministically for a given seed.

    - Rows that already carry a ``split`` (an official benchmark split) keep it; rows of the same
      group without one follow it (the group's most common split). An official protocol that puts a
      group on several sides is kept as published; :func:`groups_on_several_sides` reports it.
    - The other groups are split by ``cfg`` fractions of rows (default 70/15/15), separately for
      real-only, fake-only and mixed groups when ``cfg.stratify``, so each split gets both classes
      when there are enough groups.
    - If the preset splits include train but no val and ``cfg.carve_val``, val/(train+val) of the
      train groups become val (model selection needs a validation split; test is never used for it).

    Returned rows are copies with ``split`` filled in; a group this function assigns never appears on
    two sides.
    """
    cfg = cfg or SplitConfig()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        if r.split:
            counts[r.group][r.split] += 1
    # A group an official protocol puts on several sides keeps each row's own split; its rows without
    # one follow the group's most common split (ties: train, val, test).
    preset = {g: max(SPLITS, key=lambda s, c=c: (c[s], -SPLITS.index(s))) for g, c in counts.items()}
    free = [r for r in rows if r.group not in preset]
    group_split = dict(preset)
    if free:
        fractions = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
        group_split.update(_split_groups(free, fractions, cfg))
    preset_splits = {s for c in counts.values() for s in c}
    if cfg.carve_val and "train" in preset_splits and "val" not in preset_splits and cfg.val > 0:
        train_rows = [r for r in rows if r.group in preset and set(counts[r.group]) == {"train"}]
        share = cfg.val / (cfg.train + cfg.val) if cfg.train + cfg.val > 0 else 0.0
        carved = _split_groups(train_rows, {"train": 1 - share, "val": share}, cfg)
        group_split.update(carved)
    out: dict[str, list[ManifestRow]] = {s: [] for s in SPLITS}
    for r in rows:
        s = r.split if r.split and len(counts[r.group]) > 1 else group_split[r.group]
        out[s].append(replace(r, split=s))
    return out


def groups_on_several_sides(splits: dict[str, Sequence[ManifestRow]]) -> set[str]:
    """Groups found in more than one split (empty for any output of :func:`split_by_group`)."""
    seen: dict[str, str] = {}
    bad: set[str] = set()
    for name, rows in splits.items():
        for r in rows:
            if seen.setdefault(r.group, name) != name:
                bad.add(r.group)
    return bad
