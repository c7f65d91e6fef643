"""Which layers autocast leaves in float32 (``train.amp_fp32_depthwise``; docs/training.md, "bf16").

Under ``torch.autocast`` every convolution runs in the autocast dtype. On a CPU with native bf16
(AVX512-BF16), ``torch.profiler`` showed oneDNN's bf16 kernels making AIRL's dense convolutions (the DCT
stream's 3×3 layers, the 1×1 projections) 2–3× faster, but its bf16 depthwise-convolution backward 2–3×
*slower* than float32. In the training loop (``benchmarks/train_speed.py``, idle 2-core CPU) bf16
everywhere gave 50 faces/s against 41.5 in float32, and bf16 with the depthwise layers in float32 57.5.
The same layers must stay float32 wherever the run's detector runs (training, its validation,
``evaluate``, ``detect``), so a face gets one score: training set-up and
:func:`~fakescope.inference.checkpoint.load_detector` both apply this policy.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["apply_amp_policy", "cpu_has_native_bf16", "keep_depthwise_fp32"]

_MARK = "_fakescope_fp32"


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX); without it bf16 is emulated
    and autocast is slower than float32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _fp32_conv_forward(self: nn.Conv2d, x: Tensor) -> Tensor:
    # Autocast off inside, so the kernel sees float32 input and weights; the next autocast op casts back.
    # The class's own forward, not nn.Conv2d's: subclasses such as timm's Conv2dSame pad in theirs.
    with torch.autocast(device_type=x.device.type, enabled=False):
        return type(self).forward(self, x.float())


def keep_depthwise_fp32(model: nn.Module) -> int:
    """Run every grouped ``Conv2d`` of ``model`` (depthwise included) in float32 under autocast; the
    weights, the state dict and the module tree are unchanged. Idempotent; returns how many convolutions
    it covers."""
    n = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1:
            if not getattr(m, _MARK, False):
                m.forward = types.MethodType(_fp32_conv_forward, m)
                setattr(m, _MARK, True)
            n += 1
    return n


def apply_amp_policy(model: nn.Module, train_cfg: Any) -> int:
    """The run's autocast layer policy (``train.amp`` with ``train.amp_fp32_depthwise``) on ``model``;
    returns the number of layers kept in float32 (0 when the run does not autocast)."""
    if getattr(train_cfg, "amp", False) and getattr(train_cfg, "amp_fp32_depthwise", False):
        return keep_depthwise_fp32(model)
    return 0
