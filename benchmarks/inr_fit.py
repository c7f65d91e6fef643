"""INR fitting throughput: the naive reference loop vs each speed-up, on real faces (issue 3).

Every setting fits the same real DFDC faces to the same stopping rule (35 dB PSNR on [0,1] RGB, or a
step cap) and reports images/s, mean PSNR, share reaching the target, mean steps and ms per step.
The chain, each step added to the previous one:

1. ``reference``       what a reader of the paper would write: a plain ``nn.Linear`` SIREN with
                       ``torch.sin(30 x)``, the engine's seeded init copied in, one image at a time,
                       fp32, Adam at SIREN's lr 1e-4 (constant), RGB targets in [0,1] (``ToTensor``),
                       2 intra-op threads. Written here, independently of the engine.
2. ``engine``          the same fit (same targets, lr, init, stop) through ``fakescope.inr``: batched
                       weights, the hand-written sine layer (omega0 folded into the weights);
3. ``symmetric_range`` fitting RGB scaled to [-1,1] (SIREN's own convention), lr 1e-4;
4. ``tuned_lr``        Adam lr 3e-3 with a 10x exponential decay over 200 steps (the default);
5. ``learned_init``    a shared init meta-learned by ``learn_init`` (Reptile) at ``--init-resolution``
                       on other DFDC faces (whole groups disjoint from the timed faces), fitted at its
                       inner lr 1e-3; learning it is a one-off cost, reported apart, not in images/s;
6. ``bf16_backward``   the backward matmuls in bf16 (forward, loss and stop stay fp32);
7. ``bf16_warmup``     the forward too in bf16 autocast until within ``--bf16-margin`` dB of the target.
Steps 2-7 run one image at a time in this process on ``--threads`` threads (``inr.cpu_path:
sequential``, the CPU default). Other ways to schedule the step-7 fit, measured against it:
``workers`` (one single-threaded worker process per core, pool started and warmed before timing) and
``batched`` (all faces in one batched matmul, the GPU path); with ``--compile-sizes``, ``compiled``
(torch.compile of the ``tuned_lr`` fit, against ``tuned_lr``; compile time reported apart).

What the heatmaps lose: per setting, the mean Pearson correlation of each layer's heatmap with the
reference's and with the previous step's (1.0 = identical maps). The reference's heatmaps come from
the same PCA code applied to the plain loop's activations.

    python benchmarks/inr_fit.py --threads 2 --sizes 64 128 --n 6 3 --out benchmarks/results/inr_fit.json
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
from torch import nn

from fakescope.data.images import load_image_rgb
from fakescope.inr import CpuWorkerPool, InrConfig, InrInitConfig, heatmaps_for_images
from fakescope.inr.cache import InrResult
from fakescope.inr.engine import fit_resized, resize_for_inr
from fakescope.inr.fitting import FitRecord
from fakescope.inr.heatmaps import layer_heatmaps, luminance
from fakescope.inr.learned_init import learn_init
from fakescope.inr.models import coordinate_grid, init_params
from fakescope.utils.atomic import atomic_write_json

CPU = torch.device("cpu")
CHAIN = [
    "reference",
    "engine",
    "symmetric_range",
    "tuned_lr",
    "learned_init",
    "bf16_backward",
    "bf16_warmup",
]
ALTERNATIVES = {"workers": "bf16_warmup", "batched": "bf16_warmup", "compiled": "tuned_lr"}


def dfdc_rows(data: Path) -> list[dict]:
    with open(data / "dfdc-faces" / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def load(data: Path, rows: list[dict]) -> list[np.ndarray]:
    return [load_image_rgb(data / "dfdc-faces" / r["path"]) for r in rows]


# --- 1. the naive reference loop ------------------------------------------------------------------


class PlainSiren(nn.Module):
    """SIREN as a reader would write it from the paper (§3.3): Linear + sin(30 x), linear output."""

    def __init__(self, width: int = 128, depth: int = 3, omega0: float = 30.0) -> None:
        super().__init__()
        dims = [2] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.out = nn.Linear(width, 3)
        self.omega0 = omega0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        acts = []
        for layer in self.hidden:
            x = torch.sin(self.omega0 * layer(x))
            acts.append(x)
        return self.out(x), acts


def plain_fit(image: np.ndarray, cfg: InrConfig, lr: float, cap: int) -> InrResult:
    model = PlainSiren(cfg.width, cfg.depth, cfg.omega0)
    init = init_params(cfg)  # the engine's seeded init, so every setting starts from the same weights
    with torch.no_grad():
        for layer, w, b in zip([*model.hidden, model.out], init.weights, init.biases, strict=True):
            layer.weight.copy_(w[0])
            layer.bias.copy_(b[0])
    coords = coordinate_grid(cfg.resolution)
    target = torch.from_numpy(np.array(image)).float().div(255).reshape(-1, 3)  # ToTensor: [0, 1]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(cap + 1):
        rgb, _ = model(coords)
        loss = (rgb - target).square().mean()
        psnr = 10 * float(torch.log10(1 / loss.detach()))
        if psnr >= cfg.target_psnr or step == cap:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        rgb, acts = model(coords)
        maps = layer_heatmaps(
            [a[None] for a in acts], luminance(target)[None], "pca", cfg.resolution, cfg.first_layer_map
        )
    recon = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).reshape(cfg.resolution, cfg.resolution, 3)
    return InrResult(maps[0].numpy(), recon.numpy(), FitRecord(step, psnr, psnr >= cfg.target_psnr))


# --- timing ----------------------------------------------------------------------------------------


def _summary(name: str, wall: float, results: list[InrResult], extra: dict | None = None) -> dict:
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
        "mean_bf16_steps": float(np.mean([r.bf16_steps for r in recs])),
        "ms_per_step": 1000 * wall / max(steps, 1),
        "loadavg_after": list(os.getloadavg()),
    }
    out.update(extra or {})
    return out


def _timed(fn, *args) -> tuple[float, list[InrResult]]:
    start = time.perf_counter()
    results = fn(*args)
    return time.perf_counter() - start, results


def _loop(images: list[np.ndarray], cfg: InrConfig) -> list[InrResult]:
    return [fit_resized([img], cfg, CPU)[0] for img in images]


def _workers(images: list[np.ndarray], cfg: InrConfig, workers: int) -> tuple[float, list[InrResult]]:
    with CpuWorkerPool(cfg, workers) as pool:
        pool.wait_ready()  # process start-up is paid once per job, not per image: keep it out
        start = time.perf_counter()
        maps, recs = heatmaps_for_images(images, cfg, CPU, None, pool=pool)
        wall = time.perf_counter() - start
    return wall, [InrResult(h, np.zeros(0, np.uint8), r) for h, r in zip(maps, recs, strict=True)]


def _heatmap_agreement(results: list[InrResult], ref: list[InrResult]) -> list[float]:
    """Mean over images of the per-layer Pearson correlation with ``ref``'s heatmaps."""
    out = []
    for layer in range(ref[0].heatmaps.shape[0]):
        cs = [float(np.corrcoef(a.heatmaps[layer].ravel(), b.heatmaps[layer].ravel())[0, 1])
              for a, b in zip(results, ref, strict=True)]  # fmt: skip
        out.append(float(np.mean(cs)))
    return out


