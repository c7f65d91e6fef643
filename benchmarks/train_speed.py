"""Training throughput (faces per second of optimiser steps) per detector and image size on this
machine, to size the CPU recipes' epochs (issue 11 part 3: each CPU recipe trains in about 90 minutes).

    python benchmarks/train_speed.py --detectors airl airl_rgb airl_freq airl_early clip infer \
        --sizes 128 --steps 6 --threads 2      # -> results/train_speed.json

Each detector is built from ``configs/cpu/<detector>.yaml`` (real Lite0 weights where the recipe uses
them) and takes ``--steps`` timed Adam steps (forward, the training loss, backward, clip, step) on
batches of real DFDC crops after one warm-up step. Stored inputs (INR heatmaps, frozen embeddings) are
precomputed once before training and are not part of a step: their cost per face is measured
separately (``precompute_s_per_face``) on ``--precompute-n`` faces, without a cache.
The 1-minute load average before and after is saved: on a shared CPU the figures are slower.

``--variants old new`` (issue 15, "Faster training on a CPU") instead times the real training loop of
one recipe, data loading included: the trainer's own ``_set_up`` (dataset, DataLoader, crop cache,
detector, optimiser) and ``_optimiser_step``, ``--steps`` steps after ``--warmup`` steps, variant after
variant in one process. ``old`` is the recipe with this issue's options off (``OLD_OVERRIDES``: no workers, no crop cache,
NCHW, torch's thread choice); ``new`` turns them on (``NEW_OVERRIDES``: crop cache, one persistent
worker, channels_last); ``new-narrow-dct`` is ``new`` with AIRL's DCT-stream CNN at half its widths
(``NARROW_DCT_OVERRIDES``, a change to the model); ``new-bf16`` is ``new`` with the forward under bf16
autocast except the depthwise convolutions (``BF16_OVERRIDES``, ``train.amp``), ``new-bf16-all`` with every
convolution in bf16. ``--set`` applies to every variant (e.g. ``--set
train.num_threads=1`` on a busy CPU):

    python benchmarks/train_speed.py --variants old new --recipe airl --steps 20   # -> results/train_speed_loop.json

``--val-ci OLD_RUN NEW_RUN`` scores each run's ``checkpoints/best`` on its own validation split (the
rows of ``RUN/seen_rows.csv`` marked ``val``) and prints the AUC with its bootstrap 95 % interval over
source videos (groups), and the paired difference, to compare a before/after pair of ``fakescope train``
runs (same split, same seed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

#: The pre-issue-15 training path: decode every crop every epoch in the main process, NCHW tensors.
OLD_OVERRIDES = [
    "data.num_workers=0", "data.crop_cache=false", "data.persistent_workers=false",
    "train.channels_last=false", "train.compile=false", "train.num_threads=0",
]  # fmt: skip


#: This issue's options (docs/training.md, Training speed on a CPU); pass them to ``fakescope train`` as --set.
NEW_OVERRIDES = [
    "data.crop_cache=true", "data.num_workers=1", "data.persistent_workers=true", "train.channels_last=true",
]  # fmt: skip

#: ``new`` with AIRL's DCT-stream CNN at half its widths (64-128-256 -> 32-64-128: about a quarter of its
#: multiply-adds). It changes the model, so it is a recipe choice that needs its validation-AUC evidence.
NARROW_DCT_OVERRIDES = ["model.freq_channels=[32,64,128]"]

#: bf16 autocast of the forward (``train.amp``; the loss, the weights and Adam stay fp32). Only worth it on
#: a CPU with native bf16 (AVX512-BF16 / AMX); elsewhere oneDNN emulates it. Changes the arithmetic, so it
#: too needs its validation-AUC evidence.
BF16_OVERRIDES = ["train.amp=true", "train.amp_dtype=bfloat16", "train.amp_fp32_depthwise=true"]
#: bf16 for every convolution, depthwise too (``train.amp_fp32_depthwise=false``): oneDNN's bf16 depthwise
#: backward is the slow kernel that the default keeps in float32.
BF16_ALL_OVERRIDES = ["train.amp=true", "train.amp_dtype=bfloat16", "train.amp_fp32_depthwise=false"]

#: variant -> its overrides
VARIANTS = {
    "old": OLD_OVERRIDES,
    "new": OLD_OVERRIDES + NEW_OVERRIDES,
    "new-narrow-dct": OLD_OVERRIDES + NEW_OVERRIDES + NARROW_DCT_OVERRIDES,
    "new-bf16": OLD_OVERRIDES + NEW_OVERRIDES + BF16_OVERRIDES,
    "new-bf16-all": OLD_OVERRIDES + NEW_OVERRIDES + BF16_ALL_OVERRIDES,
    "new-bf16-narrow-dct": OLD_OVERRIDES + NEW_OVERRIDES + BF16_OVERRIDES + NARROW_DCT_OVERRIDES,
}


def _recorded_runs(path: Path) -> list[str]:
    """The runs a ``--val-ci`` record compared (older records name them relative to the repository)."""
    import json

    record = json.loads(path.read_text())
    return record.get("runs") or [str((REPO / r["run"]).resolve()) for r in record["results"] if "run" in r]


def val_ci(runs: list[str], bootstrap: int = 1000) -> list[dict]:
    """Validation AUC [95 % CI] of each run's best checkpoint, plus the paired difference of two."""
    import csv

    from fakescope.data.dataset import FaceDataset, collate_batch
    from fakescope.data.splits import load_splits
    from fakescope.eval.metrics import auc, bootstrap_auc_ci, paired_bootstrap_auc_difference
    from fakescope.inference.checkpoint import load_detector
    from fakescope.inference.predict import iter_predictions

    os.chdir(REPO)
    out, scores = [], []
    for run in runs:
        det, cfg = load_detector(run, "cpu")[:2]
        with open(Path(run) / "seen_rows.csv", newline="") as fh:
            val_paths = {r["path"] for r in csv.DictReader(fh) if r["split"] == "val"}
        rows = [r for r in load_splits(cfg.data)["val"] if r.path in val_paths]
        loader = torch.utils.data.DataLoader(
            FaceDataset(rows, cfg.data.image_size), batch_size=64, collate_fn=collate_batch
        )
        # Under the run's own autocast setting, as its training-time validation scored it.
        preds = iter_predictions(det, loader, torch.device("cpu"), cfg.train.amp, cfg.train.amp_dtype)
        s = [p for _, o in preds for p in o["prob"].tolist()]
        y, g = [r.label for r in rows], [r.group for r in rows]
        lo, hi = bootstrap_auc_ci(y, s, g, n=bootstrap)
        row = {"run": run, "n": len(rows), "val_auc": round(auc(y, s), 4), "ci": [round(lo, 4), round(hi, 4)]}
        print(row, flush=True)
        out.append(row)
        scores.append((y, s, g))
    if len(runs) == 2 and scores[0][0] == scores[1][0]:
        d = paired_bootstrap_auc_difference(
            scores[1][0], scores[1][1], scores[0][1], scores[1][2], n=bootstrap
        )
        row = {"paired_difference_second_minus_first": {k: round(float(v), 4) for k, v in d.items()}}
        print(row, flush=True)
        out.append(row)
    return out


