"""Fitting every image of a manifest into the shared heatmap cache (`fakescope fit-inr`).

DESIGN.md "Scale": under ``torchrun`` (or any launcher that sets ``RANK``/``WORLD_SIZE``) each rank
takes rows ``rank::world_size`` of the manifest and fills the same content-addressed cache; a rerun
refits nothing. Each rank writes its own summary (``summary.json`` for a single process,
``summary.rank{r}.json`` otherwise), plus ``records.csv`` with one row per image.
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
from fakescope.inr.cache import HeatmapCache, InrResult, config_key
from fakescope.inr.config import InrConfig
from fakescope.inr.engine import choose_path, iter_results, n_workers, resize_for_inr
from fakescope.inr.figures import FigureRow, save_fig3
from fakescope.utils.atomic import atomic_write_json, atomic_write_text

__all__ = ["fit_manifest", "shard_from_env", "summarise"]


def shard_from_env() -> tuple[int, int]:
    """(rank, world_size) from the torchrun environment, (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


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
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
    background: str = "black",
) -> dict:
    """Fit (or fetch from the cache) every row of this shard; write records, summary and figures.

    Returns the summary dict that is also written as JSON.
    """
    device = torch.device(device)
    rank, world = shard
    rows = list(rows)[rank::world]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = HeatmapCache(cache_dir if cache_dir is not None else cfg.cache_dir, cfg)

    def load(i: int) -> np.ndarray:
        return load_image_rgb(rows[i].path, max_pixels=max_image_pixels, background=background)  # type: ignore[arg-type]

    # A generator: iter_results keeps only each image's copy shrunk to cfg.resolution, so memory does not
    # grow with the number (or the size) of the images (issue 16 item 3).
    images = (load(i) for i in range(len(rows)))
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

    suffix = "" if world == 1 else f".rank{rank}"
    atomic_write_text(out / f"records{suffix}.csv", _records_csv(rows, done))
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
            "shard": {"rank": rank, "world_size": world},
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        }
    )
    atomic_write_json(out / f"summary{suffix}.json", summary)

    if figures > 0:
        fig_dir = out / "figures"
        for k, (ri, fi) in enumerate(_figure_pairs(rows, figures)):
            fig_rows = [
                FigureRow(
                    f"{rows[i].label_name}: {Path(rows[i].path).name}",
                    resize_for_inr(load(i), cfg.resolution),
                    done[i],
                )
                for i in (ri, fi)
            ]
            save_fig3(fig_rows, fig_dir / f"fig3_{k:03d}_{rank}_{rows[ri].group}.png")
    return summary
