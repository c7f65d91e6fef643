"""F3-Net (Qian, Yin, Sheng, Chen and Shao, "Thinking in Frequency: Face Forgery Detection by Mining
Frequency-aware Clues", ECCV 2020, §3.1-3.3).

Two frequency-aware streams, each a copy of the image backbone (``model.backbone``; ``auto`` = the
paper's Xception) whose stem takes the stream's channels:

- **FAD, frequency-aware decomposition (§3.1).** The whole (normalised) image goes through a 2-D DCT
  per colour channel and is split by four filters ``f_i = f_base_i + σ(f_w_i)`` (``σ(x) =
  (1 − e^{−x}) / (1 + e^{−x})``, so each learnable part lies in (−1, 1)): three binary bands of the
  spectrum, low / middle / high, each with a learnable part, and a fixed all-pass band; each filtered
  spectrum goes back through the inverse DCT, giving 3 × 4 = 12 channels.
- **LFS, local frequency statistics (§3.2).** The grey image (0-255) is cut into sliding windows
  (``model.lfs_window`` = 10 px, stride ``model.lfs_stride`` = 2, as published); each window's DCT
  spectrum is split into ``model.lfs_bands`` = 6 bands (again base + σ(learnable)) and each band
  gives ``log10(‖D(p) ⊙ h_i‖₁)``, the paper's Eq. 3: a 6-channel map at half the image size.

Choices (docs/detectors.md):
- **Bands.** The spectrum is indexed by ``u + v`` (anti-diagonals), as in the authors' released
  filters: FAD's low band is ``u + v < N/16``, middle ``N/16 ≤ u + v < N/8``, high the rest; LFS's
  band ``i`` of ``M`` covers ``2w·i/M ≤ u + v < 2w·(i+1)/M``. Learnable parts start at N(0, 0.1²).
- **Stems.** A stream's new stem tiles the pretrained RGB filters over its channels, scaled by 3 / C
  (an input equal on every channel starts with the response a grey image had), and trains with the
  backbone at ``train.backbone_lr_mult``; the filters and the head train at the base rate.
- **Fusion.** The paper's MixBlock (cross-attention between the streams at two depths) is left out,
  as SRM's attention blocks are: the two streams' pooled features are concatenated into one linear
  classifier (dropout 0.5 before it). ``model.f3net_branches`` runs ``fad`` or ``lfs`` alone, the
  paper's single-branch ablations (Table 4).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fakescope.errors import ConfigError, InputError
from fakescope.models.backbones.timm_cnn import TimmBackbone, first_conv, set_first_conv
from fakescope.models.dct import dct_matrix, rgb_to_gray_bt601
from fakescope.models.detector import Detector, output_dict
from fakescope.models.registry import register_detector
from fakescope.models.streams import full_precision

if TYPE_CHECKING:
    from fakescope.models.config import ModelConfig
    from fakescope.models.spec import InputSpec

__all__ = ["F3NetDetector", "FrequencyAwareDecomposition", "LocalFrequencyStatistics", "band_mask"]


def band_mask(size: int, start: float, end: float) -> Tensor:
    """``[size, size]`` 0/1 mask of the DCT positions with ``start <= u + v < end``."""
    idx = torch.arange(size)
    diag = (idx[:, None] + idx[None, :]).float()
    return ((diag >= start) & (diag < end)).float()


def _sigma(x: Tensor) -> Tensor:
    """The paper's σ(x) = (1 − e^{−x}) / (1 + e^{−x}) = tanh(x / 2), in (−1, 1)."""
    return torch.tanh(x / 2)


class _LearnableBands(nn.Module):
    """``K`` filters ``base_k + σ(w_k)`` (``learnable`` says which ``k`` have a ``w``) of one size."""

    def __init__(self, bases: Tensor, learnable: list[bool]) -> None:
        super().__init__()
        self.register_buffer("bases", bases, persistent=False)  # rebuilt from the config on load
        self.register_buffer(
            "learnable_mask", torch.tensor(learnable, dtype=torch.float32).view(-1, 1, 1), persistent=False
        )
        self.weight = nn.Parameter(torch.randn_like(bases) * 0.1)

    def forward(self) -> Tensor:
        return self.bases + _sigma(self.weight) * self.learnable_mask


