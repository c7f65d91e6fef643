"""Self-blended training fakes made from real faces alone: SBI (Shiohara & Yamasaki, CVPR 2022, §3)
and Face X-ray's blended images (Li et al., CVPR 2020, §3.2).

Both blend a *source* face into a *target* real face through a soft face mask ``M``:
``fake = M * source + (1 - M) * target``.

- **SBI** (``kind="sbi"``): the source is the target itself, altered by SBI's source-target generator
  (§3.1), at one of two strengths (``sbi_augment``, ``train.sbi_augment``):

  - ``strong`` (fakescope's first reading, the default so earlier runs stay reproducible): RGB shift
    ±20, hue ±0.3 rad, saturation and value ±30 %, brightness and contrast ±10 %, each at p 0.3, a
    sharpness change (down-scale by 0.7-1 and back) at p 0.5, a translation of ±3 % of the side and a
    scale of 0.95-1.05 about the face centre. Reading the code's HSV limits as radians and fractions
    makes casts strong enough to be a shortcut a detector can learn instead of the blend.
  - ``sbi_code`` (the authors' released code, read on the scales its augmentation library uses): RGB
    shift ±20 at p 0.3; hue, saturation and value shifted by at most ±0.3 of their 0-179 / 0-255 uint8
    scales (so nearly nothing); brightness and contrast ±10 % (``x·(1+c) + 255·b``); then always one
    of a down-scale by 2 or 4 (nearest, then linear back up) or a sharpening (3×3 kernel, alpha
    0.2-0.5, lightness 0.5-1); then a translation of ±3 % across and ±1.5 % down, and a scale of
    0.95-1/0.95. The mask generator (§3.2) takes the landmark convex hull, deforms it (independent x / y
  scaling 0.9-1.1 and a random erosion or dilation), blurs it with a random Gaussian (σ 2-6 % of the
  side) and scales it by a blend ratio drawn from {0.25, 0.5, 0.75, 1, 1, 1}.
- **X-ray** (``kind="xray"``): the source is *another* real face, the one whose landmarks lie nearest
  (Face X-ray §3.2 "nearest search"), taken from ``donors``; its colours are matched to the target's
  inside the mask (mean and std per channel, §3.2 "colour correction"), then it is blended with the
  same deformed, blurred mask. The mask ``M`` is the X-ray target; :func:`xray_boundary` gives the
  paper's ``B = 4 · M · (1 - M)``.

Choice (SBI's code alters source or target at random): only the source is ever altered, so the fake
equals the real face exactly wherever ``M = 0``: all evidence sits inside the (blurred) mask, which
the tests check pixel by pixel.

**Landmarks.** The mask hull is the convex hull of the crop's 68 landmarks when it has them
(``train.synthetic_landmarks: dlib68``, :mod:`fakescope.preprocess.landmarks68`; SBI §3.2 uses dense
landmarks), so it follows each face's jaw and brows. Otherwise it is built from the crop's 5 landmarks
(eyes, nose tip, mouth corners), extended to the forehead, cheeks and chin. ``fakescope prepare`` stores them per crop
(``landmarks.csv``, ``x*_aligned`` columns); for other crops the trainer re-detects them
(``train.synthetic_landmarks``, :mod:`fakescope.preprocess.landmarks`); crops without them (no face
found, or ``train.synthetic_landmarks: layout``) use the fixed 5 points of their crop layout
(``train.synthetic_face_layout``): ``aligned`` = :data:`CANONICAL_LANDMARKS`, where ``prepare``'s
alignment puts every face (ArcFace template, 30 % margin:
``fakescope.preprocess.align.template_landmarks(1, 0.3)``); ``tight`` = :data:`TIGHT_LANDMARKS`, the
median landmarks of the shared sets' tight crops (which ship without a landmarks file). The fixed
points are the typical face, so the mask is the face region up to that face's offset from it.

Everything is deterministic given the ``numpy.random.Generator`` passed in
(:func:`synthetic_rng`: seed, epoch, index).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

__all__ = [
    "SyntheticKind",
    "SbiAugment",
    "CANONICAL_LANDMARKS",
    "TIGHT_LANDMARKS",
    "FALLBACK_LANDMARKS",
    "read_aligned_landmarks",
    "SyntheticFakes",
    "BlendResult",
    "synthetic_rng",
    "five_points",
    "hull_points",
    "face_mask",
    "deform_mask",
    "sbi_source",
    "match_colours",
    "nearest_donor",
    "blend",
    "make_sbi",
    "make_xray",
    "xray_boundary",
]

SyntheticKind = Literal["sbi", "xray"]
SbiAugment = Literal["strong", "sbi_code"]

#: The 5 aligned landmarks as fractions of the crop side (``template_landmarks(1, margin=0.3)``): left
#: eye, right eye, nose tip, left and right mouth corner, (x, y).
CANONICAL_LANDMARKS = np.array(
    [
        [0.378397, 0.470442],
        [0.620411, 0.469103],
        [0.500173, 0.608081],
        [0.400751, 0.749763],
        [0.601167, 0.748655],
    ],
    dtype=np.float64,
)

#: The 5 landmarks of *tight* face crops such as the shared DFDC, FFHQ and CIPLAB sets (not made by
#: ``prepare``): the median of MTCNN's landmarks on 59 real ``dfdc-faces`` crops (detected on 60; the
#: per-point std is 0.09-0.13 of the side, so this is the typical face, not each one).
TIGHT_LANDMARKS = np.array(
    [[0.274, 0.195], [0.757, 0.193], [0.508, 0.429], [0.313, 0.751], [0.701, 0.739]], dtype=np.float64
)

#: ``face_layout`` name -> the fractional landmarks used for a crop without stored landmarks.
FALLBACK_LANDMARKS = {"aligned": CANONICAL_LANDMARKS, "tight": TIGHT_LANDMARKS}

#: SBI's blend ratios (Shiohara & Yamasaki's code: ``[0.25, 0.5, 0.75, 1, 1, 1]``).
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


@dataclass
class BlendResult:
    """A blended fake: ``image`` uint8 ``H×W×3``, ``mask`` float32 ``H×W`` in [0, 1] (the final blend
    weight of the source, i.e. Face X-ray's ``M``), and ``donor`` (index of the source face for X-ray,
    ``None`` for SBI)."""

    image: np.ndarray
    mask: np.ndarray
    donor: int | None = None


def synthetic_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one fake: a function of ``(seed, epoch, index)`` only, so a fake is rebuilt
    identically by any worker process, after a resume, or in another run."""
    return np.random.default_rng([int(seed), int(epoch), int(index), 0x5B1])


