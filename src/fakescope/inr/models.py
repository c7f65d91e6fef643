"""Batched implicit neural representations: B independent MLPs evaluated as one computation.

INFER §3.3 (anonymous NeurIPS-format submission): h_0 = x, h_l = phi(W_l h_{l-1} + b_l) for l = 1..L-1, s(x) = W_L h_{L-1} + b_L.
Every weight carries a leading batch dimension ([B, out, in]) and layers run as batched matmuls, so
B images are fitted at once on a GPU; B = 1 is the per-image path used by CPU workers.

Activations (supplementary A.1, Table 3):
- ``sine``  SIREN (Sitzmann et al. 2020): sin(omega0 * z), with SIREN's initialisation.
- ``gauss`` Gaussian (Ramasinghe & Lucey 2022): exp(-(s * z)^2).
- ``wire``  WIRE complex Gabor wavelet (Saragadam et al. 2023): exp(i*omega*z - |s*z|^2); hidden
  layers and the output layer are complex, the output is its real part.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from fakescope.errors import ConfigError, InputError
from fakescope.inr.config import INIT_MATCHING_FIELDS, InrConfig
from fakescope.inr.shipped import resolve_init_file
from fakescope.utils.atomic import atomic_write_bytes

__all__ = ["InrParams", "coordinate_grid", "init_params", "load_init", "save_init", "forward", "layer_shapes",
           "INIT_MATCHING_FIELDS"]  # fmt: skip


@dataclass
class InrParams:
    """Per-layer weights [B, out, in] and biases [B, out]; the last layer is the linear output."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]

    @property
    def batch(self) -> int:
        return self.weights[0].shape[0]

    def tensors(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def index(self, idx: torch.Tensor | slice) -> InrParams:
        return InrParams([w[idx] for w in self.weights], [b[idx] for b in self.biases])

    def expand(self, batch: int) -> InrParams:
        """Copy a one-image initialisation to ``batch`` images (every image starts identical)."""
        return InrParams(
            [w.expand(batch, -1, -1).clone() for w in self.weights],
            [b.expand(batch, -1).clone() for b in self.biases],
        )

    def to(self, device: torch.device | str) -> InrParams:
        return InrParams([w.to(device) for w in self.weights], [b.to(device) for b in self.biases])


def layer_shapes(cfg: InrConfig) -> list[tuple[int, int]]:
    """(out, in) per layer: 2 -> width, (depth-1) x width -> width, width -> 3."""
    dims = [2] + [cfg.width] * cfg.depth + [3]
    return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]


