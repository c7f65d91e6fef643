"""The end-to-end demo on an embedded stand-in set: no download, no ``../shared``.

**The data is a stand-in, not a benchmark.** It is built from what installed packages ship:

- *real*: the 100 face crops of ``skimage.data.lfw_subset()`` (Labeled Faces in the Wild, 25×25
  grayscale), upscaled to ``size`` and given a fixed, seeded sensor grain (σ = ``grain`` / 255) so they
  carry camera-like high-frequency texture;
- *fake*: a **blended face swap** between the two faces of a pair. The donor's inner face (an ellipse
  over eyes, nose and mouth) is colour-matched to the target, passed through a *generator-style*
  resampling (area down-sampling by ``gen_factor`` then nearest-neighbour up-sampling, the 2×
  checkerboard trace of transposed-convolution decoders), and pasted with a feathered elliptical mask.
  The pasted region therefore lacks the grain and carries upsampling periodicity, and its border is a
  blend seam: the three kinds of cue (texture, frequency, boundary) that real face swaps leave.

Faces ``2k`` and ``2k+1`` form pair ``k``; the swaps ``2k ← 2k+1`` and ``2k+1 ← 2k`` are its fakes, and
the pair is the ``group`` (so a split by group never puts one identity on both sides).

After building the data, :func:`run_demo` runs the whole path: ``fit-inr``, training of a tiny
INFER-family and a tiny AIRL-family detector, ``evaluate``, and ``detect`` with an HTML report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fakescope.data.manifest import ManifestRow, write_manifest
from fakescope.utils.atomic import atomic_write_bytes, atomic_write_text

__all__ = ["StandinConfig", "STANDIN_NOTICE", "build_standin_dataset", "face_swap", "standin_photo"]

STANDIN_NOTICE = (
    "STAND-IN DATA, NOT A BENCHMARK: real = scikit-image's LFW subset faces, fake = a synthetic blended "
    "face swap with generator-style resampling (fakescope.demo). Scores on it say the pipeline runs, "
    "not how well a detector finds real deepfakes."
)


@dataclass(frozen=True)
class StandinConfig:
    size: int = 64
    n_pairs: int = 50
    grain: float = 4.0
    gen_factor: int = 2
    feather: float = 0.08
    seed: int = 0


def _lfw_faces() -> np.ndarray:
    from skimage.data import lfw_subset

    # lfw_subset() holds 100 faces followed by 100 non-face patches.
    return (lfw_subset()[:100] * 255.0).round().astype(np.uint8)


def _upscale(gray: np.ndarray, size: int) -> np.ndarray:
    up = cv2.resize(gray, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    return np.repeat(up[..., None], 3, axis=2)


def _ellipse_mask(size: int, feather: float) -> np.ndarray:
    # The inner face of a tight LFW crop: eyes, nose and mouth, not the hair line or the ears.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    r = np.sqrt(((xx - 0.5) / 0.30) ** 2 + ((yy - 0.56) / 0.36) ** 2)
    return np.clip((1.0 + feather - r) / (2 * feather), 0.0, 1.0)[..., None]


def _add_grain(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return img + rng.normal(0.0, sigma, size=img.shape[:2])[..., None].astype(np.float32)


def face_swap(
    target: np.ndarray, donor: np.ndarray, cfg: StandinConfig, rng: np.random.Generator
) -> np.ndarray:
    """Paste ``donor``'s inner face on ``target`` (both float32 HxWx3 in [0, 255], same size):
    colour transfer inside the mask, generator-style resampling, feathered elliptical blend."""
    size = target.shape[0]
    mask = _ellipse_mask(size, cfg.feather)
    inside = mask[..., 0] > 0.5
    d = donor.copy()
    # Reinhard-style statistics transfer so the seam is a texture cue, not a brightness jump.
    d_mean, d_std = d[inside].mean(0), d[inside].std(0) + 1e-3
    t_mean, t_std = target[inside].mean(0), target[inside].std(0) + 1e-3
    d = (d - d_mean) / d_std * t_std + t_mean
    small = cv2.resize(d, (size // cfg.gen_factor,) * 2, interpolation=cv2.INTER_AREA)
    d = cv2.resize(small, (size, size), interpolation=cv2.INTER_NEAREST)
    target = _add_grain(target, cfg.grain, rng)
    return mask * d + (1.0 - mask) * target


def _to_png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(
        ".png", cv2.cvtColor(np.clip(img, 0, 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
    )
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def build_standin_dataset(out_dir: str | os.PathLike[str], cfg: StandinConfig | None = None) -> Path:
    """Write ``real/*.png``, ``fake/*.png``, ``manifest.csv`` (``path,label,group,method``) and
    ``STANDIN.txt`` under ``out_dir``; returns the manifest path. Deterministic for a given config."""
    cfg = cfg or StandinConfig()
    out = Path(out_dir)
    faces = _lfw_faces()
    n_pairs = min(cfg.n_pairs, len(faces) // 2)
    rng = np.random.default_rng(cfg.seed)
    rows: list[ManifestRow] = []
    for k in range(n_pairs):
        a, b = (_upscale(faces[2 * k + i], cfg.size) for i in (0, 1))
        group = f"pair{k:03d}"
        for i, (target, donor) in enumerate(((a, b), (b, a))):
            idx = 2 * k + i
            real = _add_grain(target, cfg.grain, rng)
            fake = face_swap(target, donor, cfg, rng)
            for label, img, sub, method in ((0, real, "real", ""), (1, fake, "fake", "blend_swap")):
                path = out / sub / f"lfw{idx:03d}.png"
                atomic_write_bytes(path, _to_png(img))
                rows.append(
                    ManifestRow(path=str(path), label=label, group=group, method=method, dataset="standin")
                )
    atomic_write_text(
        out / "STANDIN.txt", STANDIN_NOTICE + "\n\nsettings: " + json.dumps(cfg.__dict__) + "\n"
    )
    return write_manifest(rows, out / "manifest.csv")


def standin_photo() -> np.ndarray:
    """A real photograph with a face, shipped with scikit-image (NASA astronaut Eileen Collins), used to
    show ``detect`` on an uncropped image: face detection and alignment run on it."""
    from skimage.data import astronaut

    return np.ascontiguousarray(astronaut()[..., :3])
