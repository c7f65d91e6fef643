"""`fakescope train`: parse arguments, call :func:`fakescope.train.trainer.train`."""

from __future__ import annotations

import argparse

from fakescope.cli.common import add_config_arguments, config_from_args

DESCRIPTION = """Train a detector from a YAML config (see configs/).

Writes RUN_DIR/config.yaml, log.csv (per epoch), steps.csv (per step: loss, LR of each parameter
group), and checkpoints/{best,last}.safetensors + .json. The best checkpoint is picked on the
validation split only; the test split is never read. Re-run with --resume to continue an
interrupted run from checkpoints/last (same final weights as an uninterrupted run).

Multi-GPU / multi-process: torchrun --nproc_per_node N -m fakescope train --config C
(NCCL on CUDA, Gloo on CPU).

examples:
  fakescope train --config configs/cpu/airl.yaml --out runs/airl_cpu
  fakescope train --config configs/airl.yaml --device cuda --set train.batch_size=64
  fakescope train --config configs/cpu/airl.yaml --out runs/airl_cpu --resume
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, required=True)
    p.add_argument("--out", default=None, help="run directory (default: <output_dir>/<name> from the config)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fakescope.train.trainer import train
    from fakescope.utils.paths import require_output_dir

    cfg = config_from_args(args)
    # Before any work (the data check, the model): a run folder that cannot be written costs one line.
    if args.out is not None:
        require_output_dir(args.out, "--out")
    else:
        require_output_dir(Path(cfg.output_dir) / cfg.name, "the run folder (output_dir/name)")
    result = train(cfg, args.out, resume=args.resume)
    print(
        f"run {result.run_dir}: best val AUC {result.best_val_auc:.4f} at epoch {result.best_epoch} "
        f"(threshold {result.val_threshold:.4f}); {result.epochs_run} epochs, {result.steps} steps"
        f"{', stopped early' if result.stopped_early else ''}"
        f"{' (time-cut by train.max_minutes: not the recipe result; --resume continues)' if result.time_cut else ''}"
    )
    return 0