def time_loop(
    recipe: str, variants: list[str], steps: int, warmup: int, extra: list[str], cache_dir: str
) -> list[dict]:
    """Faces per second of the trainer's own loop (loader waits included) for each variant."""
    import tempfile

    from fakescope.config import load_config
    from fakescope.train import trainer as T
    from fakescope.train.setup import set_up
    from fakescope.utils.distributed import DistInfo

    os.chdir(REPO)  # the recipes' manifest paths are relative to the repository
    results = []
    for variant in variants:
        sets = VARIANTS[variant] + [f"data.crop_cache_dir={cache_dir}", "train.progress=false"] + extra
        cfg = load_config(REPO / "configs" / "cpu" / f"{recipe}.yaml", sets)
        threads = torch.get_num_threads()
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        with tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(cfg.seed)
            t0 = time.perf_counter()
            s = set_up(cfg, Path(tmp), torch.device("cpu"), DistInfo())
            setup_s = time.perf_counter() - t0
            s.sampler.set_epoch(0, 0)
            s.train_ds.set_epoch(0)
            s.model.train()
            batches = iter(s.loader)
            load_before = os.getloadavg()[0]
            losses = []
            for i in range(warmup + steps):
                if i == warmup:
                    t0 = time.perf_counter()
                loss, _, _, _ = T._optimiser_step(s, next(batches), 0, i)
                losses.append(round(float(loss), 6))
            wall = time.perf_counter() - t0
            del batches
        torch.set_num_threads(threads)
        row = {
            "variant": variant, "recipe": recipe, "overrides": sets, "batch_size": cfg.train.batch_size,
            "image_size": cfg.data.image_size, "threads": cfg.train.num_threads or threads,
            "num_workers": cfg.data.num_workers, "crop_cache": cfg.data.crop_cache,
            "channels_last": cfg.train.channels_last, "setup_s": round(setup_s, 1), "steps": steps,
            "step_s": round(wall / steps, 3), "faces_per_s": round(steps * cfg.train.batch_size / wall, 1),
            "first_losses": losses[:3], "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
        }  # fmt: skip
        print(row, flush=True)
        results.append(row)
    return results