def learned_init_file(
    data: Path, res: int, timed_groups: set[str], args: argparse.Namespace
) -> tuple[Path, dict]:
    """Learn (or resume, or reuse) the shared init for ``res`` on DFDC faces outside the timed groups."""
    rows = init_learning_rows(data, timed_groups, args.init_images)
    init_cfg = InrInitConfig(outer_steps=args.init_outer_steps, max_images=args.init_images, holdout_images=8)
    path = args.out.with_name(f"inr_init_{res}px.safetensors")
    torch.set_num_threads(args.threads)
    images = load(data, rows)
    summary = learn_init(images, [r["group"] for r in rows], InrConfig(resolution=res, init_file=None, lr=3e-3),
                         init_cfg, path)  # fmt: skip
    return path, {**summary.to_dict(), "file": str(path), "inner_lr": init_cfg.inner_lr}


def bench_resolution(faces: list[np.ndarray], res: int, ref_cap: int, init: tuple[Path, dict],
                     args: argparse.Namespace) -> dict:  # fmt: skip
    images = [resize_for_inr(f, res) for f in faces]
    # The seeded init at its tuned rate, pinned: the defaults now start from the shipped learned init.
    tuned = InrConfig(resolution=res, max_steps=args.max_steps, init_file=None, lr=3e-3)
    symmetric = tuned.model_copy(update={"lr": 1e-4, "lr_decay_factor": 1.0, "max_steps": ref_cap})
    engine = symmetric.model_copy(update={"target_range": "unit"})
    learned = tuned.model_copy(update={"init_file": str(init[0]), "lr": init[1]["inner_lr"]})
    bf16_bwd = learned.model_copy(update={"bf16_backward": True})
    bf16 = bf16_bwd.model_copy(update={"bf16_warmup_margin_db": args.bf16_margin})
    settings: dict[str, dict] = {}
    results: dict[str, list[InrResult]] = {}
    print(f"[{res}px] {len(images)} images, load {os.getloadavg()[0]:.1f}", flush=True)

    def record(name: str, timed: tuple[float, list[InrResult]], extra: dict | None = None) -> None:
        results[name] = timed[1]
        s = settings[name] = _summary(name, *timed, extra)
        print(f"  {name:16s} {s['images_per_second']:7.3f} img/s  {s['mean_psnr']:.2f} dB  "
              f"{s['mean_steps']:6.1f} steps  {s['ms_per_step']:.1f} ms/step", flush=True)  # fmt: skip

    torch.set_num_threads(args.threads)
    fit_resized(images[:1], tuned.model_copy(update={"max_steps": 2}), CPU)  # warm the allocator
    record("reference", _timed(lambda: [plain_fit(i, tuned, 1e-4, ref_cap) for i in images]),
           {"lr": 1e-4, "step_cap": ref_cap, "target_range": "unit"})  # fmt: skip
    record("engine", _timed(_loop, images, engine), {"lr": 1e-4, "step_cap": ref_cap, "target_range": "unit"})
    record("symmetric_range", _timed(_loop, images, symmetric), {"lr": 1e-4, "step_cap": ref_cap})
    record("tuned_lr", _timed(_loop, images, tuned), {"lr": tuned.lr})
    record("learned_init", _timed(_loop, images, learned), {"lr": learned.lr})
    record("bf16_backward", _timed(_loop, images, bf16_bwd))
    record("bf16_warmup", _timed(_loop, images, bf16), {"margin_db": args.bf16_margin})
    record("workers", _workers(images, bf16, args.workers), {"workers": args.workers})
    torch.set_num_threads(args.threads)
    record("batched", _timed(fit_resized, images, bf16, CPU), {"batch_size": len(images)})
    if res in args.compile_sizes:
        ccfg = tuned.model_copy(update={"compile": True})
        t0 = time.perf_counter()
        fit_resized(images[:1], ccfg.model_copy(update={"max_steps": 3}), CPU)
        record("compiled", _timed(_loop, images, ccfg), {"compile_seconds": time.perf_counter() - t0})

    base = settings["reference"]["images_per_second"]
    for name, s in settings.items():
        prev = CHAIN[CHAIN.index(name) - 1] if name in CHAIN[1:] else ALTERNATIVES.get(name)
        s["speedup_vs_reference"] = s["images_per_second"] / base
        s["speedup_vs_symmetric_range"] = (
            s["images_per_second"] / settings["symmetric_range"]["images_per_second"]
        )
        s["step_measured_against"] = prev
        s["gain_of_this_step"] = (
            s["images_per_second"] / settings[prev]["images_per_second"] if prev else None
        )
        s["heatmap_corr_vs_reference"] = _heatmap_agreement(results[name], results["reference"])
        if prev:
            s["heatmap_corr_vs_previous"] = _heatmap_agreement(results[name], results[prev])
    return settings


