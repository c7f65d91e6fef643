"""From images to heatmaps: resize, fit (batched or one image per worker process), extract, cache.

The public entry point is :func:`heatmaps_for_images` (docs/CONTRACTS.md "INR heatmaps").

Execution path (docs/design.md, "Fitting": pick the fastest path per device by measurement; docs/inr.md):
on a GPU, B images are fitted as one batched computation. On this 2-core CPU, one image at a
time in one process on both threads measured as fast as a pool of warmed single-threaded worker
processes (within +-10%) and 1.4x the batched matmuls at 128 px (the activations leave the cache), and
it starts no processes. So on CPU the default (``inr.cpu_path: auto``) is ``sequential``; ``workers``
and ``batched`` remain for machines where they measure faster. All paths run the same code from the
same initialisation and gave bit-identical maps here.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterable, Iterator, Sequence

import cv2
import numpy as np
import torch

from fakescope.errors import InputError
from fakescope.inr.cache import HeatmapCache, InrResult, image_key
from fakescope.inr.config import InrConfig
from fakescope.inr.fitting import FitRecord, fit_batch
from fakescope.inr.heatmaps import layer_heatmaps, luminance
from fakescope.inr.models import InrParams, coordinate_grid, forward, load_init

__all__ = [
    "CpuWorkerPool",
    "heatmaps_for_images",
    "iter_results",
    "resize_for_inr",
    "fit_resized",
    "choose_path",
    "n_workers",
]

# Heatmap extraction keeps [B, N, width] activations per layer; this many images at a time bounds it.
_EXTRACT_CHUNK = 8


def resize_for_inr(image: np.ndarray, resolution: int, name: str = "image") -> np.ndarray:
    """uint8 HxWx3 -> uint8 RxRx3. Area interpolation when shrinking (anti-aliased), cubic when
    enlarging. A non-square image is stretched: inputs are meant to be square aligned face crops."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InputError(f"{name}: expected a uint8 HxWx3 RGB array, got {desc}")
    h, w = image.shape[:2]
    if (h, w) == (resolution, resolution):
        return np.ascontiguousarray(image)
    interp = cv2.INTER_AREA if min(h, w) >= resolution else cv2.INTER_CUBIC
    return cv2.resize(image, (resolution, resolution), interpolation=interp)


