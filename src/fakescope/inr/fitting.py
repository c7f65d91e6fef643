"""Fitting a batch of INRs to their images until each reaches a target PSNR.

INFER §3.3 (MSE over all pixels, full batch) and supplementary A.4 (fit until at least 35 dB), an
anonymous NeurIPS-format submission. Every image starts from the same initialisation, so a unit of layer l means the same thing
across images. Adam is element-wise and the loss is the *sum* of per-image mean MSEs, so each image's
update is exactly the update it would get if fitted alone; batching only changes float rounding.

An image that reaches ``target_psnr`` is frozen at that step: its parameters are copied out before
the optimizer moves, and it leaves the active batch (its rows of the parameters and of Adam's state
are dropped), so the rest of the batch runs on fewer images. Images that never reach the target stop
at ``max_steps`` and are recorded with ``reached=False``; nothing is dropped.

Optional bf16 warm-up (``inr.bf16_warmup_margin_db``, not in the paper): bf16 matmuls are ~3x faster
on a CPU with AVX512-BF16 and on GPUs, but bf16 rounding of the sine layers' inputs (scaled by
omega0 = 30) caps the PSNR a bf16 fit reaches. So the early steps, which only have to get near the
target, run the forward under bf16 autocast, and the batch switches to fp32 for good once every
active image is within the margin of the target. No image stops during the bf16 phase: every stop,
and every recorded PSNR, comes from an fp32 forward. docs/inr.md gives the measured trade.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from fakescope.inr.config import InrConfig
from fakescope.inr.models import InrParams, forward
from fakescope.inr.shipped import fit_lr

__all__ = ["FitRecord", "fit_batch", "psnr_scale", "lr_at"]


@dataclass
class FitRecord:
    """What happened to one image: Adam steps applied, PSNR (dB, [0,1] RGB) of the kept parameters,
    whether that reached the target, whether the result came from the cache, and how many of the
    steps were taken in the bf16 warm-up phase."""

    steps: int
    final_psnr: float
    reached: bool
    cached: bool = False
    bf16_steps: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def psnr_scale(cfg: InrConfig) -> float:
    """Factor between the fitted range's MSE and the MSE on [0,1] (PSNR is always on [0,1])."""
    return 4.0 if cfg.target_range == "symmetric" else 1.0


def lr_at(step: int, cfg: InrConfig) -> float:
    """Exponential decay by ``lr_decay_factor`` over ``lr_decay_steps``, then constant."""
    frac = min(step / cfg.lr_decay_steps, 1.0)
    return fit_lr(cfg) * cfg.lr_decay_factor**frac


def _per_image_mse(
    params: InrParams, coords: torch.Tensor, target: torch.Tensor, cfg: InrConfig
) -> torch.Tensor:
    rgb, _ = forward(params, coords, cfg)
    return (rgb.float() - target).square().mean(dim=(1, 2))


def _psnr(mse: torch.Tensor, scale: float) -> torch.Tensor:
    return 10.0 * torch.log10(scale / mse.detach().clamp_min(1e-20))


_COMPILED: dict[tuple, Callable] = {}


def _loss_fn(cfg: InrConfig) -> Callable:
    if not cfg.compile:
        return _per_image_mse
    # Only the forward+loss is compiled: the optimizer and the lr stay in eager mode, so the lr
    # schedule and the shrinking batch do not force recompiles beyond the dynamic batch dimension.
    key = (cfg.activation, cfg.omega0, cfg.gauss_scale, cfg.wire_omega, cfg.wire_scale)
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(_per_image_mse, dynamic=True)
    return _COMPILED[key]


def _make_leaves(params: InrParams) -> InrParams:
    return InrParams(
        [w.detach().clone().requires_grad_(True) for w in params.weights],
        [b.detach().clone().requires_grad_(True) for b in params.biases],
    )


def _compact(
    params: InrParams, opt: torch.optim.Adam, keep: torch.Tensor
) -> tuple[InrParams, torch.optim.Adam]:
    """Drop finished images from the parameters and from Adam's moments."""
    new = _make_leaves(params.index(keep))
    new_opt = torch.optim.Adam(new.tensors(), lr=opt.param_groups[0]["lr"])
    for old_p, new_p in zip(params.tensors(), new.tensors(), strict=True):
        state = opt.state.get(old_p)
        if state:
            new_opt.state[new_p] = {
                "step": state["step"].clone(),
                "exp_avg": state["exp_avg"][keep].clone(),
                "exp_avg_sq": state["exp_avg_sq"][keep].clone(),
            }
    return new, new_opt


def fit_batch(
    targets: torch.Tensor,
    init: InrParams,
    cfg: InrConfig,
    coords: torch.Tensor,
) -> tuple[InrParams, list[FitRecord]]:
    """Fit B INRs, one per target image.

    ``targets``: [B, N, 3] RGB in the fitted range (see ``cfg.target_range``), on the device.
    ``init``: a one-image initialisation ([1, ...]) copied to every image.
    Returns the kept parameters ([B, ...], detached) and one FitRecord per image, in input order.
    """
    batch = targets.shape[0]
    device = targets.device
    params = _make_leaves(init.to(device).expand(batch))
    opt = torch.optim.Adam(params.tensors(), lr=fit_lr(cfg))
    loss_fn = _loss_fn(cfg)
    scale = psnr_scale(cfg)
    final = InrParams([torch.empty_like(w.detach()) for w in params.weights],
                      [torch.empty_like(b.detach()) for b in params.biases])  # fmt: skip
    records: list[FitRecord | None] = [None] * batch
    active = torch.arange(batch, device=device)
    tgt = targets
    bf16 = cfg.bf16_warmup_margin_db > 0
    bf16_steps = 0

    for step in range(cfg.max_steps + 1):
        if bf16:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                mse = loss_fn(params, coords, tgt, cfg)
            near = _psnr(mse, scale) >= cfg.target_psnr - cfg.bf16_warmup_margin_db
            if bool(near.all()) or step == cfg.max_steps:
                bf16 = False  # for good: from here every step, stop and record is fp32
            else:
                bf16_steps += 1
        if not bf16:
            mse = loss_fn(params, coords, tgt, cfg)
        with torch.no_grad():
            psnr = _psnr(mse, scale)
            done = psnr >= cfg.target_psnr
            if bf16:
                done = torch.zeros_like(done)
            if step == cfg.max_steps:
                done = torch.ones_like(done)
        if bool(done.any()):
            done_local = done.nonzero().squeeze(1)
            done_global = active[done_local]
            with torch.no_grad():
                for dst, src in zip(final.tensors(), params.tensors(), strict=True):
                    dst[done_global] = src.detach()[done_local]
            psnr_cpu = psnr[done_local].tolist()
            for i, p in zip(done_global.tolist(), psnr_cpu, strict=True):
                records[i] = FitRecord(steps=step, final_psnr=p if math.isfinite(p) else float("inf"),
                                       reached=p >= cfg.target_psnr, bf16_steps=bf16_steps)  # fmt: skip
            keep = (~done).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            # Step on the survivors only: the finished images' snapshot is taken, so their rows can go.
            mse = mse[keep]
            params_keep_idx = keep
        else:
            params_keep_idx = None

        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        mse.sum().backward()
        opt.step()

        if params_keep_idx is not None:
            params, opt = _compact(params, opt, params_keep_idx)
            active = active[params_keep_idx]
            tgt = tgt[params_keep_idx]

    assert all(r is not None for r in records)
    return final, records  # type: ignore[return-value]
