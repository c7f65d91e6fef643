"""INR fitting throughput: the naive reference loop vs each speed-up, on real faces (issue 3).

For each resolution it fits the same real DFDC faces with:

1. ``reference``   one image at a time, fp32, Adam at SIREN's lr 1e-4 (constant), 2 intra-op threads,
                   the shared init and the stopping rule (target PSNR or a step cap);
2. ``tuned_lr``    the same loop with the default lr (3e-3, 10x exponential decay over 200 steps);
3. ``workers``     + one single-threaded worker process per core (the CPU default path);
and, as alternatives to step 3 measured against step 2:
3b. ``tuned_lr_1thread`` the step-2 loop on one thread (isolates thread contention on a busy CPU);
4. ``compiled``    tuned_lr with ``torch.compile`` on the forward+loss (compile time reported apart);
5. ``batched``     all images in one batched-matmul fit (the GPU path), on this CPU.

Per setting: images/s, mean PSNR, share reaching the target, mean steps, ms per Adam step, and what
the heatmaps lose: the Pearson correlation of each layer's heatmap with the reference's and with
``tuned_lr``'s (1.0 = identical maps). ``os.getloadavg()`` is recorded before and after each setting,
because the CPU is shared.

    python benchmarks/inr_fit.py --out benchmarks/results/inr_fit.json
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from fakescope.data.images import load_image_rgb
from fakescope.inr import CpuWorkerPool, InrConfig, heatmaps_for_images
from fakescope.inr.engine import fit_resized, resize_for_inr
from fakescope.utils.atomic import atomic_write_json

CPU = torch.device("cpu")


def real_faces(data: Path, n: int, offset: int = 0) -> list[np.ndarray]:
    root = data / "dfdc-faces"
    with open(root / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "real"]
    return [load_image_rgb(root / r["path"]) for r in rows[offset : offset + n]]


def _summary(name: str, wall: float, results: list, extra: dict | None = None) -> dict:
    recs = [r.record for r in results]
    steps = sum(r.steps for r in recs)
    out = {
        "setting": name,
        "n": len(recs),
        "wall_seconds": wall,
        "images_per_second": len(recs) / wall,
        "mean_psnr": float(np.mean([r.final_psnr for r in recs])),
        "share_reached": float(np.mean([r.reached for r in recs])),
        "mean_steps": float(np.mean([r.steps for r in recs])),
        "ms_per_step": 1000 * wall / max(steps, 1),
        "loadavg_after": list(os.getloadavg()),
    }
    out.update(extra or {})
    return out


def _loop(images: list[np.ndarray], cfg: InrConfig, threads: int) -> tuple[float, list]:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    results = [fit_resized([img], cfg, CPU)[0] for img in images]
    return time.perf_counter() - start, results


def _workers(images: list[np.ndarray], cfg: InrConfig, workers: int) -> tuple[float, list]:
    with CpuWorkerPool(cfg, workers) as pool:
        pool.wait_ready()  # process start-up is paid once per run, not per image: keep it out
        start = time.perf_counter()
        maps, recs = heatmaps_for_images(images, cfg, CPU, None, pool=pool)
        wall = time.perf_counter() - start

    class _R:  # the worker path returns maps + records; give them the InrResult shape used here
        def __init__(self, h, r):
            self.heatmaps, self.record = h, r

    return wall, [_R(h, r) for h, r in zip(maps, recs, strict=True)]


def _heatmap_agreement(results: list, ref: list) -> list[float]:
    """Mean over images of the per-layer Pearson correlation with ``ref``'s heatmaps."""
    layers = ref[0].heatmaps.shape[0]
    out = []
    for layer in range(layers):
        cs = [
            float(np.corrcoef(a.heatmaps[layer].ravel(), b.heatmaps[layer].ravel())[0, 1])
            for a, b in zip(results, ref, strict=True)
        ]
        out.append(float(np.mean(cs)))
    return out


