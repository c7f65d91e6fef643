"""Fitting every image of a manifest into the shared heatmap cache (`fakescope fit-inr`).

docs/design.md, "Scale", and docs/scale.md: a sharded run (``torchrun`` ranks, or ``--shard K/N``) takes rows
``K, K + N, ...`` of the manifest and fills the same content-addressed cache; a rerun refits nothing.
One process writes ``records.csv`` (one row per image) and ``summary.json``; a shard writes them to
``shards/K-of-N/`` with its done-marker, and :func:`merge_fit` writes the one ``records.csv`` and
``summary.json`` (computed on every shard's fit records, in manifest order).
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fakescope.data.images import DEFAULT_MAX_PIXELS, load_image_rgb
from fakescope.data.manifest import ManifestRow
from fakescope.errors import InputError
from fakescope.inr.cache import HeatmapCache, InrResult, config_key
from fakescope.inr.config import InrConfig
from fakescope.inr.engine import choose_path, iter_results, n_workers, resize_for_inr
from fakescope.inr.figures import FigureRow, save_fig3
from fakescope.inr.fitting import FitRecord
from fakescope.utils.atomic import atomic_write_json, atomic_write_text
from fakescope.utils.sharding import SINGLE, Shard, begin_shard, fingerprint, finish_shard, read_shards

__all__ = ["fit_manifest", "merge_fit", "summarise"]


def _mean(xs: list[float]) -> float | None:
    finite = [x for x in xs if math.isfinite(x)]
    return float(statistics.fmean(finite)) if finite else None


def summarise(rows: Sequence[ManifestRow], results: Sequence[InrResult], cfg: InrConfig) -> dict:
    """Counts, mean PSNR, share reaching the target, steps; overall and per label."""

    def block(idx: list[int]) -> dict:
        recs = [results[i].record for i in idx]
        steps = [r.steps for r in recs]
        return {
            "n": len(recs),
            "mean_psnr": _mean([r.final_psnr for r in recs]),
            "min_psnr": min((r.final_psnr for r in recs), default=None),
            "share_reached": (sum(r.reached for r in recs) / len(recs)) if recs else None,
            "n_not_reached": sum(not r.reached for r in recs),
            "mean_steps": float(statistics.fmean(steps)) if steps else None,
            "median_steps": float(statistics.median(steps)) if steps else None,
            "max_steps_taken": max(steps, default=None),
        }

    out = block(list(range(len(results))))
    out["by_label"] = {
        name: block([i for i, r in enumerate(rows) if r.label == lab])
        for lab, name in ((0, "real"), (1, "fake"))
    }
    out["target_psnr"] = cfg.target_psnr
    return out


def _records_csv(rows: Sequence[ManifestRow], results: Sequence[InrResult]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "label", "group", "steps", "bf16_steps", "final_psnr", "reached", "cached"])
    for row, res in zip(rows, results, strict=True):
        rec = res.record
        w.writerow([row.path, row.label_name, row.group, rec.steps, rec.bf16_steps, f"{rec.final_psnr:.3f}",
                    int(rec.reached), int(rec.cached)])  # fmt: skip
    return buf.getvalue()


def _figure_pairs(rows: Sequence[ManifestRow], n: int) -> list[tuple[int, int]]:
    """Up to n (real, fake) index pairs, preferring a fake made from the real of the same group
    (DFDC's fakes are swaps of their group's real video), in manifest order."""
    reals: dict[str, int] = {}
    fakes: dict[str, int] = {}
    for i, r in enumerate(rows):
        (reals if r.label == 0 else fakes).setdefault(r.group, i)
    pairs = [(reals[g], fakes[g]) for g in reals if g in fakes]
    used = {i for p in pairs for i in p}
    rest_r = [i for i, r in enumerate(rows) if r.label == 0 and i not in used]
    rest_f = [i for i, r in enumerate(rows) if r.label == 1 and i not in used]
    pairs += list(zip(rest_r, rest_f, strict=False))
    return pairs[:n]


def fit_manifest(
    rows: Sequence[ManifestRow],
    cfg: InrConfig,
    out_dir: str | os.PathLike[str],
    device: torch.device | str = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    figures: int = 0,
    shard: Shard = SINGLE,
    progress: bool = True,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
    background: str = "black",
    indices: Sequence[int] | None = None,
    n_skipped: int = 0,
) -> dict:
    """Fit (or fetch from the cache) this shard's rows; write records, summary and figures.

    ``rows`` is the whole manifest; ``indices`` the rows to fit (default: the shard's share,
    ``shard.take(len(rows))``; the caller may leave out unreadable ones and count them in
    ``n_skipped``). Returns the summary dict that is also written as JSON: to ``out_dir`` for one
    process, to ``out_dir/shards/K-of-N/`` for a shard, which then writes its done-marker last.
    """
    device = torch.device(device)
    out = Path(out_dir)
    assigned = shard.take(len(rows))
    indices = list(assigned if indices is None else indices)
    mine = [rows[i] for i in indices]
    folder = begin_shard(out, shard) if shard.enabled else out
    folder.mkdir(parents=True, exist_ok=True)
    done, summary = _fit_rows(mine, cfg, device, cache_dir, progress, max_image_pixels, background)
    summary["n_skipped"] = n_skipped
    summary["shard"] = {"index": shard.index, "count": shard.count, "launcher": shard.launcher}
    atomic_write_text(folder / "records.csv", _records_csv(mine, done))
    atomic_write_json(folder / "summary.json", summary)
    if figures > 0:
        _write_figures(mine, done, cfg, out / "figures", figures, shard.index, max_image_pixels, background)
    if shard.enabled:
        finish_shard(
            out, shard, "fit-inr", total=len(rows), items=assigned,
            print_=fingerprint([config_key(cfg), *(r.path for r in rows)]),
            payload={
                "rows": [{"index": i, "path": r.path, "label": r.label, "group": r.group, "record": d.record.to_dict()}
                         for i, r, d in zip(indices, mine, done, strict=True)],
                "summary": summary, "inr": cfg.model_dump(mode="json"),
            },
        )  # fmt: skip
    return summary


def _fit_rows(
    rows: Sequence[ManifestRow],
    cfg: InrConfig,
    device: torch.device,
    cache_dir: str | os.PathLike[str] | None,
    progress: bool,
    max_image_pixels: int,
    background: str,
) -> tuple[list[InrResult], dict]:
    cache = HeatmapCache(cache_dir if cache_dir is not None else cfg.cache_dir, cfg)

    # A generator: iter_results keeps only each image's copy shrunk to cfg.resolution, so memory does not
    # grow with the number (or the size) of the images.
    images = (
        load_image_rgb(r.path, max_pixels=max_image_pixels, background=background)  # type: ignore[arg-type]
        for r in rows
    )
    results: list[InrResult | None] = [None] * len(rows)
    start = time.perf_counter()
    fitted = 0
    psnrs: list[float] = []
    n_reached = 0
    bar = tqdm(total=len(rows), desc=f"fit-inr {cfg.resolution}px", unit="img", disable=not progress,
               smoothing=0.1)  # fmt: skip
    with bar:
        for i, res in iter_results(images, cfg, device, cache, names=[r.path for r in rows]):
            results[i] = res
            fitted += not res.record.cached
            psnrs.append(res.record.final_psnr)
            n_reached += res.record.reached
            bar.update(1)
            bar.set_postfix(psnr=f"{_mean(psnrs) or 0:.2f}", reached=f"{n_reached / len(psnrs):.0%}",
                            fitted=fitted, refresh=False)  # fmt: skip
    wall = time.perf_counter() - start
    done: list[InrResult] = results  # type: ignore[assignment]
    summary = summarise(rows, done, cfg)
    path = choose_path(cfg, device)
    summary.update(
        {
            "n_fitted": fitted,
            "n_cached": len(rows) - fitted,
            "wall_seconds": wall,
            "fitted_images_per_second": fitted / wall if fitted and wall > 0 else None,
            "device": str(device),
            "path": path,
            "workers": n_workers(cfg) if path == "workers" else 1,
            "resolution": cfg.resolution,
            "cache_dir": str(cache.root),
            "config_key": config_key(cfg),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        }
    )
    return done, summary


def _write_figures(
    rows: Sequence[ManifestRow],
    done: Sequence[InrResult],
    cfg: InrConfig,
    fig_dir: Path,
    n: int,
    tag: int,
    max_image_pixels: int,
    background: str,
) -> None:
    for k, (ri, fi) in enumerate(_figure_pairs(rows, n)):
        fig_rows = [
            FigureRow(
                f"{rows[i].label_name}: {Path(rows[i].path).name}",
                resize_for_inr(
                    load_image_rgb(rows[i].path, max_pixels=max_image_pixels, background=background),  # type: ignore[arg-type]
                    cfg.resolution,
                ),
                done[i],
            )
            for i in (ri, fi)
        ]
        save_fig3(fig_rows, fig_dir / f"fig3_{k:03d}_{tag}_{rows[ri].group}.png")


def merge_fit(out_dir: str | os.PathLike[str], count: int | None = None) -> dict:
    """records.csv and summary.json of a sharded fit-inr, from its finished shards: the rows in
    manifest order and the statistics computed once over all of them (the heatmaps themselves are
    already in the shared cache). Raises :class:`InputError` naming a missing or unfinished shard."""
    out = Path(out_dir)
    markers = read_shards(out, count, "fit-inr")
    cfg = InrConfig.model_validate(markers[0]["payload"]["inr"])
    entries = sorted((e for m in markers for e in m["payload"]["rows"]), key=lambda e: e["index"])
    rows = [ManifestRow(e["path"], e["label"], e["group"]) for e in entries]
    done = [InrResult(np.empty(0), np.empty(0), FitRecord(**e["record"])) for e in entries]
    skipped = sum(m["payload"]["summary"]["n_skipped"] for m in markers)
    if not rows:
        raise InputError(f"{out}: none of the {skipped} images of the sharded run could be read")
    parts = [m["payload"]["summary"] for m in markers]
    summary = summarise(rows, done, cfg)
    fitted = sum(p["n_fitted"] for p in parts)
    # The shards ran side by side: the job took as long as the slowest one.
    wall = max(p["wall_seconds"] for p in parts)
    summary.update(
        {
            "n_fitted": fitted,
            "n_cached": len(rows) - fitted,
            "wall_seconds": wall,
            "fitted_images_per_second": fitted / wall if fitted and wall > 0 else None,
            **{
                k: parts[0][k] for k in ("device", "path", "workers", "resolution", "cache_dir", "config_key")
            },
            "load_average": None,
            "n_skipped": skipped,
            "shard": {"merged": len(markers)},
        }
    )
    atomic_write_text(out / "records.csv", _records_csv(rows, done))
    atomic_write_json(out / "summary.json", summary)
    return summary
