"""Distributed data parallel set-up under ``torchrun`` (docs/design.md, "Scale": training uses DDP).

``torchrun --nproc_per_node N -m fakescope train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; without them everything runs in one process and these helpers are no-ops. The backend
is NCCL on CUDA and Gloo on CPU (``train.ddp_backend`` overrides it); each CUDA rank uses
``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_distributed", "barrier", "all_gather_objects", "cleanup_distributed"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(
    device: torch.device, backend: str = "auto", timeout: timedelta | None = None
) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun; returns the rank info and this rank's device.
    ``timeout``: how long collectives (a barrier) wait; None keeps torch's default."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        extra = {"timeout": timeout} if timeout is not None else {}
        dist.init_process_group(backend=backend, rank=rank, world_size=world, **extra)
    return DistInfo(rank=rank, world_size=world, local_rank=local), device


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order (a list of one when not distributed)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def cleanup_distributed(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
