"""Where one ``fakescope train`` step's time goes on this CPU (issue 15, "Faster training on a CPU").

    python benchmarks/train_profile.py --config configs/cpu/airl.yaml --steps 12   # -> results/train_profile.json
    python benchmarks/train_profile.py --variants old new --set train.num_threads=1 --torch-profile

The script builds the run's train dataset, detector and optimiser exactly as ``fakescope train`` does
(same config, same augmentation, balanced batches of real DFDC crops) and times, per batch, each stage
in isolation with simple ``perf_counter`` timers: image decode (JPEG/PNG -> uint8), resize to
``data.image_size``, augmentation, collate, then forward (RGB backbone, block-DCT map, DCT CNN, fusion
head), loss, backward, gradient clipping + Adam + scheduler. The stages run one after another in one
process, so their sum is the time of a ``data.num_workers: 0`` step; with workers the data stages
overlap the model stages instead. ``--torch-profile`` adds ``torch.profiler``'s top operators of one
forward+backward (self CPU time). The first batch is a warm-up and is not counted. The 1-minute load
average before and after is saved: on a shared CPU every figure is slower. ``--variants old new`` profiles
``benchmarks/train_speed.py``'s ``OLD_OVERRIDES`` / ``NEW_OVERRIDES`` one after the other (the decode
and resize stages are still timed for ``new``: they are what its crop cache skips after the first
epoch, so count them as zero there).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def profile(args: argparse.Namespace, variant: str, sets: list[str]) -> dict:
    """The per-stage breakdown of ``args.steps`` batches of ``args.config`` with ``sets`` applied."""
    from fakescope.config import load_config
    from fakescope.data.augment import augment_image, augment_rng
    from fakescope.data.dataset import collate_batch, resize_square
    from fakescope.data.images import load_image_rgb
    from fakescope.data.sampler import BalancedBatchSampler
    from fakescope.data.splits import load_splits
    from fakescope.inference.inputs import detector_inputs
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector
    from fakescope.train.losses import detector_loss
    from fakescope.train.setup import resolve_augment

    os.chdir(REPO)  # the recipes' manifest paths are relative to the repository
    cfg = load_config(args.config, sets)
    tc = cfg.train
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    rows = load_splits(cfg.data)["train"]
    torch.manual_seed(0)
    det = build_detector(cfg.model, input_spec_for(cfg))
    if tc.channels_last:
        det = det.to(memory_format=torch.channels_last)
    aug = resolve_augment(cfg, detector_inputs(det))
    sampler = BalancedBatchSampler([r.label for r in rows], tc.batch_size, seed=cfg.seed)
    sampler.set_epoch(0, 0)
    opt = torch.optim.Adam(
        det.param_groups(tc.lr, tc.backbone_lr_mult), lr=tc.lr, weight_decay=tc.weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=tc.restart_period, eta_min=tc.min_lr
    )
    det.train()
    S = cfg.data.image_size
    t: dict[str, list[float]] = defaultdict(list)
    load_before = os.getloadavg()[0]

    def tick(name: str, t0: float, keep: bool) -> float:
        now = time.perf_counter()
        if keep:
            t[name].append(now - t0)
        return now

    batches = iter(sampler)
    for step in range(args.steps + 1):
        keep = step > 0
        idx = next(batches)
        t0 = time.perf_counter()
        raw = [load_image_rgb(rows[i].path) for i in idx]
        t0 = tick("decode", t0, keep)
        crops = [resize_square(im, S) for im in raw]
        t0 = tick("resize", t0, keep)
        xs = [
            augment_image(c, aug, augment_rng(cfg.seed, 0, i)) if aug else c / 255.0
            for c, i in zip(crops, idx, strict=True)
        ]
        t0 = tick("augment", t0, keep)
        items = [{"image": torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), "label": rows[i].label}
                 for x, i in zip(xs, idx, strict=True)]  # fmt: skip
        batch = collate_batch(items)
        if tc.channels_last:
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        t0 = tick("collate", t0, keep)
        images = batch["image"]
        rgb = det.backbone(images)
        t0 = tick("forward_rgb_backbone", t0, keep)
        fmap = det.dct_stream.frequency_map(images)
        t0 = tick("forward_dct_transform", t0, keep)
        freq = det.dct_stream.cnn(fmap)
        t0 = tick("forward_dct_cnn", t0, keep)
        fused = det.fusion(torch.cat([rgb, freq], dim=1))
        emb = torch.nn.functional.normalize(det.projection(fused), dim=1)
        from fakescope.models.detector import output_dict

        out = output_dict(det.classifier(fused), fused, emb)
        t0 = tick("forward_head", t0, keep)
        loss = detector_loss(det, batch, out, tc)["total"]
        t0 = tick("loss", t0, keep)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t0 = tick("backward", t0, keep)
        torch.nn.utils.clip_grad_norm_(det.parameters(), tc.grad_clip)
        opt.step()
        sched.step(step / 100)
        tick("clip_adam_scheduler", t0, keep)

    med = {k: float(np.median(v)) for k, v in t.items()}
    total = sum(med.values())
    stages = [
        {"stage": k, "ms_per_batch": round(1000 * v, 1), "share": round(v / total, 3)} for k, v in med.items()
    ]
    data_s = sum(med[k] for k in ("decode", "resize", "augment", "collate"))
    top_ops = None
    if args.torch_profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            out = det(batch)
            loss = detector_loss(det, batch, out, tc)["total"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
        top_ops = [
            {"op": e.key, "self_cpu_ms": round(e.self_cpu_time_total / 1000, 1), "calls": e.count}
            for e in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:15]
        ]
    result = {
        "config": args.config, "variant": variant, "overrides": sets, "batch_size": tc.batch_size, "image_size": S,
        "threads": torch.get_num_threads(), "steps_timed": args.steps, "stages": stages,
        "data_ms_per_batch": round(1000 * data_s, 1), "model_ms_per_batch": round(1000 * (total - data_s), 1),
        "faces_per_s_serial": round(tc.batch_size / total, 1),
        "faces_per_s_model_only": round(tc.batch_size / (total - data_s), 1),
        "top_ops": top_ops, "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
    }  # fmt: skip
    for s in stages:
        print(f"{s['stage']:>24s} {s['ms_per_batch']:8.1f} ms  {100 * s['share']:5.1f} %")
    print({k: v for k, v in result.items() if k not in ("stages", "top_ops")})
    if top_ops:
        for o in top_ops:
            print(f"{o['op']:>40s} {o['self_cpu_ms']:8.1f} ms x{o['calls']}")
    return result


def main(argv: list[str] | None = None) -> int:
    from fakescope.utils.atomic import atomic_write_json

    sys.path.insert(0, str(REPO / "benchmarks"))
    from train_speed import NEW_OVERRIDES, OLD_OVERRIDES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configs" / "cpu" / "airl.yaml"))
    p.add_argument("--set", action="append", default=[], help="config override section.key=value")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--variants", nargs="+", choices=["old", "new"], help="train_speed.py's OLD/NEW_OVERRIDES")
    p.add_argument("--torch-profile", action="store_true", help="also list torch.profiler's top operators")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "train_profile.json"))
    args = p.parse_args(argv)
    variants = args.variants or ["as-configured"]
    sets = {"old": OLD_OVERRIDES, "new": OLD_OVERRIDES + NEW_OVERRIDES, "as-configured": []}
    runs = [profile(args, v, sets[v] + args.set) for v in variants]
    command = "python benchmarks/train_profile.py " + " ".join(argv if argv is not None else sys.argv[1:])
    atomic_write_json(args.out, {"command": command, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
