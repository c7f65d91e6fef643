"""``evaluate --run --shard K/N`` and ``fakescope merge`` (docs/scale.md): what a shard scores, what
its done-marker records, and the merge that turns finished shards into the predictions, metrics and
plots one process writes.

Every shard chooses the same rows (split, leakage guard, cap), then scores only the batches
``K, K + N, ...`` of each dataset into ``out_dir/shards/K-of-N/``, with its scores at full precision in
its done-marker; no metric is computed on a shard. :func:`merge_evaluate` computes them once on the
merged scores."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.data.manifest import ManifestRow
from fakescope.eval.scoring import (
    EXCLUDED_COUNTS,
    PREDICTION_FIELDS,
    RunPredictions,
    prediction_row,
    row_fields,
    set_metrics,
)
from fakescope.rows.splits import check_two_classes
from fakescope.utils.atomic import atomic_open, atomic_write_text
from fakescope.utils.sharding import Shard, begin_shard, fingerprint, finish_shard, read_shards
from fakescope.utils.text import PATH_CSV_ERRORS

__all__ = ["ShardOutput", "merge_evaluate", "shard_by_batch"]


def shard_by_batch(n_rows: int, batch_size: int, shard: Shard) -> list[int]:
    """Indices of the batches ``K, K + N, ...`` of the rows (batches of ``eval.batch_size`` in row
    order). A shard's loader then forms exactly the batches one process forms: a network's output for
    an image can change in its last bits with the other images of its batch (the convolution kernels
    chosen depend on the batch), so other batches would not give the same scores. A video's frames
    may land in two shards; its video score is the mean computed at the merge over all of them."""
    blocks = range(shard.index * batch_size, n_rows, shard.count * batch_size)
    return [i for start in blocks for i in range(start, min(start + batch_size, n_rows))]


class ShardOutput:
    """Where one shard's scores go: its predictions CSVs and embeddings under ``shards/K-of-N/``, and
    per set, the rows and full-precision scores the merge needs, in the done-marker."""

    def __init__(self, out: Path, shard: Shard) -> None:
        self.out, self.shard = out, shard
        self.folder = shard.folder(out)  # created by start(), once every set is accepted
        self.sets: list[dict[str, Any]] = []

    def pick(self, rows: Sequence[ManifestRow], batch_size: int, name: str, part: str) -> list[int]:
        """This shard's rows; the two classes are checked on the rows every shard chose (a shard's
        share may hold one)."""
        check_two_classes(rows, name, part)
        return shard_by_batch(len(rows), batch_size, self.shard)

    def accept(self, rows: Sequence[ManifestRow], name: str, part: str) -> None:
        """Nothing to check here: :func:`merge_evaluate` checks the merged rows."""

    def start(self) -> None:
        """The shard's folder, and no done-marker of an earlier attempt
        (:func:`~fakescope.utils.sharding.begin_shard`): written only once every set is accepted, so a
        refused shard leaves nothing behind."""
        begin_shard(self.out, self.shard)

    def begin_set(
        self, info: dict[str, Any], every: Sequence[ManifestRow], mine: list[int], rows: Sequence[ManifestRow]
    ) -> None:
        kept = {r.path for r in rows}
        rows_out = [[i, *row_fields(every[i], info["dataset"])] for i in mine if every[i].path in kept]
        self.sets.append({**info, "items": mine, "rows": rows_out, "scores": {}})

    def add(self, pred: RunPredictions) -> None:
        # Full precision (the CSV keeps 6 digits): the merge computes exactly the metrics one process computes.
        self.sets[-1]["scores"][pred.perturbation] = pred.scores.tolist()
        if pred.features is not None:
            with atomic_open(self.folder / "features" / f"{len(self.sets) - 1}.npy", "wb") as fh:
                np.save(fh, pred.features, allow_pickle=False)

    def finish(self) -> dict[str, Any]:
        """The done-marker, written last; returns the shard's counts."""
        sets = self.sets
        offsets = np.cumsum([0, *(s["total"] for s in sets)]).tolist()
        items = [offsets[k] + i for k, s in enumerate(sets) for i in s["items"]]
        keys = [f"{s['run']}|{s['dataset']}|{s['paths']}|{','.join(s['perturbations'])}" for s in sets]
        finish_shard(self.out, self.shard, "evaluate", total=offsets[-1], items=items, print_=fingerprint(keys),
                     payload={"sets": sets})  # fmt: skip
        return {"shard": self.shard.name, "sets": [{"run": s["run"], "dataset": s["dataset"],
                "n_images": len(s["rows"]), **{k: s[k] for k in EXCLUDED_COUNTS}} for s in sets]}  # fmt: skip