def main(argv: list[str] | None = None) -> int:
    from fakescope.config import load_config
    from fakescope.data.images import load_image_rgb
    from fakescope.data.manifest import read_manifest
    from fakescope.inference.inputs import compute_inputs, detector_inputs, images_to_tensor, model_image
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector
    from fakescope.train.losses import detector_loss
    from fakescope.utils.atomic import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--detectors", nargs="+", default=["airl", "airl_rgb", "airl_freq", "clip", "infer"])
    p.add_argument("--sizes", nargs="+", type=int, default=[128])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--precompute-n", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--out", default=None, help="default results/train_speed.json (train_speed_loop.json with --variants)"
    )
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="time the training loop of --recipe")
    p.add_argument("--recipe", default="airl", help="configs/cpu/<recipe>.yaml for --variants")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (--variants)")
    p.add_argument("--set", action="append", default=[], help="override for every variant (--variants)")
    p.add_argument("--val-ci", nargs="+", metavar="RUN", help="val AUC [95%% CI] of trained runs")
    p.add_argument(
        "--cache-dir", default=str(REPO / "runs" / "speed" / "crop_cache"), help="crop cache (--variants)"
    )
    args = p.parse_args(argv)
    command = "python benchmarks/train_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.val_ci:
        # Run folders and --out are read from the working directory (val_ci works from the repository).
        runs = [str(Path(r).resolve()) for r in args.val_ci]
        missing = [r for r in runs if not (Path(r) / "seen_rows.csv").is_file()]
        if missing:
            raise SystemExit(f"error: --val-ci {missing[0]}: not a finished training run (no seen_rows.csv)")
        out = (
            Path(args.out).resolve()
            if args.out
            else REPO / "benchmarks" / "results" / "train_speed_val_ci.json"
        )
        if not args.out and out.is_file() and _recorded_runs(out) != runs:
            raise SystemExit(f"error: {out} records other runs; name a new file with --out")
        torch.set_num_threads(args.threads)
        res = val_ci(runs)
        atomic_write_json(out, {"command": command, "runs": runs, "results": res})
        return 0
    if args.variants:
        res = time_loop(args.recipe, args.variants, args.steps, args.warmup, args.set, args.cache_dir)
        speed = {r["variant"]: r["faces_per_s"] for r in res}
        if "old" in speed and "new" in speed:
            print(f"new / old faces per second: {speed['new'] / speed['old']:.2f}x")
        out = args.out or str(REPO / "benchmarks" / "results" / "train_speed_loop.json")
        atomic_write_json(out, {"command": command, "results": res})
        return 0
    args.out = args.out or str(REPO / "benchmarks" / "results" / "train_speed.json")
    torch.set_num_threads(args.threads)
    rows = read_manifest(Path(args.data) / "dfdc-faces" / "manifest.csv")[: args.batch_size]
    raw = [load_image_rgb(r.path) for r in rows]
    labels = torch.tensor([r.label for r in rows])
    results = []
    for det_name in args.detectors:
        for size in args.sizes:
            cfg = load_config(REPO / "configs" / "cpu" / f"{det_name}.yaml", [f"data.image_size={size}"])
            torch.manual_seed(0)
            det = build_detector(cfg.model, input_spec_for(cfg))
            crops = [model_image(c, cfg) for c in raw]
            needed = set(detector_inputs(det)) - {"image"}
            t0 = time.perf_counter()
            built = compute_inputs(needed, crops[: args.precompute_n], cfg, "cpu", detector=det)
            pre = (time.perf_counter() - t0) / args.precompute_n if needed else 0.0
            if needed:  # the rest of the batch reuses the measured faces' inputs (cost already counted)
                built.stores = {
                    k: [v[i % args.precompute_n] for i in range(len(crops))] for k, v in built.stores.items()
                }
            batch = {"image": images_to_tensor(crops), "label": labels}
            for k, v in built.stores.items():
                batch[k] = torch.from_numpy(np.stack(v))
            opt = torch.optim.Adam(
                det.param_groups(cfg.train.lr, cfg.train.backbone_lr_mult), lr=cfg.train.lr
            )
            det.train()
            load_before = os.getloadavg()[0]
            times = []
            for i in range(args.steps + 1):
                t = time.perf_counter()
                out = det(batch)
                loss = detector_loss(det, batch, out, cfg.train)["total"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(det.parameters(), cfg.train.grad_clip)
                opt.step()
                if i:  # the first step warms up allocators and kernels
                    times.append(time.perf_counter() - t)
            step_s = float(np.median(times))
            row = {
                "detector": det_name, "image_size": size, "batch_size": args.batch_size,
                "step_s_median": round(step_s, 3), "faces_per_s": round(args.batch_size / step_s, 1),
                "precompute_s_per_face": round(pre, 3), "precomputed": sorted(needed),
                "inr_resolution": cfg.inr.resolution if "heatmaps" in needed else None,
                "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            }  # fmt: skip
            print(row, flush=True)
            results.append(row)
    atomic_write_json(args.out, {"threads": args.threads, "results": results,
                                 "command": "python benchmarks/train_speed.py " + " ".join(argv or sys.argv[1:])})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
