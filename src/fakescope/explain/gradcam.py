"""Grad-CAM (Selvaraju et al., 2017) for any registered detector.

Both papers explain their detectors with Grad-CAM: INFER on its CLIP/RGB branch (anonymous
NeurIPS-format submission, supplementary A.8, Fig. 12) and AIRL on its RGB stream (Parihar, §VI-A). The hook sits on
``detector.gradcam_layer()`` (docs/CONTRACTS.md); the target is the *fake* logit, so a bright region is
one whose activation pushes the score towards "fake".

CNN layers give ``[B, C, h, w]`` maps. Transformer layers give tokens ``[B, N, C]``: the leading
class/register tokens are dropped and the patch tokens reshaped to their ``g × g`` grid, so ViT-style
CLIP backbones work the same way.

Written with plain forward/tensor hooks rather than the ``grad-cam`` package: the detectors take a
batch *dict* and return a dict, which that package's ``model(tensor)`` call does not fit, and the method
itself is a weighted sum of activations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fakescope.errors import FakescopeError

__all__ = ["GradCamError", "gradcam", "tokens_to_grid"]

FAKE = 1


class GradCamError(FakescopeError):
    """Grad-CAM cannot run on this detector or layer (no hook layer, unexpected activation shape)."""


def tokens_to_grid(tokens: torch.Tensor) -> torch.Tensor:
    """``[B, N, C]`` transformer tokens -> ``[B, C, g, g]`` patch grid.

    Leading tokens that do not belong to the square patch grid (the class token, register tokens)
    are dropped: the grid is the largest ``g`` with ``g*g <= N`` such that ``N - g*g`` is small (< 8).
    """
    b, n, c = tokens.shape
    g = math.isqrt(n)
    extra = n - g * g
    if g == 0 or extra >= 8:
        raise GradCamError(f"Grad-CAM: cannot arrange {n} tokens into a square patch grid")
    return tokens[:, extra:, :].transpose(1, 2).reshape(b, c, g, g)


def _as_maps(t: torch.Tensor) -> torch.Tensor:
    if t.dim() == 4:
        return t
    if t.dim() == 3:
        return tokens_to_grid(t)
    raise GradCamError(
        f"Grad-CAM: the hooked layer gives a {t.dim()}-d output {tuple(t.shape)}; "
        "expected [B,C,h,w] feature maps or [B,N,C] tokens"
    )


def _first_tensor(output: Any) -> torch.Tensor:
    # Hugging Face blocks return tuples (hidden_states, attentions, ...); the first item is the activation.
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if hasattr(output, "last_hidden_state"):
        return output.last_hidden_state
    raise GradCamError(f"Grad-CAM: the hooked layer returns {type(output).__name__}, not a tensor")


def gradcam(
    detector: nn.Module,
    batch: dict[str, Any],
    layer: nn.Module | None = None,
    target_class: int = FAKE,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Grad-CAM maps for every image of ``batch``: float32 ``[B, H, W]`` in ``[0, 1]``.

    ``layer`` defaults to ``detector.gradcam_layer()``. ``size`` defaults to the side of
    ``batch["image"]`` (the crop size). Each map is ReLU(Σ_c α_c A_c) with α_c the spatial mean of
    ∂logit/∂A_c, bilinearly resized, then divided by its maximum (an all-zero map stays zero: nothing in
    that layer pushes the score towards the target class).
    """
    if layer is None:
        getter = getattr(detector, "gradcam_layer", None)
        layer = getter() if callable(getter) else None
    if layer is None:
        name = getattr(detector, "name", type(detector).__name__)
        raise GradCamError(
            f"Grad-CAM: detector {name!r} has no image branch to hook (gradcam_layer() is None)"
        )
    if size is None:
        h, w = batch["image"].shape[-2:]
        size = (int(h), int(w))

    captured: dict[str, torch.Tensor] = {}

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        act = _first_tensor(output)
        captured["act"] = act
        if act.requires_grad:
            act.register_hook(lambda grad: captured.__setitem__("grad", grad))

    batch = dict(batch)
    # A frozen backbone (CLIP) has no parameter that needs a gradient, so without this the graph would
    # never be built past the input and the hooked activation would get no gradient.
    batch["image"] = batch["image"].detach().clone().requires_grad_(True)
    was_training = detector.training
    detector.eval()
    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            out = detector(batch)
            logits = out["logits"]
            detector.zero_grad(set_to_none=True)
            logits[:, target_class].sum().backward()
    finally:
        handle.remove()
        detector.train(was_training)
    if "act" not in captured:
        raise GradCamError(
            "Grad-CAM: the hooked layer was not called during the forward pass "
            "(does the detector use cached features instead of the image?)"
        )
    if "grad" not in captured:
        raise GradCamError("Grad-CAM: no gradient reached the hooked layer")

    acts = _as_maps(captured["act"].detach()).float()
    grads = _as_maps(captured["grad"].detach()).float()
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * acts).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1)[:, None, None]
    cam = torch.where(peak > 1e-12, cam / peak.clamp_min(1e-12), torch.zeros_like(cam))
    return cam.clamp(0, 1).cpu().numpy().astype(np.float32)