def init_learning_rows(data: Path, timed_groups: set[str], n: int) -> list[dict]:
    """The faces ``learned_init_file`` learns from: a seeded draw outside the timed groups."""
    rows = [r for r in dfdc_rows(data) if r["group"] not in timed_groups]
    return [rows[i] for i in np.random.default_rng(0).permutation(len(rows))[:n]]


def write_unseen_manifest(
    data: Path, timed_groups: set[str], n_init: int, path: Path, n_groups: int = 100
) -> None:
    """A manifest of the first ``n_groups`` groups (real + fake) that neither the init learning nor the
    timing used, in manifest order: the README's end-to-end ``fit-inr`` run."""
    seen = timed_groups | {r["group"] for r in init_learning_rows(data, timed_groups, n_init)}
    rows = [r for r in dfdc_rows(data) if r["group"] not in seen]
    keep = set(list(dict.fromkeys(r["group"] for r in rows))[:n_groups])
    lines = ["path,label,group"] + [
        f"{data / 'dfdc-faces' / r['path']},{r['label']},{r['group']}" for r in rows if r["group"] in keep
    ]
    path.write_text("\n".join(lines) + "\n")


def markdown_table(report: dict) -> str:
    """The README's table for a results JSON (``--markdown FILE`` prints it without fitting)."""
    lines = ["| px | setting | images/s | mean PSNR (dB) | reached | mean steps (bf16) | ms/step "
             "| gain of this step (vs) | vs reference | heatmap r vs reference (L1/L2/L3) | r vs previous |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for res, settings in report["results"].items():
        for name, s in settings.items():
            gain = (
                f"{s['gain_of_this_step']:.2f}× ({s['step_measured_against']})"
                if s["step_measured_against"]
                else "—"
            )
            bf16 = f" ({s['mean_bf16_steps']:.1f})" if s.get("mean_bf16_steps") else ""
            prev = (
                "/".join(f"{r:.2f}" for r in s["heatmap_corr_vs_previous"])
                if "heatmap_corr_vs_previous" in s
                else "—"
            )
            lines.append(
                f"| {res} | {name} | {s['images_per_second']:.3f} | {s['mean_psnr']:.2f} | {s['share_reached']:.0%} "
                f"| {s['mean_steps']:.1f}{bf16} | {s['ms_per_step']:.1f} | {gain} | {s['speedup_vs_reference']:.1f}× "
                f"| {'/'.join(f'{r:.2f}' for r in s['heatmap_corr_vs_reference'])} | {prev} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/inr_fit.json"))
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--n", type=int, nargs="+", default=[6, 3], help="real faces timed per size")
    p.add_argument("--ref-cap", type=int, nargs="+", default=[3000, 3000],
                   help="step cap of the 1e-4 settings per size (reported if a face does not reach 35 dB)")  # fmt: skip
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--bf16-margin", type=float, default=4.0, help="inr.bf16_warmup_margin_db of step 5")
    p.add_argument("--init-outer-steps", type=int, default=150, help="Reptile meta-updates of step 4")
    p.add_argument("--init-images", type=int, default=800, help="DFDC faces the init is learned from")
    p.add_argument("--init-resolution", type=int, default=64,
                   help="px at which the init is learned (once; used at every size: coordinates are [-1,1]^2)")  # fmt: skip
    p.add_argument("--compile-sizes", type=int, nargs="*", default=[],
                   help="sizes at which to also time torch.compile (compiling takes minutes here)")  # fmt: skip
    p.add_argument("--markdown", type=Path, default=None, metavar="JSON",
                   help="print the README table of an earlier results file and exit")  # fmt: skip
    p.add_argument("--unseen-manifest", type=Path, default=None, metavar="CSV",
                   help="write a manifest of 100 groups (real + fake) unseen by init learning and timing, and exit")  # fmt: skip
    args = p.parse_args()
    if args.unseen_manifest is not None:
        timed = [r for r in dfdc_rows(args.data) if r["label"] == "real"][: max(args.n)]
        write_unseen_manifest(args.data, {r["group"] for r in timed}, args.init_images, args.unseen_manifest)
        return
    if args.markdown is not None:
        import json

        print(markdown_table(json.loads(args.markdown.read_text())))
        return
    if not len(args.sizes) == len(args.n) == len(args.ref_cap):
        p.error(
            "--sizes, --n and --ref-cap need one value per size (e.g. --sizes 64 128 --n 6 3 --ref-cap 3000 3000)"
        )
    timed_rows = [r for r in dfdc_rows(args.data) if r["label"] == "real"][: max(args.n)]
    faces = load(args.data, timed_rows)
    timed_groups = {r["group"] for r in timed_rows}
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "loadavg_start": list(os.getloadavg()),
        },  # fmt: skip
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "timed_faces": [r["path"] for r in timed_rows],
        "results": {},
    }
    t0 = time.perf_counter()
    init = learned_init_file(args.data, args.init_resolution, timed_groups, args)
    init[1]["learn_seconds_this_run"] = time.perf_counter() - t0
    init[1]["resolution"] = args.init_resolution
    report["learned_init"] = init[1]
    for res, n, cap in zip(args.sizes, args.n, args.ref_cap, strict=True):
        report["results"][str(res)] = bench_resolution(faces[:n], res, cap, init, args)
        report["machine"]["loadavg_end"] = list(os.getloadavg())
        atomic_write_json(args.out, report)  # keep partial results if a later size is interrupted
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