def bench_resolution(faces: list[np.ndarray], res: int, ref_cap: int, args: argparse.Namespace) -> dict:
    images = [resize_for_inr(f, res) for f in faces]
    tuned = InrConfig(resolution=res, max_steps=args.max_steps)
    reference = tuned.model_copy(update={"lr": 1e-4, "lr_decay_factor": 1.0, "max_steps": ref_cap})
    settings: dict[str, dict] = {}
    results: dict[str, list] = {}
    print(f"[{res}px] {len(images)} images, load {os.getloadavg()[0]:.1f}", flush=True)

    def record(name: str, wall: float, res_list: list, extra: dict | None = None) -> None:
        results[name] = res_list
        settings[name] = _summary(name, wall, res_list, extra)
        print(f"  {name:10s} {settings[name]['images_per_second']:.3f} img/s, "
              f"{settings[name]['mean_psnr']:.2f} dB, {settings[name]['mean_steps']:.0f} steps", flush=True)  # fmt: skip

    fit_resized(images[:1], tuned.model_copy(update={"max_steps": 2}), CPU)  # warm the allocator
    record("reference", *_loop(images, reference, args.threads), {"lr": 1e-4, "step_cap": ref_cap})
    record("tuned_lr", *_loop(images, tuned, args.threads), {"lr": tuned.lr})
    # One thread, one process: separates "processes beat threads" from plain thread contention.
    record("tuned_lr_1thread", *_loop(images, tuned, 1), {"threads": 1})
    record("workers", *_workers(images, tuned, args.workers), {"workers": args.workers})
    if res in args.compile_sizes:
        ccfg = tuned.model_copy(update={"compile": True})
        t0 = time.perf_counter()
        torch.set_num_threads(args.threads)
        fit_resized(images[:1], ccfg.model_copy(update={"max_steps": 3}), CPU)
        compile_s = time.perf_counter() - t0
        record("compiled", *_loop(images, ccfg, args.threads), {"compile_seconds": compile_s})
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    batched = fit_resized(images, tuned, CPU)
    record("batched", time.perf_counter() - t0, batched, {"batch_size": len(images)})

    chain = ["reference", "tuned_lr", "workers"]
    for name, s in settings.items():
        s["speedup_vs_reference"] = s["images_per_second"] / settings["reference"]["images_per_second"]
        prev = (
            chain[chain.index(name) - 1]
            if name in chain[1:]
            else ("tuned_lr" if name != "reference" else None)
        )
        s["gain_of_this_step"] = (
            s["images_per_second"] / settings[prev]["images_per_second"] if prev else None
        )  # fmt: skip
        s["step_measured_against"] = prev
        s["heatmap_corr_vs_reference"] = _heatmap_agreement(results[name], results["reference"])
        s["heatmap_corr_vs_tuned_lr"] = _heatmap_agreement(results[name], results["tuned_lr"])
    return settings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/inr_fit.json"))
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    p.add_argument(
        "--n", type=int, nargs="+", default=[4, 2, 1], help="images per size (shared CPU: keep small)"
    )
    p.add_argument("--ref-cap", type=int, nargs="+", default=[1500, 600, 300],
                   help="step cap of the 1e-4 reference per size (it may not reach 35 dB within it)")  # fmt: skip
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--compile-sizes", type=int, nargs="*", default=[64],
                   help="sizes at which to also time torch.compile (compiling costs minutes on a busy CPU)")  # fmt: skip
    args = p.parse_args()
    if not len(args.sizes) == len(args.n) == len(args.ref_cap):
        p.error("--sizes, --n and --ref-cap need one value per size (e.g. --sizes 64 128 --n 4 2 --ref-cap 1500 600)")
    faces = real_faces(args.data, max(args.n))
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "loadavg_start": list(os.getloadavg()),
            "note": "shared CPU: other jobs ran alongside; see loadavg per setting",
        },
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": {},
    }
    for res, n, cap in zip(args.sizes, args.n, args.ref_cap, strict=True):
        report["results"][str(res)] = bench_resolution(faces[:n], res, cap, args)
        report["machine"]["loadavg_end"] = list(os.getloadavg())
        atomic_write_json(args.out, report)  # keep partial results if a later size is interrupted
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