class FrequencyAwareDecomposition(nn.Module):
    """``[B, C, N, N]`` → ``[B, 4C, N, N]``: the low, middle, high and all-pass bands of each channel,
    back in the image domain (F3-Net §3.1, Eq. 1)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        bases = torch.stack(
            [band_mask(size, 0, size / 16), band_mask(size, size / 16, size / 8),
             band_mask(size, size / 8, 2 * size), band_mask(size, 0, 2 * size)]
        )  # fmt: skip
        self.filters = _LearnableBands(bases, [True, True, True, False])
        self.register_buffer("dct", dct_matrix(size), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        with full_precision(x.device):
            d = self.dct.to(x.device)
            spectrum = d @ x.float() @ d.T  # [B, C, N, N]
            bands = spectrum.unsqueeze(2) * self.filters()  # [B, C, 4, N, N]
            out = d.T @ bands @ d
            return out.flatten(1, 2)  # channel-major: [c0 low, c0 mid, c0 high, c0 all, c1 low, ...]


class LocalFrequencyStatistics(nn.Module):
    """``[B, 3, H, W]`` in [0, 1] → ``[B, M, h, w]``: per sliding window of the 0-255 grey image, the
    log10 L1 norm of its DCT spectrum in each of ``M`` bands (F3-Net §3.2, Eq. 3)."""

    def __init__(self, window: int, stride: int, bands: int) -> None:
        super().__init__()
        self.window, self.stride = window, stride
        bases = torch.stack(
            [band_mask(window, 2 * window * i / bands, 2 * window * (i + 1) / bands) for i in range(bands)]
        )
        self.filters = _LearnableBands(bases, [True] * bands)
        self.register_buffer("dct", dct_matrix(window), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        with full_precision(images.device):
            gray = rgb_to_gray_bt601(images.float()) * 255.0  # [B, 1, H, W]
            b, _, h, w = gray.shape
            pad = (self.window - self.stride) // 2
            patches = F.unfold(gray, self.window, stride=self.stride, padding=pad)  # [B, w*w, L]
            oh = (h + 2 * pad - self.window) // self.stride + 1
            ow = (w + 2 * pad - self.window) // self.stride + 1
            p = patches.transpose(1, 2).reshape(b, oh * ow, self.window, self.window)
            d = self.dct.to(images.device)
            spectrum = (d @ p @ d.T).abs().unsqueeze(2)  # [B, L, 1, w, w]
            energy = (spectrum * self.filters().abs()).sum(dim=(-1, -2))  # [B, L, M]
            stats = torch.log10(energy + 1e-6)
            return stats.transpose(1, 2).reshape(b, -1, oh, ow)


def _widen_stem(backbone: TimmBackbone, channels: int) -> None:
    """Give the backbone's stem ``channels`` inputs: the pretrained RGB filters tiled, scaled by 3/C."""
    conv = first_conv(backbone.model)
    rgb = conv.weight.data
    reps = -(-channels // 3)
    weight = rgb.repeat(1, reps, 1, 1)[:, :channels] * (3.0 / channels)
    wide = copy.deepcopy(conv)  # same class (timm's Conv2dSame pads like TF), kernel, stride
    wide.weight = nn.Parameter(weight.clone())
    wide.in_channels = channels
    set_first_conv(backbone.model, wide)
    backbone.in_chans = channels


@register_detector("f3net")
class F3NetDetector(Detector):
    family: ClassVar[str] = "baseline"
    description = "FAD (DCT bands of the image) and LFS (local DCT statistics) streams, late fusion (F3-Net)"
    paper_ref = "Qian et al. ECCV 2020 §3.1-3.3 (F3-Net)"
    default_backbone: ClassVar[str | None] = "xception"
    inputs = frozenset({"image"})

    def __init__(self, config: ModelConfig, input_spec: InputSpec) -> None:
        super().__init__(config, input_spec)
        m = config
        self.branches = m.f3net_branches
        size = input_spec.image_size
        dims = 0
        self.fad: FrequencyAwareDecomposition | None = None
        self.lfs: LocalFrequencyStatistics | None = None
        self.lfs_backbone: TimmBackbone | None = None
        self.backbone = self._build_backbone()
        if not isinstance(self.backbone, TimmBackbone):
            raise ConfigError(
                f"model.backbone={self.backbone_name}: f3net needs a CNN backbone (xception, lite0, ...)"
            )
        if self.branches in ("both", "fad"):
            self.fad = FrequencyAwareDecomposition(size)
            _widen_stem(self.backbone, 12)
            dims += self.backbone.out_dim
        if self.branches in ("both", "lfs"):
            self.lfs = LocalFrequencyStatistics(m.lfs_window, m.lfs_stride, m.lfs_bands)
            lfs_backbone = self.backbone if self.branches == "lfs" else self._build_backbone()
            _widen_stem(lfs_backbone, m.lfs_bands)
            if self.branches == "both":
                self.lfs_backbone = lfs_backbone
            dims += lfs_backbone.out_dim
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(dims, 2))

    @property
    def display_name(self) -> str:
        name = self.name if self.branches == "both" else f"{self.name}-{self.branches}"
        if self.backbone_name != "xception":
            return f"{name}[xception→{self.backbone_name}]"
        return name

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Both pretrained streams (their widened stems too) at ``train.backbone_lr_mult`` ×."""
        extra = list(self.lfs_backbone.parameters()) if self.lfs_backbone is not None else []
        return list(self.backbone.parameters()) + extra

    def train(self, mode: bool = True) -> F3NetDetector:
        super().train(mode)
        if self.freeze_backbone and self.lfs_backbone is not None:
            self.lfs_backbone.eval()  # model.freeze_backbone freezes both streams' BatchNorm statistics
        return self

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        images = self._get(batch, "image")
        if self.fad is not None and images.shape[-2:] != self.fad.dct.shape:
            raise InputError(
                f"f3net: FAD's DCT is built for {self.fad.dct.shape[0]} px crops (data.image_size), got "
                f"{tuple(images.shape[-2:])}"
            )
        features = []
        if self.fad is not None:
            bands = self.fad(self.backbone.normalize(images)).to(images.dtype)
            features.append(self.backbone.model(bands))
        if self.lfs is not None:
            stream = self.lfs_backbone if self.lfs_backbone is not None else self.backbone
            features.append(stream.model(self.lfs(images).to(images.dtype)))
        pooled = torch.cat(features, dim=1)
        return output_dict(self.head(pooled), pooled)
