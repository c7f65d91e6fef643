"""Result records → a Markdown table, JSON and CSV (the run directory's ``metrics/*.{md,json,csv}``).

A record is a flat dict: ``dataset``, ``perturbation``, ``level`` (frame | video) and the metrics of
:func:`fakescope.eval.metrics.level_metrics`. Missing values (NaN, e.g. AUC with one class) are
written as ``null`` in JSON, empty in CSV and ``n/a`` in Markdown.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fakescope.utils.atomic import atomic_write_json, atomic_write_text

KEY_COLUMNS = ("dataset", "perturbation", "level")
METRIC_COLUMNS = (
    "n",
    "n_real",
    "n_fake",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "bootstrap",
    "ap",
    "eer",
    "eer_threshold",
    "acc_0.5",
    "threshold",
    "acc_threshold",
)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: Any, digits: int = 4) -> str:
    value = _clean(value)
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(records: Sequence[Mapping[str, Any]]) -> str:
    """One row per record: AUC with its 95% interval, AP, EER, accuracy at 0.5 and at the threshold."""
    header = [
        "dataset",
        "perturbation",
        "level",
        "n (real/fake)",
        "AUC [95% CI]",
        "AP",
        "EER",
        "Acc@0.5",
        "Acc@thr (thr)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for r in records:
        ci = ""
        if _clean(r.get("auc_ci_low")) is not None:
            ci = f" [{_fmt(r['auc_ci_low'])}, {_fmt(r['auc_ci_high'])}]"
        thr = (
            "n/a"
            if r.get("threshold") is None
            else f"{_fmt(r.get('acc_threshold'))} ({_fmt(r['threshold'], 3)})"
        )
        cells = [
            str(r.get("dataset") or "-"),
            str(r.get("perturbation") or "none"),
            str(r.get("level", "")),
            f"{r.get('n', 0)} ({r.get('n_real', 0)}/{r.get('n_fake', 0)})",
            _fmt(r.get("auc")) + ci,
            _fmt(r.get("ap")),
            _fmt(r.get("eer")),
            _fmt(r.get("acc_0.5")),
            thr,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def records_csv(records: Sequence[Mapping[str, Any]]) -> str:
    extra = sorted({k for r in records for k in r} - set(KEY_COLUMNS) - set(METRIC_COLUMNS))
    columns = [*KEY_COLUMNS, *METRIC_COLUMNS, *extra]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        writer.writerow(["" if _clean(r.get(c)) is None else _clean(r.get(c)) for c in columns])
    return buf.getvalue()


def write_report(
    records: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    stem: str = "metrics",
    meta: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> dict[str, Path]:
    """Write ``<stem>.md``, ``<stem>.json`` and ``<stem>.csv`` atomically; returns their paths."""
    out = Path(out_dir)
    paths = {"md": out / f"{stem}.md", "json": out / f"{stem}.json", "csv": out / f"{stem}.csv"}
    md = (f"# {title}\n\n" if title else "") + markdown_table(records)
    if meta:
        md += "\n" + "\n".join(f"- {k}: {v}" for k, v in meta.items()) + "\n"
    atomic_write_text(paths["md"], md)
    atomic_write_json(
        paths["json"],
        {"meta": dict(meta or {}), "results": [{k: _clean(v) for k, v in r.items()} for r in records]},
    )
    atomic_write_text(paths["csv"], records_csv(records))
    return paths
