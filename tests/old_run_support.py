"""Deterministic weights and inputs for the old-run fixtures (tests/fixtures/before_input_spec/).

Nothing here draws random numbers: every weight and input is a closed-form function of its name and
position, so the fixture script (run once with the fakescope that saved the old runs) and the tests
(run with today's) compute the same tensors. Only plain torch and numpy are used, never fakescope's
own API, which is what changed between the two.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "before_input_spec"

#: Random-weight backbones small enough for a test; INFER's family and the CLIP baselines take CLIP's.
CLIP_DETECTORS = {"infer", "clip", "clip_fft", "clip_rgb_fft", "heatmaps", "univfd", "wavelet_clip"}
IMAGE_SIZE = 32
#: Not the default (3): a detector that took the heatmap count from anywhere but the run's config
#: would build a heatmap encoder that the saved weights do not fit.
HEATMAP_COUNT = 2


def tiny_overrides(name: str) -> list[str]:
    """The config overrides of the fixture's tiny ``name`` detector, at 32 px with 2 INR heatmaps."""
    backbone = "clip_tiny" if name in CLIP_DETECTORS else "efficientnet_tiny"
    return [
        f"model.name={name}",
        f"model.backbone={backbone}",
        "model.pretrained=false",
        f"inr.depth={HEATMAP_COUNT}",
        f"data.image_size={IMAGE_SIZE}",
    ]


def _wave(n: int, key: str) -> torch.Tensor:
    phase = (zlib.crc32(key.encode()) % 1000) / 100.0
    return torch.sin(torch.arange(n, dtype=torch.float64) * 0.618 + phase)


def fill_deterministic(module: torch.nn.Module) -> None:
    """Overwrite every parameter and BatchNorm statistic with a closed-form value of its name; other
    buffers (fixed DCT, SRM and wavelet filters) keep the values the constructor gave them."""
    params = dict(module.named_parameters())
    with torch.no_grad():
        for key, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            wave = _wave(tensor.numel(), key).reshape(tensor.shape)
            if key.endswith("running_var"):
                value = 1.0 + 0.5 * wave.abs()
            elif key.endswith("running_mean"):
                value = 0.1 * wave
            elif key in params and tensor.dim() >= 2:
                value = wave / max(1.0, (tensor.numel() / tensor.shape[0]) ** 0.5)
            elif key in params and key.endswith("weight"):
                value = 1.0 + 0.1 * wave
            elif key in params:
                value = 0.1 * wave
            else:
                continue
            tensor.copy_(value.to(tensor.dtype))


def images(n: int = 4, size: int = IMAGE_SIZE) -> torch.Tensor:
    """``[n,3,size,size]`` in [0,1]: a different smooth pattern per image and channel."""
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")  # fmt: skip
    out = [
        [0.5 + 0.5 * torch.sin(x * (0.3 + 0.1 * i) + y * (0.2 + 0.05 * c) + i + c) for c in range(3)]
        for i in range(n)
    ]
    return torch.stack([torch.stack(chans) for chans in out]).float()


def crops(n: int = 4, size: int = IMAGE_SIZE) -> list[np.ndarray]:
    """:func:`images` as uint8 ``H×W×3`` face crops."""
    arr = (images(n, size) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [np.ascontiguousarray(a) for a in arr]


def heatmaps(n: int = 4, count: int = HEATMAP_COUNT, size: int = IMAGE_SIZE) -> torch.Tensor:
    """``[n,count,size,size]`` zero-centred maps standing in for INR heatmaps."""
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")  # fmt: skip
    return torch.stack(
        [
            torch.stack([torch.cos(x * (0.25 + 0.1 * k) - y * 0.15 * (i + 1) + k) for k in range(count)])
            for i in range(n)
        ]  # fmt: skip
    ).float()


def signature(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """Number of state-dict entries and a SHA-256 of every key with its shape and dtype."""
    lines = "\n".join(f"{k}:{tuple(v.shape)}:{v.dtype}" for k, v in sorted(state.items()))
    return {"entries": len(state), "sha256": hashlib.sha256(lines.encode()).hexdigest()}
