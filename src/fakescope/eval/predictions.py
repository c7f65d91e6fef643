"""Streamed predictions: one CSV row per scored frame (docs/CONTRACTS.md "Predictions"), written as
scoring goes so memory does not grow with the dataset, and read back into metrics.

Columns: ``path,label,score,group,video,dataset,method,perturbation``. ``video`` holds the full video
identity (``ManifestRow.video_id``) that video-level metrics group by; ``perturbation`` is empty for
clean inputs and names the robustness setting otherwise (e.g. ``jpeg_q50``).

The writer appends to ``<file>.partial`` and renames it to ``<file>`` on :meth:`PredictionWriter.close`,
so a finished file is always complete. An interrupted run leaves the ``.partial`` behind; a writer
opened with ``resume=True`` cuts it back to its last complete line, reports what is already scored
(:meth:`PredictionWriter.done`) and appends the rest.
"""

from __future__ import annotations

import csv
import math
import os
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np

from fakescope.data.manifest import LABEL_NAMES, ManifestRow, parse_label
from fakescope.errors import InputError
from fakescope.eval.metrics import ThresholdRule, choose_thresholds, compute_metrics
from fakescope.utils.paths import not_a_file_reason
from fakescope.utils.text import PATH_CSV_ERRORS

PREDICTION_COLUMNS = ("path", "label", "score", "group", "video", "dataset", "method", "perturbation")
CLEAN = ("", "none", "clean")


@dataclass
class Prediction:
    path: str
    label: int
    score: float
    group: str = ""
    video: str = ""
    dataset: str = ""
    method: str = ""
    perturbation: str = ""

    @property
    def video_key(self) -> str:
        """The video a frame belongs to; a frame without one is its own video."""
        return self.video or self.path