def coordinate_grid(resolution: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Pixel centres on [-1, 1]^2 as (x, y) pairs in row-major pixel order, shape [R*R, 2]."""
    axis = torch.linspace(-1.0, 1.0, resolution, device=device)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def _layer_is_complex(cfg: InrConfig, layer: int) -> bool:
    # WIRE keeps the first layer real (real coordinates in) and every later layer complex.
    return cfg.activation == "wire" and layer > 0


def init_params(cfg: InrConfig, seed: int | None = None) -> InrParams:
    """One image's initialisation ([1, out, in]) from a fixed seed, identical on every process/device.

    SIREN (Sitzmann et al. 2020, §3.2): first layer W ~ U(-1/in, 1/in); later layers
    W ~ U(-sqrt(6/in)/omega0, sqrt(6/in)/omega0). Gauss and WIRE use PyTorch's nn.Linear default
    U(-1/sqrt(in), 1/sqrt(in)) as their reference code does. Biases: U(-1/sqrt(in), 1/sqrt(in)).
    Generated on the CPU with its own generator so the init does not depend on the global RNG.
    """
    gen = torch.Generator().manual_seed(cfg.init_seed if seed is None else seed)
    weights, biases = [], []
    for layer, (n_out, n_in) in enumerate(layer_shapes(cfg)):
        if cfg.activation == "sine":
            bound = 1.0 / n_in if layer == 0 else math.sqrt(6.0 / n_in) / cfg.omega0
        else:
            bound = 1.0 / math.sqrt(n_in)
        bias_bound = 1.0 / math.sqrt(n_in)

        def uniform(shape: tuple[int, ...], b: float) -> torch.Tensor:
            return (torch.rand(shape, generator=gen) * 2 - 1) * b

        w = uniform((1, n_out, n_in), bound)
        b = uniform((1, n_out), bias_bound)
        if _layer_is_complex(cfg, layer):
            w = torch.complex(w, uniform((1, n_out, n_in), bound))
            b = torch.complex(b, uniform((1, n_out), bias_bound))
        weights.append(w)
        biases.append(b)
    return InrParams(weights, biases)


def save_init(params: InrParams, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Save a one-image initialisation as safetensors (``layers.{i}.weight`` [out, in], ``.bias``),
    written atomically, with optional string metadata (a learned init records what it fits)."""
    tensors = {}
    for i, (w, b) in enumerate(zip(params.weights, params.biases, strict=True)):
        tensors[f"layers.{i}.weight"] = w[0].contiguous()
        tensors[f"layers.{i}.bias"] = b[0].contiguous()
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def load_init(cfg: InrConfig) -> InrParams:
    """The shared initialisation: ``cfg.init_file`` resolved by :func:`~fakescope.inr.shipped.resolve_init_file`
    (the shipped learned init, a file, or none), else the seeded SIREN/Gauss/WIRE init."""
    path = resolve_init_file(cfg)
    if path is None:
        return init_params(cfg)
    if not path.is_file():
        raise ConfigError(f"inr.init_file: {path} not found")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as err:
        raise InputError(f"{path}: not a readable safetensors initialisation ({err})") from None
    if "inr" in meta:  # written by `fakescope learn-inr-init`: it must match this INR
        made_for = json.loads(meta["inr"])
        wrong = [f"{k}={made_for[k]!r} (config: {getattr(cfg, k)!r})"
                 for k in INIT_MATCHING_FIELDS if k in made_for and made_for[k] != getattr(cfg, k)]  # fmt: skip
        if wrong:
            raise ConfigError(f"inr.init_file {path}: learned for a different INR: " + ", ".join(wrong))
    weights, biases = [], []
    for i, (n_out, n_in) in enumerate(layer_shapes(cfg)):
        try:
            w, b = tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"]
        except KeyError as err:
            raise InputError(f"{path}: missing tensor {err.args[0]!r}") from None
        if tuple(w.shape) != (n_out, n_in) or tuple(b.shape) != (n_out,):
            raise InputError(
                f"{path}: layers.{i} has shape {tuple(w.shape)}, but inr.width={cfg.width}/"
                f"depth={cfg.depth} needs {(n_out, n_in)}"
            )
        weights.append(w[None])
        biases.append(b[None])
    return InrParams(weights, biases)


def _activate(z: torch.Tensor, cfg: InrConfig) -> torch.Tensor:
    if cfg.activation == "sine":
        return torch.sin(cfg.omega0 * z)
    if cfg.activation == "gauss":
        return torch.exp(-((cfg.gauss_scale * z) ** 2))
    # WIRE: complex Gabor wavelet exp(i*omega*z - |s*z|^2)
    return torch.exp(1j * cfg.wire_omega * z - (cfg.wire_scale * z).abs().square())


class _SineLayer(torch.autograd.Function):
    """sin(omega0 * (h W^T + b)) for [B, N, in] inputs, with a hand-written backward.

    omega0 is folded into the small weight matrix (not applied to the big [B, N, width] tensor), and
    the backward reuses the saved pre-activation: one cos and one multiply over the big tensor where
    autograd's generic graph takes four elementwise passes. ``grad_dtype`` (``inr.bf16_backward``)
    runs the two backward matmuls in bf16: the forward, the loss and so every PSNR and stop stay fp32;
    only the gradient Adam sees is rounded (Adam normalises its scale anyway).
    """

    @staticmethod
    def forward(ctx, h, w, b, omega0: float, grad_dtype: torch.dtype | None):  # type: ignore[override]
        ws = w * omega0
        z = torch.baddbmm((b * omega0).unsqueeze(1), h, ws.transpose(1, 2))
        ctx.save_for_backward(h, ws, z)
        ctx.omega0, ctx.grad_dtype = omega0, grad_dtype
        ctx.dtypes = (h.dtype, w.dtype, b.dtype)
        return torch.sin(z)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        h, ws, z = ctx.saved_tensors
        h_dtype, w_dtype, b_dtype = ctx.dtypes
        gz = torch.cos(z).mul_(grad)  # dL/d(omega0 z)
        cdt = ctx.grad_dtype or gz.dtype
        gzc = gz.to(cdt)
        gw = torch.bmm(gzc.transpose(1, 2), h.to(cdt)).to(w_dtype).mul_(ctx.omega0)
        gb = gz.sum(dim=1).to(b_dtype).mul_(ctx.omega0)
        gh = torch.bmm(gzc, ws.to(cdt)).to(h_dtype) if ctx.needs_input_grad[0] else None
        return gh, gw, gb, None, None


def forward(
    params: InrParams, coords: torch.Tensor, cfg: InrConfig, return_activations: bool = False
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Evaluate B INRs at shared coordinates [N, 2].

    Returns RGB [B, N, 3] and, if asked, each activated layer's output [B, N, width] (complex for
    WIRE's hidden layers), i.e. the h_l of §3.4.3 from which the heatmaps are taken.
    """
    b = params.batch
    h = coords.unsqueeze(0).expand(b, -1, -1)
    acts: list[torch.Tensor] = []
    last = len(params.weights) - 1
    grad_dtype = torch.bfloat16 if cfg.bf16_backward else None
    for layer, (w, bias) in enumerate(zip(params.weights, params.biases, strict=True)):
        if h.dtype != w.dtype and not torch.is_autocast_enabled(h.device.type):
            h = h.to(w.dtype)
        if cfg.activation == "sine" and layer < last:
            h = _SineLayer.apply(h, w, bias, cfg.omega0, grad_dtype)
            if return_activations:
                acts.append(h)
            continue
        z = torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
        if layer == last:
            rgb = z.real if z.is_complex() else z
            return rgb, acts
        h = _activate(z, cfg)
        if return_activations:
            acts.append(h)
    raise AssertionError("unreachable: an INR has at least one layer")