def _landmarks_px(size: int, landmarks: np.ndarray | None) -> np.ndarray:
    if landmarks is None:
        return CANONICAL_LANDMARKS * size
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape not in ((5, 2), (68, 2)) or not np.all(np.isfinite(pts)):
        raise ValueError(f"landmarks must be a finite [5, 2] or [68, 2] array, got shape {pts.shape}")
    return pts


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """5 landmarks (eyes, nose tip, mouth corners) of a [5, 2] or 68-point [68, 2] array: for 68, the
    eye centres (points 36-41, 42-47), the nose tip (30) and the mouth corners (48, 54)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if len(pts) != 68:
        return pts
    return np.stack([pts[36:42].mean(axis=0), pts[42:48].mean(axis=0), pts[30], pts[48], pts[54]])


def hull_points(landmarks: np.ndarray) -> np.ndarray:
    """The points whose convex hull is the face mask: 68 landmarks as they are (SBI §3.2); 5 landmarks
    extended to a face outline: forehead above the eyes, cheeks beside eyes and mouth, chin below the
    mouth (distances in units of the eye-to-mouth height and the eye distance)."""
    if len(landmarks) == 68:
        return np.asarray(landmarks, dtype=np.float64)
    le, re, nose, lm, rm = landmarks
    eyes, mouth = (le + re) / 2, (lm + rm) / 2
    down = mouth - eyes  # eye line -> mouth line
    across = re - le
    up = -down
    pts = [
        le + 0.8 * up - 0.3 * across,
        re + 0.8 * up + 0.3 * across,
        le - 0.45 * across,
        re + 0.45 * across,
        lm - 0.4 * across + 0.1 * down,
        rm + 0.4 * across + 0.1 * down,
        mouth + 0.55 * down,
        nose,
    ]
    return np.asarray(pts, dtype=np.float64)


def face_mask(size: int, landmarks: np.ndarray | None = None) -> np.ndarray:
    """The binary (0/1 float32) convex hull of :func:`hull_points` in a ``size × size`` crop."""
    pts = hull_points(_landmarks_px(size, landmarks))
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(np.float32)


def deform_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBI's mask generator (§3.2): scale x and y independently (0.9-1.1) about the mask centre, erode
    or dilate by up to 4 % of the side, blur with a Gaussian of σ 2-6 % of the side, and multiply by a
    blend ratio from :data:`BLEND_RATIOS`. Returns float32 in [0, 1]."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask > 0.5)
    cy, cx = (ys.mean(), xs.mean()) if len(ys) else (h / 2, w / 2)
    sx, sy = rng.uniform(0.9, 1.1, size=2)
    affine = np.array([[sx, 0, cx * (1 - sx)], [0, sy, cy * (1 - sy)]], dtype=np.float64)
    m = cv2.warpAffine(mask.astype(np.float32), affine, (w, h), flags=cv2.INTER_LINEAR)
    k = int(round(rng.uniform(0, 0.04) * h))
    if k >= 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        m = cv2.dilate(m, kernel) if rng.random() < 0.5 else cv2.erode(m, kernel)
    sigma = rng.uniform(0.02, 0.06) * h
    m = cv2.GaussianBlur(m, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    if m.max() > 0:
        m = m / m.max()  # the blurred hull's plateau is exactly 1 before the blend ratio
    ratio = float(rng.choice(BLEND_RATIOS))
    return np.clip(m * ratio, 0.0, 1.0).astype(np.float32)


def _colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(np.float32)
    if rng.random() < 0.3:  # RGB shift
        x = x + rng.uniform(-20, 20, size=3).astype(np.float32)
    if rng.random() < 0.3:  # hue / saturation / value
        hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-0.3, 0.3) * 180 / np.pi) % 180
        hsv[..., 1] *= rng.uniform(0.7, 1.3)
        hsv[..., 2] *= rng.uniform(0.7, 1.3)
        x = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    if rng.random() < 0.3:  # brightness / contrast
        x = (x - 128.0) * rng.uniform(0.9, 1.1) + 128.0 + rng.uniform(-0.1, 0.1) * 255.0
    return np.clip(x, 0, 255)


def _sbi_code_colour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The released code's colour step on its library's scales: RGB shift ±20 (p 0.3), HSV shifts of at
    most ±0.3 on the uint8 scales, brightness and contrast ±10 %."""
    x = img.astype(np.float32)
    if rng.random() < 0.3:
        x = x + rng.uniform(-20, 20, size=3).astype(np.float32)
    hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-0.3, 0.3)) % 180
    hsv[..., 1:] += rng.uniform(-0.3, 0.3, size=2).astype(np.float32)
    x = cv2.cvtColor(np.clip(np.rint(hsv), 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    contrast, brightness = rng.uniform(-0.1, 0.1, size=2)
    return np.clip(x * (1.0 + contrast) + 255.0 * brightness, 0, 255)


def _sbi_code_sharpness(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of: down-scale by 2 or 4 (nearest) and back (linear), or a 3×3 sharpening."""
    h, w = x.shape[:2]
    if rng.random() < 0.5:
        r = int(rng.choice((2, 4)))
        small = cv2.resize(x, (max(1, w // r), max(1, h // r)), interpolation=cv2.INTER_NEAREST)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    alpha, lightness = rng.uniform(0.2, 0.5), rng.uniform(0.5, 1.0)
    sharpen = np.array([[-1, -1, -1], [-1, 8 + lightness, -1], [-1, -1, -1]], dtype=np.float32)
    identity = np.zeros((3, 3), dtype=np.float32)
    identity[1, 1] = 1.0
    kernel = (1 - alpha) * identity + alpha * sharpen
    return np.clip(cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REFLECT_101), 0, 255)


def sbi_source(
    img: np.ndarray,
    rng: np.random.Generator,
    landmarks: np.ndarray | None = None,
    augment: SbiAugment = "strong",
) -> np.ndarray:
    """SBI's source-target generator (§3.1) applied to the source only: colour jitter, a sharpness
    change, a small translation and scale about the face centre, at the ``augment`` strength (module
    docstring). Float32."""
    h, w = img.shape[:2]
    if augment == "sbi_code":
        x = _sbi_code_sharpness(_sbi_code_colour(img, rng), rng)
        s = rng.uniform(0.95, 1 / 0.95)
        tx, ty = rng.uniform(-0.03, 0.03) * w, rng.uniform(-0.015, 0.015) * h
    elif augment == "strong":
        x = _colour_jitter(img, rng)
        if rng.random() < 0.5:
            f = rng.uniform(0.7, 1.0)
            small = cv2.resize(x, (max(4, int(w * f)), max(4, int(h * f))), interpolation=cv2.INTER_AREA)
            x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        s = rng.uniform(0.95, 1.05)
        tx, ty = rng.uniform(-0.03, 0.03, size=2) * np.array([w, h])
    else:
        raise ValueError(f"unknown SBI augmentation {augment!r} (strong or sbi_code)")
    centre = _landmarks_px(h, landmarks).mean(axis=0)
    affine = np.array([[s, 0, centre[0] * (1 - s) + tx], [0, s, centre[1] * (1 - s) + ty]], dtype=np.float64)
    return cv2.warpAffine(x, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def match_colours(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Face X-ray's colour correction: shift and scale each channel of ``source`` so that its mean and
    std inside ``mask > 0.5`` equal ``target``'s. Float32."""
    inside = mask > 0.5
    src, tgt = source.astype(np.float32), target.astype(np.float32)
    if inside.sum() < 2:
        return src
    out = src.copy()
    for c in range(3):
        s, t = src[..., c][inside], tgt[..., c][inside]
        out[..., c] = (src[..., c] - s.mean()) * (t.std() / max(float(s.std()), 1e-3)) + t.mean()
    return np.clip(out, 0, 255)


def nearest_donor(
    landmarks: np.ndarray | None,
    donor_landmarks: Sequence[np.ndarray | None],
    rng: np.random.Generator,
    size: int,
    candidates: int = 8,
) -> int:
    """Face X-ray's landmark-matched donor: among ``candidates`` donors drawn at random (the paper
    searches its whole set, then draws among the nearest), the one whose landmarks, normalised by the
    crop side, lie nearest to the target's. Donors without landmarks count as canonical."""
    n = len(donor_landmarks)
    if n == 0:
        raise ValueError("X-ray blending needs at least one donor face")
    picks = rng.choice(n, size=min(candidates, n), replace=False)
    # On 5 points, so that a face with 68 landmarks and one with the layout's 5 compare.
    ref = five_points(_landmarks_px(size, landmarks)) / size
    dists = [
        float(np.linalg.norm(five_points(_landmarks_px(size, donor_landmarks[i])) / size - ref))
        for i in picks
    ]
    # Ties (e.g. all canonical) resolve to the first drawn, i.e. a random donor.
    return int(picks[int(np.argmin(dists))])


def blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask * source + (1 - mask) * target`` rounded to uint8; equal to ``target`` where ``mask == 0``."""
    m = mask[..., None].astype(np.float32)
    out = m * source.astype(np.float32) + (1.0 - m) * target.astype(np.float32)
    out = np.where(m > 0, out, target.astype(np.float32))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _check_image(img: np.ndarray) -> None:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] != img.shape[1]:
        raise ValueError(f"expected a square uint8 HxWx3 face crop, got {img.dtype} {img.shape}")


def make_sbi(
    real: np.ndarray,
    rng: np.random.Generator,
    landmarks: np.ndarray | None = None,
    augment: SbiAugment = "strong",
) -> BlendResult:
    """A self-blended fake of the square uint8 crop ``real`` (SBI), its source altered at ``augment``."""
    _check_image(real)
    size = real.shape[0]
    mask = deform_mask(face_mask(size, landmarks), rng)
    source = sbi_source(real, rng, landmarks, augment)
    return BlendResult(blend(source, real, mask), mask)


def make_xray(
    real: np.ndarray,
    donors: Sequence[np.ndarray],
    rng: np.random.Generator,
    landmarks: np.ndarray | None = None,
    donor_landmarks: Sequence[np.ndarray | None] | None = None,
) -> BlendResult:
    """A Face X-ray blended image: ``real`` with the inner face of its landmark-nearest donor (from
    ``donors``, uint8 crops resized to ``real``'s size), colour-matched, through a deformed mask."""
    _check_image(real)
    size = real.shape[0]
    marks = list(donor_landmarks) if donor_landmarks is not None else [None] * len(donors)
    j = nearest_donor(landmarks, marks, rng, size)
    donor = donors[j]
    if donor.shape[:2] != (size, size):
        donor = cv2.resize(donor, (size, size), interpolation=cv2.INTER_AREA)
    mask = deform_mask(face_mask(size, landmarks), rng)
    source = match_colours(donor, real, mask)
    return BlendResult(blend(source, real, mask), mask, donor=j)


def xray_boundary(mask: np.ndarray) -> np.ndarray:
    """Face X-ray's target ``B = 4 · M · (1 - M)`` (Li et al. Eq. 2): 1 on the blend boundary, 0 where
    the image is all-source or all-target."""
    m = np.clip(mask.astype(np.float32), 0.0, 1.0)
    return 4.0 * m * (1.0 - m)


def read_aligned_landmarks(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """``prepare``'s ``landmarks.csv``: absolute crop path -> its 5 landmarks ``[5, 2]`` in crop pixels
    (the ``aligned_*`` columns; relative paths are relative to the file's folder)."""
    folder = Path(path).resolve().parent
    names = ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"]
    out: dict[str, np.ndarray] = {}
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        for row in csv.DictReader(fh):
            try:
                pts = [[float(row[f"aligned_{n}_x"]), float(row[f"aligned_{n}_y"])] for n in names]
            except (KeyError, TypeError, ValueError):
                continue
            crop = Path(row["path"])
            out[str(crop if crop.is_absolute() else (folder / crop).resolve())] = np.asarray(pts)
    return out


class SyntheticFakes:
    """Makes the blended fake of real crop ``i`` for :class:`~fakescope.data.dataset.FaceDataset`.

    ``kind`` is ``sbi`` or ``xray``; ``landmarks`` maps a crop's path to its stored 5 or 68 landmarks
    (crop pixels); crops without them use ``FALLBACK_LANDMARKS[face_layout]``; ``sbi_augment`` is the
    strength of SBI's source alteration (module docstring). For X-ray, ``load(j)`` returns
    real crop ``j`` (uint8) and ``groups`` keeps a face's donors out of its own group (another person)."""

    def __init__(
        self,
        kind: SyntheticKind,
        paths: Sequence[str],
        groups: Sequence[str],
        *,
        landmarks: dict[str, np.ndarray] | None = None,
        face_layout: Literal["aligned", "tight"] = "tight",
        seed: int = 0,
        sbi_augment: SbiAugment = "strong",
    ) -> None:
        if kind not in ("sbi", "xray"):
            raise ValueError(f"unknown synthetic fake kind {kind!r} (sbi or xray)")
        if sbi_augment not in ("strong", "sbi_code"):
            raise ValueError(f"unknown SBI augmentation {sbi_augment!r} (strong or sbi_code)")
        self.sbi_augment = sbi_augment
        self.kind = kind
        self.paths = list(paths)
        self.groups = list(groups)
        self.landmarks = dict(landmarks or {})
        self.fallback = FALLBACK_LANDMARKS[face_layout]
        self.seed = int(seed)

    def landmarks_for(self, i: int, size: int) -> np.ndarray:
        stored = self.landmarks.get(self.paths[i])
        return np.asarray(stored, dtype=np.float64) if stored is not None else self.fallback * size

    def make(self, i: int, real: np.ndarray, epoch: int, load: Callable[[int], np.ndarray]) -> BlendResult:
        """The fake of real crop ``i`` (uint8, as loaded) for ``epoch``."""
        rng = synthetic_rng(self.seed, epoch, i)
        size = real.shape[0]
        marks = self.landmarks_for(i, size)
        if self.kind == "sbi":
            return make_sbi(real, rng, marks, self.sbi_augment)
        others = [j for j in range(len(self.paths)) if self.groups[j] != self.groups[i]]
        if not others:
            raise ValueError("X-ray blending needs real faces from at least two groups")
        pool = [int(j) for j in rng.choice(others, size=min(8, len(others)), replace=False)]
        donors = [load(j) for j in pool]
        res = make_xray(real, donors, rng, marks, [self.landmarks_for(j, size) for j in pool])
        return BlendResult(res.image, res.mask, donor=pool[res.donor] if res.donor is not None else None)