def _targets(
    images: Sequence[np.ndarray], cfg: InrConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resized uint8 images -> (fit targets [B, N, 3] in the fitted range, luminance [B, N])."""
    rgb01 = torch.from_numpy(np.stack(images)).to(device=device, dtype=torch.float32).div_(255.0)
    rgb01 = rgb01.reshape(len(images), -1, 3)
    tgt = rgb01 * 2.0 - 1.0 if cfg.target_range == "symmetric" else rgb01
    return tgt, luminance(rgb01)


def _to_uint8(rgb: torch.Tensor, cfg: InrConfig) -> torch.Tensor:
    rgb01 = (rgb + 1.0) / 2.0 if cfg.target_range == "symmetric" else rgb
    return (rgb01.clamp(0, 1) * 255.0).round().to(torch.uint8)


def fit_resized(
    images: Sequence[np.ndarray],
    cfg: InrConfig,
    device: torch.device,
    init: InrParams | None = None,
    coords: torch.Tensor | None = None,
) -> list[InrResult]:
    """Fit already-resized uint8 RxRx3 images as one batch and extract heatmaps (INFER §3.3-3.4)."""
    r = cfg.resolution
    init = load_init(cfg) if init is None else init
    coords = coordinate_grid(r, device) if coords is None else coords
    tgt, luma = _targets(images, cfg, device)
    params, records = fit_batch(tgt, init, cfg, coords)
    results: list[InrResult] = []
    with torch.no_grad():
        for s in range(0, len(images), _EXTRACT_CHUNK):
            idx = slice(s, s + _EXTRACT_CHUNK)
            rgb, acts = forward(params.index(idx), coords, cfg, return_activations=True)
            maps = layer_heatmaps(acts, luma[idx], cfg.heatmap_mode, r, cfg.first_layer_map).cpu().numpy()
            recon = _to_uint8(rgb, cfg).reshape(-1, r, r, 3).cpu().numpy()
            for k in range(maps.shape[0]):
                results.append(InrResult(maps[k], recon[k], records[s + k]))
    return results


def n_workers(cfg: InrConfig) -> int:
    if cfg.workers > 0:
        return cfg.workers
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def choose_path(cfg: InrConfig, device: torch.device) -> str:
    """'sequential', 'workers' or 'batched' for this device (see module docstring)."""
    if device.type != "cpu":
        return "batched"
    if cfg.cpu_path == "auto":
        return "sequential"
    return cfg.cpu_path


# --- worker processes (CPU path) -------------------------------------------------------------------

_WORKER: dict = {}


def _worker_init(cfg_json: str) -> None:
    # One thread per process: the processes, not intra-op threads, use the cores.
    torch.set_num_threads(1)
    cfg = InrConfig.model_validate_json(cfg_json)
    _WORKER["cfg"] = cfg
    _WORKER["init"] = load_init(cfg)
    _WORKER["coords"] = coordinate_grid(cfg.resolution)
    # A first fit in a fresh process pays one-off kernel and allocator set-up (~0.5 s measured at
    # 64 px); pay it here, while the pool starts, not inside the first image's fit.
    warm = np.zeros((cfg.resolution, cfg.resolution, 3), np.uint8)
    fit_resized([warm], cfg.model_copy(update={"max_steps": 2}), torch.device("cpu"), _WORKER["init"],
                _WORKER["coords"])  # fmt: skip


def _worker_fit(task: tuple[int, np.ndarray]) -> tuple[int, InrResult]:
    idx, image = task
    cfg = _WORKER["cfg"]
    (res,) = fit_resized([image], cfg, torch.device("cpu"), _WORKER["init"], _WORKER["coords"])
    return idx, res


def _worker_ready(_: int) -> int:
    return os.getpid()


class CpuWorkerPool:
    """A pool of single-threaded fitting processes that can be kept warm across calls.

    ``heatmaps_for_images`` starts one per call by default; a caller that makes many calls (a trainer
    going through a manifest in chunks, a benchmark) can hold one open and pass it as ``pool=``.
    """

    def __init__(self, cfg: InrConfig, workers: int | None = None) -> None:
        self.cfg = cfg
        self.workers = workers or n_workers(cfg)
        # spawn, not fork: forking a process whose torch/OpenMP thread pools are running can deadlock.
        ctx = mp.get_context("spawn")
        self._pool = ctx.Pool(self.workers, initializer=_worker_init, initargs=(cfg.model_dump_json(),))

    def wait_ready(self) -> None:
        """Block until every worker has started (so timings exclude process start-up)."""
        self._pool.map(_worker_ready, range(self.workers * 4), chunksize=1)

    def imap(self, tasks: list[tuple[int, np.ndarray]]) -> Iterator[tuple[int, InrResult]]:
        return self._pool.imap_unordered(_worker_fit, tasks, chunksize=1)

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> CpuWorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _iter_workers(
    tasks: list[tuple[int, np.ndarray]], cfg: InrConfig, workers: int, pool: CpuWorkerPool | None
) -> Iterator[tuple[int, InrResult]]:
    if pool is not None:
        if pool.cfg != cfg:
            raise ValueError("the worker pool was started with a different InrConfig")
        yield from pool.imap(tasks)
        return
    with CpuWorkerPool(cfg, workers) as own:
        yield from own.imap(tasks)


def _iter_in_process(
    tasks: list[tuple[int, np.ndarray]], cfg: InrConfig, device: torch.device, batch_size: int
) -> Iterator[tuple[int, InrResult]]:
    init = load_init(cfg)
    coords = coordinate_grid(cfg.resolution, device)
    for s in range(0, len(tasks), batch_size):
        chunk = tasks[s : s + batch_size]
        results = fit_resized([img for _, img in chunk], cfg, device, init, coords)
        yield from zip((i for i, _ in chunk), results, strict=True)


# --- public API ------------------------------------------------------------------------------------


def iter_results(
    images: Iterable[np.ndarray],
    cfg: InrConfig,
    device: torch.device | str = "cpu",
    cache: HeatmapCache | None = None,
    names: Sequence[str] | None = None,
    pool: CpuWorkerPool | None = None,
) -> Iterator[tuple[int, InrResult]]:
    """Yield (index, InrResult) for each image as it completes (cached ones first, then fits in
    completion order). Each fitted result is written to ``cache`` before it is yielded, so a run
    killed at any point keeps everything it reported."""
    device = torch.device(device)
    tasks: list[tuple[int, np.ndarray]] = []
    keys: dict[int, str] = {}
    for i, img in enumerate(images):
        name = names[i] if names is not None else f"image {i}"
        small = resize_for_inr(img, cfg.resolution, name)
        if cache is not None:
            keys[i] = image_key(img)
            hit = cache.get(keys[i])
            if hit is not None:
                yield i, hit
                continue
        tasks.append((i, small))
    if not tasks:
        return
    path = choose_path(cfg, device)
    workers = min(n_workers(cfg), len(tasks))
    if path == "workers" and (workers > 1 or pool is not None):
        stream = _iter_workers(tasks, cfg, workers, pool)
    else:
        stream = _iter_in_process(tasks, cfg, device, 1 if path == "sequential" else cfg.batch_size)
    for i, res in stream:
        if cache is not None:
            cache.put(keys[i], res)
        yield i, res


def heatmaps_for_images(
    images_uint8: Sequence[np.ndarray],
    cfg: InrConfig,
    device: torch.device | str = "cpu",
    cache: HeatmapCache | None = None,
    pool: CpuWorkerPool | None = None,
) -> tuple[list[np.ndarray], list[FitRecord]]:
    """INR heatmaps for uint8 HxWx3 RGB images (INFER §3.4.4): float32 [L, R, R] per image
    (L = ``cfg.depth`` activated layers, R = ``cfg.resolution``; images are resized inside), and a
    FitRecord per image (steps, final PSNR, reached target, cached). Order follows the input.
    ``pool``: an open :class:`CpuWorkerPool` to reuse on the CPU worker path."""
    maps: list[np.ndarray | None] = [None] * len(images_uint8)
    records: list[FitRecord | None] = [None] * len(images_uint8)
    for i, res in iter_results(images_uint8, cfg, device, cache, pool=pool):
        maps[i], records[i] = res.heatmaps, res.record
    return maps, records  # type: ignore[return-value]