def merge_evaluate(out_dir: str | os.PathLike[str], count: int | None = None) -> dict[str, Any]:
    """Predictions, metrics and plots of a sharded ``evaluate --run`` from its finished shards: the
    predictions in the order one process writes them, and every metric (AUC, bootstrap interval,
    thresholded accuracy) computed once on the merged scores, never averaged over shards. Raises
    :class:`InputError` naming a missing or unfinished shard."""
    from fakescope.eval import plots as plot_mod
    from fakescope.eval.robustness import write_tables

    out = Path(out_dir)
    markers = read_shards(out, count, "evaluate")
    results: list[RunPredictions] = []
    for k, info in enumerate(markers[0]["payload"]["sets"]):
        parts = [(m["index"], m["payload"]["sets"][k]) for m in markers]
        # Row indices in the list every shard chose: sorting them gives one process's order.
        rows = {r[0]: r[1:] for _, p in parts for r in p["rows"]}
        merged = [rows[i] for i in sorted(rows)]
        check_two_classes([ManifestRow(f[0], f[1], f[2]) for f in merged], info["dataset"], info["split"])
        excluded = {k: sum(p.get(k, 0) for _, p in parts) for k in EXCLUDED_COUNTS}
        feats = _merged_features(out, markers, k, parts) if info["plots"] else None
        for pert in info["perturbations"]:
            by_index = {
                r[0]: sc for _, p in parts for r, sc in zip(p["rows"], p["scores"][pert], strict=True)
            }
            scores = np.asarray([by_index[i] for i in sorted(by_index)], dtype=np.float64)
            suffix = "" if pert == "clean" else f"__{pert}"
            with atomic_open(out / "predictions" / f"{info['run']}__{info['dataset']}{suffix}.csv", "w",
                             newline="", encoding="utf-8", errors=PATH_CSV_ERRORS) as fh:  # fmt: skip
                writer = csv.DictWriter(fh, fieldnames=PREDICTION_FIELDS)
                writer.writeheader()
                for fields, score in zip(merged, scores, strict=True):
                    writer.writerow(prediction_row(fields, float(score), pert))
            _merge_fit_logs(out, markers, parts, f"{info['run']}__{info['dataset']}{suffix}.inr_fits.csv")
            pred = RunPredictions(
                run=info["run"], dataset=info["dataset"], perturbation=pert,
                labels=np.asarray([f[1] for f in merged], dtype=np.int64), scores=scores,
                videos=[f[3] for f in merged], features=feats if pert == "clean" else None,
            )  # fmt: skip
            set_metrics(pred, info, len(merged), excluded)
            results.append(pred)
    summary = write_tables(results, out / "metrics")
    if any(r.features is not None for r in results):
        plot_mod.plot_all(results, out / "plots", perplexity=None)
    return summary


def _merge_fit_logs(
    out: Path, markers: Sequence[dict[str, Any]], parts: Sequence[tuple[int, dict[str, Any]]], name: str
) -> None:
    """INFER-family runs: the shards' per-image INR fit logs as one, in merged row order."""
    lines: list[tuple[int, str]] = []
    header = None
    for m, (_, p) in zip(markers, parts, strict=True):
        path = out / "shards" / f"{m['index']}-of-{m['count']}" / "predictions" / name
        if not p["rows"]:
            continue
        if not path.is_file():
            return  # a detector without heatmaps writes none
        header, *body = path.read_text(encoding="utf-8", errors=PATH_CSV_ERRORS).splitlines()
        lines += zip((r[0] for r in p["rows"]), body, strict=True)
    if header is not None:
        text = "\n".join([header, *(line for _, line in sorted(lines))]) + "\n"
        atomic_write_text(out / "predictions" / name, text)


def _merged_features(
    out: Path, markers: Sequence[dict[str, Any]], k: int, parts: Sequence[tuple[int, dict[str, Any]]]
) -> np.ndarray | None:
    """The shards' clean-image embeddings of set ``k``, in merged row order (for the t-SNE plot)."""
    chunks, index = [], []
    for m, (_, p) in zip(markers, parts, strict=True):
        path = out / "shards" / f"{m['index']}-of-{m['count']}" / "features" / f"{k}.npy"
        if p["rows"]:
            if not path.is_file():
                return None
            chunks.append(np.load(path, allow_pickle=False))
            index += [r[0] for r in p["rows"]]
    if not chunks:
        return None
    return np.concatenate(chunks)[np.argsort(index, kind="stable")]