def _partial_of(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _cut_to_last_line(path: Path) -> None:
    """Drop a half-written last line (a crash mid-write) so appending stays valid CSV."""
    with open(path, "rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        pos = size
        while pos > 0:
            step = min(4096, pos)
            fh.seek(pos - step)
            chunk = fh.read(step)
            i = chunk.rfind(b"\n")
            if i >= 0:
                fh.truncate(pos - step + i + 1)
                return
            pos -= step
        fh.truncate(0)


class PredictionWriter:
    """Append-only CSV writer of per-frame predictions; flushes every ``flush_every`` rows."""

    def __init__(self, path: str | os.PathLike[str], resume: bool = False, flush_every: int = 256) -> None:
        self.path = Path(path)
        self.partial = _partial_of(self.path)
        self.flush_every = max(1, flush_every)
        self._pending = 0
        self._done: set[tuple[str, str]] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and not self.partial.exists() and self.path.exists():
            # A finished file can be extended (e.g. more perturbations): reopen it as the partial.
            os.replace(self.path, self.partial)
        if resume and self.partial.exists():
            _cut_to_last_line(self.partial)
        if resume and self.partial.exists() and self.partial.stat().st_size > 0:
            self._done = {(p.path, p.perturbation) for p in iter_predictions(self.partial, allow_empty=True)}
            self._fh = open(self.partial, "a", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS)  # noqa: SIM115 - closed in close()
            self._writer = csv.writer(self._fh)
        else:
            self._fh = open(self.partial, "w", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS)  # noqa: SIM115 - closed in close()
            self._writer = csv.writer(self._fh)
            self._writer.writerow(PREDICTION_COLUMNS)
        self.rows_written = 0

    def done(self) -> set[tuple[str, str]]:
        """``(path, perturbation)`` pairs already in the file (non-empty only when resuming)."""
        return set(self._done)

    def write(
        self,
        path: str,
        label: int,
        score: float,
        *,
        group: str = "",
        video: str = "",
        dataset: str = "",
        method: str = "",
        perturbation: str = "",
    ) -> None:
        if label not in LABEL_NAMES:
            raise InputError(f"{path}: label must be 0 or 1 (got {label!r})")
        score = float(score)
        if not math.isfinite(score):
            raise InputError(f"{path}: score is {score}")
        self._writer.writerow(
            [path, LABEL_NAMES[label], repr(score), group, video, dataset, method, perturbation]
        )
        self._done.add((path, perturbation))
        self.rows_written += 1
        self._pending += 1
        if self._pending >= self.flush_every:
            self.flush()

    def write_row(self, row: ManifestRow, score: float, perturbation: str = "") -> None:
        """One scored manifest row, with its full video identity."""
        self.write(
            row.path,
            row.label,
            score,
            group=row.group,
            video=row.video_id,
            dataset=row.dataset,
            method=row.method,
            perturbation=perturbation,
        )

    def write_many(
        self, rows: Sequence[ManifestRow], scores: Iterable[float], perturbation: str = ""
    ) -> None:
        scores = list(scores)
        if len(scores) != len(rows):
            raise InputError(f"{len(rows)} rows but {len(scores)} scores")
        for row, s in zip(rows, scores, strict=True):
            self.write_row(row, s, perturbation)

    def flush(self) -> None:
        self._fh.flush()
        self._pending = 0

    def close(self) -> Path:
        """Flush, sync and rename the partial file to its final name."""
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        """Stop without finalising: the ``.partial`` stays for a later ``resume=True``."""
        if not self._fh.closed:
            self._fh.flush()
            self._fh.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def iter_predictions(path: str | os.PathLike[str], allow_empty: bool = False) -> Iterator[Prediction]:
    """Stream a predictions CSV row by row; a bad row raises ``InputError`` naming file and line."""
    for _line, pred in _iter_numbered(path, allow_empty):
        yield pred


def _iter_numbered(
    path: str | os.PathLike[str], allow_empty: bool = False
) -> Iterator[tuple[int, Prediction]]:
    """``(line number, prediction)`` per row. The file is UTF-8 (a BOM, Excel's default, is accepted;
    other bytes, e.g. a latin-1 path, are kept as the file-name bytes they are); a binary file and an
    over-long field are one ``InputError`` naming the file."""
    path = Path(path)
    reason = not_a_file_reason(path)
    if reason is not None:  # a FIFO or a folder is named as such, not "not found"
        raise InputError(f"{path}: {'predictions file not found' if reason == 'no such file' else reason}")
    with open(path, "rb") as fh:
        if b"\x00" in fh.read(1 << 16):
            raise InputError(f"{path}: a binary file, not a predictions CSV (it holds NUL bytes)")
    line_no = 1
    try:
        # surrogateescape: paths that are not UTF-8 (file names are bytes) come back exactly as written
        with open(path, newline="", encoding="utf-8-sig", errors=PATH_CSV_ERRORS) as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in ("path", "label", "score") if c not in header]
            if missing:
                raise InputError(
                    f"{path}: missing column(s) {', '.join(missing)} (need {','.join(PREDICTION_COLUMNS)})"
                )
            n = 0
            for rec in reader:
                line_no = reader.line_num
                n += 1
                yield line_no, _parse_row(path, line_no, rec)
    except csv.Error as err:
        raise InputError(f"{path}: line {line_no + 1}: not a readable CSV row ({err})") from None
    if n == 0 and not allow_empty:
        raise InputError(f"{path}: no predictions")


def _parse_row(path: Path, line_no: int, rec: dict[str, str | None]) -> Prediction:
    label = parse_label(rec.get("label") or "")
    if label is None:
        raise InputError(f"{path}: line {line_no}: unknown label {rec.get('label')!r}")
    try:
        score = float(rec["score"])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{path}: line {line_no}: score {rec.get('score')!r} is not a number") from None
    if not math.isfinite(score):
        raise InputError(f"{path}: line {line_no}: score is {score}")
    if not 0.0 <= score <= 1.0:
        raise InputError(
            f"{path}: line {line_no}: score {score} is outside [0, 1] (scores are P(fake), not logits)"
        )
    return Prediction(
        path=rec["path"] or "",
        label=label,
        score=score,
        group=rec.get("group") or "",
        video=rec.get("video") or "",
        dataset=rec.get("dataset") or "",
        method=rec.get("method") or "",
        perturbation=rec.get("perturbation") or "",
    )


@dataclass
class _Columns:
    """Only what the metrics need, per frame: label, score, an integer video code, its (dataset,
    perturbation) part, and for finding repeated rows a hash of its identity and one of the whole row
    with the line it came from (8 bytes each: paths are not kept)."""

    labels: array = field(default_factory=lambda: array("b"))
    scores: array = field(default_factory=lambda: array("d"))
    videos: array = field(default_factory=lambda: array("q"))
    parts: array = field(default_factory=lambda: array("q"))
    keys: array = field(default_factory=lambda: array("q"))
    rows: array = field(default_factory=lambda: array("q"))
    lines: array = field(default_factory=lambda: array("q"))


def _repeated_rows(path: str | os.PathLike[str], col: _Columns, notes: list[str] | None) -> np.ndarray:
    """A mask of the rows to drop: each later copy of an image already scored (same path, dataset and
    perturbation). A copy that repeats the earlier row exactly (a file concatenated twice, a resumed
    run appended again) is dropped, with one note giving the count; a copy with another score or label
    refuses the file, as no one can tell which score is the image's."""
    keys = np.frombuffer(col.keys, dtype=np.int64)
    drop = np.zeros(keys.size, dtype=bool)
    if keys.size < 2:
        return drop
    order = np.argsort(keys, kind="stable")  # stable: the copies of a key stay in file order
    ks = keys[order]
    repeat = np.concatenate([[False], ks[1:] == ks[:-1]])
    if not repeat.any():
        return drop
    pos = np.arange(keys.size)
    first = order[np.maximum.accumulate(np.where(repeat, 0, pos))]  # each row's first copy
    later, first = order[repeat], first[repeat]
    lines = np.frombuffer(col.lines, dtype=np.int64)
    rows = np.frombuffer(col.rows, dtype=np.int64)
    differ = rows[later] != rows[first]
    if differ.any():
        k = int(np.flatnonzero(differ)[np.argmin(lines[later][differ])])
        raise InputError(
            f"{path}: line {lines[later][k]}: the image of line {lines[first][k]} again, with another score or "
            "label; one row per image (path, dataset and perturbation), so it is not clear which one counts"
        )
    drop[later] = True
    if notes is not None:
        k = int(np.argmin(lines[later]))
        notes.append(
            f"{path}: dropped {later.size} repeated row(s), each the same image, label and score as an "
            f"earlier row (first: line {lines[later][k]} repeats line {lines[first][k]})"
        )
    return drop


def load_prediction_columns(
    path: str | os.PathLike[str], clean_only: bool = False, notes: list[str] | None = None
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{(dataset, perturbation): (labels, scores, video_codes)}`` from a predictions CSV.

    Paths and other text columns are not kept: video ids become integer codes, so memory is a few
    bytes per frame plus one entry per distinct video. A row that repeats an earlier one exactly is
    counted once (``notes`` gets one line saying how many were dropped); an image scored twice with
    different scores refuses the file (:func:`_repeated_rows`).
    """
    codes: dict[str, int] = {}
    first_seen: dict[str, tuple[int, int]] = {}  # video key -> (label, line)
    part_codes: dict[tuple[str, str], int] = {}
    col = _Columns()
    for line_no, p in _iter_numbered(path):
        if clean_only and p.perturbation not in CLEAN:
            continue
        vkey = f"{p.perturbation}\x00{p.video_key}"
        label0, line0 = first_seen.setdefault(vkey, (p.label, line_no))
        if label0 != p.label:
            raise InputError(
                f"{path}: line {line_no}: video {p.video_key!r} has a {LABEL_NAMES[p.label]} frame here but a "
                f"{LABEL_NAMES[label0]} one at line {line0}; the video column must name the full video "
                "(e.g. dataset/method/video), one label per video"
            )
        col.labels.append(p.label)
        col.scores.append(p.score)
        # Perturbed copies of a video are separate videos at video level.
        col.videos.append(codes.setdefault(vkey, len(codes)))
        col.parts.append(part_codes.setdefault((p.dataset, p.perturbation), len(part_codes)))
        # a row without a path names no image: it cannot repeat another
        image = (p.path, p.dataset, p.perturbation) if p.path else ("", "line", str(line_no))
        col.keys.append(hash(image))
        col.rows.append(hash((image, p.label, p.score, p.video)))
        col.lines.append(line_no)
    if not part_codes:
        raise InputError(f"{path}: no clean (unperturbed) predictions")
    keep = ~_repeated_rows(path, col, notes)
    parts = np.frombuffer(col.parts, dtype=np.int64)
    labels = np.frombuffer(col.labels, dtype=np.int8).astype(np.int64)
    scores = np.frombuffer(col.scores, dtype=np.float64)
    videos = np.frombuffer(col.videos, dtype=np.int64)
    out = {}
    for key, code in part_codes.items():
        rows = keep & (parts == code)
        out[key] = (labels[rows], scores[rows].copy(), videos[rows].copy())
    return out


def thresholds_from_predictions(
    path: str | os.PathLike[str], rule: ThresholdRule = "eer", notes: list[str] | None = None
) -> dict[str, float]:
    """Frame- and video-level thresholds chosen on validation predictions (clean rows, all datasets pooled)."""
    cols = load_prediction_columns(path, clean_only=True, notes=notes)
    y = np.concatenate([c[0] for c in cols.values()])
    s = np.concatenate([c[1] for c in cols.values()])
    v = np.concatenate([c[2] for c in cols.values()])
    if not (0 < y.sum() < y.size):
        raise InputError(f"{path}: validation predictions need both real and fake rows to choose a threshold")
    return choose_thresholds(y, s, v, rule)


def metrics_from_predictions(
    path: str | os.PathLike[str],
    threshold: float | dict[str, float] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    notes: list[str] | None = None,
) -> list[dict[str, object]]:
    """One result record per (dataset, perturbation, level), clean results first (``notes``: see
    :func:`load_prediction_columns`)."""
    cols = load_prediction_columns(path, notes=notes)
    keys = sorted(cols, key=lambda k: (k[1] not in CLEAN, k[0], k[1]))
    out: list[dict[str, object]] = []
    for key in keys:
        y, s, v = cols[key]
        m = compute_metrics(y, s, v, threshold=threshold, bootstrap=bootstrap, seed=seed)
        for level, values in m.items():
            out.append({"dataset": key[0], "perturbation": key[1], "level": level, **values})
    return out


def image_key(path: str) -> str:
    """The name runs are paired on: an image's last two path parts (``real/abc.jpg``), so that runs
    scored from different copies of a data set still pair."""
    return "/".join(Path(path).parts[-2:])


def clean_by_image(path: str | os.PathLike[str]) -> dict[str, Prediction]:
    """A predictions file's clean rows keyed on :func:`image_key`."""
    return {image_key(p.path): p for p in iter_predictions(path) if p.perturbation in CLEAN}


def paired_clean_scores(
    path_a: str | os.PathLike[str], path_b: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Two runs' clean predictions of the same images, for a paired comparison
    (:func:`fakescope.eval.metrics.paired_bootstrap_auc_difference`): ``(labels, scores_a, scores_b,
    groups)`` in one order. Rows are matched on :func:`image_key`. Raises ``InputError`` when an image is
    scored by one run only or the two files disagree on a label."""

    a, b = clean_by_image(path_a), clean_by_image(path_b)
    only = sorted(set(a) ^ set(b))
    if only:
        raise InputError(
            f"{len(only)} image(s) are scored by one run only (first: {only[0]}): compare runs scored on the "
            "same images"
        )
    keys = sorted(a)
    if any(a[k].label != b[k].label for k in keys):
        raise InputError(f"{path_a} and {path_b} disagree on labels: not the same data")
    return (
        np.array([a[k].label for k in keys], dtype=np.int64),
        np.array([a[k].score for k in keys], dtype=np.float64),
        np.array([b[k].score for k in keys], dtype=np.float64),
        [a[k].group for k in keys],
    )
