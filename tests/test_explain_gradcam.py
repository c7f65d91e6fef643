"""Grad-CAM on toy detectors whose fake logit is driven by a known region (CNN maps and ViT tokens)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fakescope.explain.gradcam import GradCamError, gradcam, tokens_to_grid


def _redness_conv(kernel: int, stride: int) -> nn.Conv2d:
    """Channel 0 responds to red pixels, channel 1 to blue ones (a fixed, known filter bank)."""
    conv = nn.Conv2d(3, 2, kernel, stride=stride, padding=0)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(-0.3)
        conv.weight[0, :] = torch.tensor([1.0, -0.5, -0.5])[:, None, None] / kernel**2
        conv.weight[1, :] = torch.tensor([-0.5, -0.5, 1.0])[:, None, None] / kernel**2
    return conv


class RedIsFakeCNN(nn.Module):
    """Fake logit = mean red response - mean blue response, pooled over the whole map.

    So red regions drive the fake logit, blue regions oppose it, and grey regions do neither:
    Grad-CAM must light up where the red is, whatever the position.
    """

    name = "toy_cnn"
    inputs = frozenset({"image"})

    def __init__(self) -> None:
        super().__init__()
        self.conv = _redness_conv(3, 1)

    def gradcam_layer(self) -> nn.Module:
        return self.conv

    def forward(self, batch):
        f = torch.relu(self.conv(batch["image"])).mean(dim=(2, 3))
        fake = f[:, 0] - f[:, 1]
        logits = torch.stack([-fake, fake], dim=1)
        return {"logits": logits, "prob": logits.softmax(1)[:, 1], "features": f}


class RedIsFakeViT(nn.Module):
    """A class token plus a 4x4 grid of patch tokens from an 8-px patch embedding, then a transformer
    block stand-in; the fake logit is the red response averaged over the patch tokens."""

    name = "toy_vit"
    inputs = frozenset({"image"})

    def __init__(self) -> None:
        super().__init__()
        self.embed = _redness_conv(8, 8)
        self.block = nn.Identity()
        self.cls = nn.Parameter(torch.zeros(1, 1, 2))

    def gradcam_layer(self) -> nn.Module:
        return self.block

    def forward(self, batch):
        tok = torch.relu(self.embed(batch["image"])).flatten(2).transpose(1, 2)  # [B,16,2]
        tok = self.block(torch.cat([self.cls.expand(tok.shape[0], -1, -1), tok], dim=1))
        patches = tok[:, 1:].mean(1)
        fake = patches[:, 0] - patches[:, 1]
        logits = torch.stack([-fake, fake], 1)
        return {"logits": logits, "prob": logits.softmax(1)[:, 1], "features": tok[:, 0]}


def _scene(red: list[tuple[slice, slice]], blue: list[tuple[slice, slice]], size: int = 32) -> torch.Tensor:
    img = torch.full((1, 3, size, size), 0.5)
    for ys, xs in red:
        img[0, :, ys, xs] = torch.tensor([0.95, 0.1, 0.1])[:, None, None]
    for ys, xs in blue:
        img[0, :, ys, xs] = torch.tensor([0.1, 0.1, 0.95])[:, None, None]
    return img


def test_cnn_cam_highlights_the_region_that_drives_the_fake_logit():
    image = _scene(red=[(slice(2, 12), slice(2, 12))], blue=[(slice(20, 30), slice(20, 30))])
    cam = gradcam(RedIsFakeCNN(), {"image": image})[0]
    assert cam.shape == (32, 32) and cam.dtype == np.float32
    assert cam.min() >= 0 and np.isclose(cam.max(), 1.0)
    red, blue, grey = cam[3:11, 3:11].mean(), cam[21:29, 21:29].mean(), cam[2:12, 20:30].mean()
    assert red > 0.8 and blue < 0.05 and grey < 0.05, (red, blue, grey)
    # Move the red square: the map follows it.
    moved = gradcam(RedIsFakeCNN(), {"image": _scene([(slice(20, 30), slice(2, 12))], [])})[0]
    assert moved[21:29, 3:11].mean() > 0.8 and moved[3:11, 3:11].mean() < 0.05


def test_vit_tokens_are_reshaped_to_their_grid_and_the_driving_patches_light_up():
    image = _scene(
        red=[(slice(0, 8), slice(0, 8)), (slice(8, 16), slice(8, 16))], blue=[(slice(24, 32), slice(24, 32))]
    )
    cam = gradcam(RedIsFakeViT(), {"image": image}, size=(4, 4))[0]
    assert cam.shape == (4, 4)
    hot = {(0, 0), (1, 1)}
    assert min(cam[r, c] for r, c in hot) > 0.9
    assert max(cam[r, c] for r in range(4) for c in range(4) if (r, c) not in hot) < 0.05


def test_cam_at_the_crop_size_by_default_and_frozen_weights_still_get_gradients():
    model = RedIsFakeCNN()
    for p in model.parameters():
        p.requires_grad_(False)
    cam = gradcam(model, {"image": _scene([(slice(0, 6), slice(0, 6))], [], size=24)})
    assert cam.shape == (1, 24, 24) and cam[0, :6, :6].mean() > 0.5


def test_tokens_to_grid_drops_the_class_token():
    t = torch.arange(17 * 2, dtype=torch.float32).reshape(1, 17, 2)
    g = tokens_to_grid(t)
    assert g.shape == (1, 2, 4, 4)
    assert g[0, 0, 0, 0] == t[0, 1, 0]  # first patch token, not the class token


def test_detector_without_an_image_branch_gets_a_clear_error():
    class NoBranch(RedIsFakeCNN):
        def gradcam_layer(self):
            return None

    with pytest.raises(GradCamError, match="no image branch"):
        gradcam(NoBranch(), {"image": torch.rand(1, 3, 8, 8)})
