"""Feature streams trained from scratch: the INR heatmap encoder (INFER §3.5, anonymous NeurIPS-format
submission), the block-DCT frequency stream (AIRL (Parihar), §III-B), and the shallow FFT / RGB CNNs of
INFER's Table 2 ablation (INFER §4.2). Each maps its input to a fixed-size vector and says its size in ``out_dim``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from fakescope.models.dct import block_dct_highpass, rgb_to_gray_bt601

__all__ = [
    "full_precision",
    "HeatmapEncoder",
    "DctStream",
    "dct_frequency_map",
    "ShallowCnn",
    "FftStream",
    "RgbStream",
    "log_magnitude_spectrum",
]


def full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """A context with autocast switched off on ``device`` (a no-op where autocast does not exist, e.g.
    the ``meta`` device used to count FLOPs)."""
    if device.type in ("cpu", "cuda", "xpu", "mps"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def _conv_block(cin: int, cout: int, stride: int, act: type[nn.Module]) -> nn.Sequential:
    # BatchNorm follows, so the conv's bias would be redundant.
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), act()
    )


def _kaiming_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class HeatmapEncoder(nn.Module):
    """INFER's heatmap encoder (INFER §3.5): stacked 3×3 conv → BatchNorm → GELU,
    ``AdaptiveAvgPool2d(4)``, then FC → LayerNorm, independent of the heatmap size.

    ``mode="channels"`` (default) reads the ``L`` heatmaps as the input channels of one encoder and
    returns ``embed_dim`` features. ``mode="shared"`` follows the paper's "stacked along the batch
    dimension": one encoder with a single input channel runs on every heatmap, and the ``L`` embeddings
    are concatenated (``L × embed_dim`` features).
    """

    def __init__(
        self,
        num_maps: int,
        channels: Sequence[int] = (32, 64, 128),
        stride: int = 2,
        embed_dim: int = 256,
        mode: Literal["channels", "shared"] = "channels",
    ) -> None:
        super().__init__()
        self.num_maps = num_maps
        self.mode = mode
        cin = num_maps if mode == "channels" else 1
        layers = []
        for cout in channels:
            layers.append(_conv_block(cin, cout, stride, nn.GELU))
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(cin * 16, embed_dim)
        self.norm = nn.LayerNorm(embed_dim)
        self.out_dim = embed_dim * (num_maps if mode == "shared" else 1)

    def forward(self, heatmaps: Tensor) -> Tensor:
        if heatmaps.dim() != 4 or heatmaps.shape[1] != self.num_maps:
            raise ValueError(
                f"heatmap encoder expects [B,{self.num_maps},R,R] heatmaps, got {tuple(heatmaps.shape)}"
            )
        b = heatmaps.shape[0]
        x = (
            heatmaps
            if self.mode == "channels"
            else heatmaps.reshape(b * self.num_maps, 1, *heatmaps.shape[-2:])
        )
        z = self.norm(self.fc(self.pool(self.convs(x)).flatten(1)))
        return z if self.mode == "channels" else z.reshape(b, -1)

    def last_conv(self) -> nn.Module:
        return self.convs[-1]


class ShallowCnn(nn.Module):
    """3×3 stride-2 conv → BatchNorm → ReLU blocks, global average pooling, (dropout), Linear; Kaiming init."""

    def __init__(self, in_chans: int, channels: Sequence[int], embed_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers = []
        cin = in_chans
        for cout in channels:
            layers.append(_conv_block(cin, cout, 2, nn.ReLU))
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, embed_dim)
        self.out_dim = embed_dim
        _kaiming_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(self.pool(self.convs(x)).flatten(1)))

    def last_conv(self) -> nn.Module:
        return self.convs[-1]


def dct_frequency_map(
    images: Tensor, cutoff: int = 4, log_magnitude: bool = False, block: int = 8, input_scale: float = 255.0
) -> Tensor:
    """AIRL's frequency-stream input (AIRL §III-B, §IV-B) for ``[B,3,H,W]`` RGB in ``[0,1]``:
    the ``[B,1,H,W]`` high-pass block-DCT map of the BT.601 grey image scaled by ``input_scale``
    (raw mode; 255 = the paper's 0-255 grey values), or ``log(1 + |F|)`` of 0-255 intensities (log
    mode, where ``input_scale`` does not apply). Computed in float32 whatever the autocast state."""
    with full_precision(images.device):
        gray = rgb_to_gray_bt601(images.float())
        freq = block_dct_highpass(gray, cutoff, log_magnitude, block)
        return freq if log_magnitude else freq * input_scale


class DctStream(nn.Module):
    """AIRL's frequency stream (AIRL §III-A/B): BT.601 gray → 8×8 block DCT-II with the
    ``cutoff×cutoff`` low corner zeroed → conv blocks 1→64→128→256 (3×3, stride 2, BN, ReLU) → global
    pooling → dropout → Linear → 256, all Kaiming-initialised and trained from scratch.

    Input scale (AIRL §IV-B: the frequency stream takes the raw grey values, 0-255): batches
    carry ``[0, 1]`` RGB, so the grey image is multiplied by ``input_scale`` (default 255) before the
    DCT. This is not cosmetic: on real face crops the high-pass coefficients of a ``[0, 1]`` image have
    std ≈ 0.01, the bias-free first conv's output variance (~1e-6) then falls below BatchNorm's eps
    (1e-5), and the first BatchNorm cannot normalise (its output std was 0.42 instead of 1 on DFDC
    faces). At 0-255 the variance is ~0.1-1 and BatchNorm works as intended. The DCT is linear, so the
    scale multiplies the coefficient map. ``log_magnitude=True`` already computes ``log(1 + |F|)`` on
    0-255 intensities (see :func:`~fakescope.models.dct.block_dct_highpass`), so ``input_scale`` does
    not apply to it.
    """

    def __init__(
        self,
        cutoff: int = 4,
        block: int = 8,
        log_magnitude: bool = False,
        channels: Sequence[int] = (64, 128, 256),
        embed_dim: int = 256,
        dropout: float = 0.3,
        input_scale: float = 255.0,
    ) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.block = block
        self.log_magnitude = log_magnitude
        self.input_scale = float(input_scale)
        self.cnn = ShallowCnn(1, channels, embed_dim, dropout)
        self.out_dim = embed_dim

    def frequency_map(self, images: Tensor) -> Tensor:
        """The ``[B,1,H,W]`` high-pass block-DCT map of ``[0,1]`` RGB images, on the grey scale
        ``input_scale`` (raw mode) or as ``log(1 + |F|)`` of 0-255 intensities (log mode). Always in
        float32: under mixed precision a bf16 DCT would drown the small high-frequency coefficients in
        rounding."""
        return dct_frequency_map(images, self.cutoff, self.log_magnitude, self.block, self.input_scale)

    def forward(self, images: Tensor) -> Tensor:
        return self.cnn(self.frequency_map(images))

    def last_conv(self) -> nn.Module:
        return self.cnn.last_conv()


def log_magnitude_spectrum(x: Tensor) -> Tensor:
    """Centred ``log(1 + |FFT2(x)|)`` per channel, standardised per image and channel (the spectrum's
    dynamic range spans decades; standardising keeps the CNN's input scale fixed)."""
    spec = torch.fft.fftshift(torch.fft.fft2(x.float(), norm="ortho"), dim=(-2, -1))
    mag = torch.log1p(spec.abs() * 255.0)
    mean = mag.mean(dim=(-2, -1), keepdim=True)
    std = mag.std(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    return ((mag - mean) / std).to(x.dtype)


class FftStream(nn.Module):
    """INFER Table 2's "FFT" modality (INFER §4.2): the image's log-magnitude Fourier spectrum
    through a shallow CNN. ``input="gray"`` uses the BT.601 luma, ``"rgb"`` each colour channel."""

    def __init__(
        self, channels: Sequence[int], embed_dim: int, input: Literal["gray", "rgb"] = "gray"
    ) -> None:
        super().__init__()
        self.input = input
        self.cnn = ShallowCnn(1 if input == "gray" else 3, channels, embed_dim)
        self.out_dim = embed_dim

    def forward(self, images: Tensor) -> Tensor:
        x = rgb_to_gray_bt601(images) if self.input == "gray" else images
        return self.cnn(log_magnitude_spectrum(x))


class RgbStream(nn.Module):
    """INFER Table 2's "RGB" modality (INFER §4.2): the pixels through a shallow CNN."""

    def __init__(self, channels: Sequence[int], embed_dim: int) -> None:
        super().__init__()
        self.cnn = ShallowCnn(3, channels, embed_dim)
        self.out_dim = embed_dim

    def forward(self, images: Tensor) -> Tensor:
        # Centre [0,1] pixels; BatchNorm after the first conv absorbs any remaining scale.
        return self.cnn(images * 2.0 - 1.0)

    def last_conv(self) -> nn.Module:
        return self.cnn.last_conv()
