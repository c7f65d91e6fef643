"""Image loading: every input becomes an RGB ``uint8`` array of shape ``H x W x 3``.

Detectors see faces as RGB in [0, 255] (docs/CONTRACTS.md); users hand in phone photos with EXIF
rotation, grayscale scans, transparent PNGs, palette GIFs, 16-bit TIFFs and CMYK JPEGs. Everything
that cannot be decoded, is truncated, or is large enough to be a decompression bomb raises
:class:`~fakescope.errors.InputError` naming the file, and :func:`iter_images` lets batch jobs
report such files and carry on.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from fakescope.errors import FaceTooSmallError, InputError
from fakescope.utils.paths import not_a_file_reason

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray

# 64 MP: a 8000x8000 photo still loads, a crafted 100k x 100k PNG does not. DataConfig.max_image_pixels.
DEFAULT_MAX_PIXELS = 64_000_000
BACKGROUNDS = {"black": (0, 0, 0), "white": (255, 255, 255)}
#: The smallest face crop (short side, pixels) that is scored, evaluated or trained on. The face
#: detectors find nothing smaller than about 20 px (MTCNN's minimum face, preprocess.mtcnn_min_face_size;
#: RetinaFace's smallest anchor is 16 px) and an aligned crop spans 1.3x the face (preprocess.align.margin
#: 0.3), so no crop ``prepare`` makes holds fewer than about 26 px of real image; 32 px is the next power
#: of two, four of AIRL's 8x8 DCT blocks across. Below it a crop is upsampled more than 7x to the 224-px
#: training crops and keeps none of the fine traces (blending seams, DCT spectra, INR residuals) the
#: detectors read, so it gets "too small" instead of a verdict (docs/bad-input.md).
MIN_FACE_SIDE = 32
#: File suffixes that folder scans (``detect DIR``, ``prepare DIR``) take as images. Loading does not
#: depend on them (the content decides); a format Pillow cannot open here (``.heic`` without a HEIF
#: plugin) is then reported per file instead of being skipped unseen.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".avif",
     ".heic", ".heif", ".jp2", ".qoi", ".tga", ".ppm", ".pgm", ".pbm"}
)  # fmt: skip


def _name_of(src: ImageSource, name: str | None) -> str:
    if name:
        return name
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, Image.Image):
        return getattr(src, "filename", "") or "<PIL image>"
    if isinstance(src, np.ndarray):
        return "<array>"
    return "<bytes>"


def _composite(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    rgba = im.convert("RGBA")
    base = Image.new("RGBA", rgba.size, background + (255,))
    return Image.alpha_composite(base, rgba).convert("RGB")


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info
    )


def _high_bit_depth_to_uint8(arr: np.ndarray) -> np.ndarray:
    """16-bit or 32-bit integer samples → 8 bit by scaling (65535 → 255), never by clipping."""
    arr = arr.astype(np.float64)
    peak = float(arr.max()) if arr.size else 0.0
    # PIL opens 16-bit PNGs as mode "I" (int32); values beyond 16 bits mean a true 32-bit image.
    full = 65535.0 if peak <= 65535 else float(np.iinfo(np.int32).max)
    return np.clip(np.rint(arr / full * 255.0), 0, 255).astype(np.uint8)


def _pil_to_rgb(im: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        gray = _high_bit_depth_to_uint8(np.asarray(im))
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "F":
        return _array_to_rgb(np.asarray(im, dtype=np.float32), background, "<F image>")
    if _has_alpha(im):
        return np.asarray(_composite(im, background))
    if im.mode != "RGB":
        # Covers 1, L, P, CMYK, YCbCr, LAB, HSV: PIL's converters are the reference behaviour.
        im = im.convert("RGB")
    return np.asarray(im)


def _float_to_uint8(arr: np.ndarray) -> np.ndarray:
    # Floats in [0, 1] are the torch / skimage convention; larger values are taken as [0, 255].
    scale = 255.0 if arr.size == 0 or float(np.nanmax(arr)) <= 1.0 else 1.0
    return np.clip(np.rint(np.nan_to_num(arr) * scale), 0, 255).astype(np.uint8)


def _array_to_rgb(arr: np.ndarray, background: tuple[int, int, int], name: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InputError(f"{name}: array of shape {arr.shape} is not an image (expected HxW, HxWx3 or HxWx4)")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        arr = np.clip(np.rint(arr.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        arr = _float_to_uint8(arr)
    elif arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.integer) and arr.size and (arr.min() < 0 or arr.max() > 255):
            raise InputError(f"{name}: integer array of dtype {arr.dtype} has values outside 0..255")
        arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.shape[2] == 4:
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        bg = np.asarray(background, dtype=np.float32)
        arr = np.rint(arr[..., :3].astype(np.float32) * alpha + bg * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(arr)


def load_image_rgb(
    src: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: Literal["black", "white"] = "black",
    name: str | None = None,
) -> np.ndarray:
    """Decode ``src`` (a path, encoded bytes, a PIL image or a numpy array) to RGB ``uint8`` HxWx3.

    - EXIF orientation is applied (``ImageOps.exif_transpose``), so faces are upright as a viewer
      shows them; an unreadable EXIF block is ignored rather than failing the image.
    - Grayscale and palette images are expanded to three channels; CMYK/YCbCr/LAB use PIL's converters.
    - Transparent pixels (RGBA, LA, palette transparency) are composited on ``background``
      (``black`` by default, matching the zero padding the face crops get).
    - 16-bit images are scaled (``round(v / 257)``), not clipped; float arrays are read as [0, 1]
      when their maximum is at most 1, else as [0, 255].
    - Multi-frame files (GIF, TIFF) give their first frame.

    Raises ``InputError`` naming the file when it is missing, not an image, truncated, or has more
    than ``max_pixels`` pixels (checked from the header, before decoding).
    """
    label = _name_of(src, name)
    bg = BACKGROUNDS.get(background)
    if bg is None:
        raise InputError(f"{label}: background must be one of {sorted(BACKGROUNDS)} (got {background!r})")
    if isinstance(src, np.ndarray):
        if src.ndim >= 2 and src.shape[0] * src.shape[1] > max_pixels:
            raise InputError(
                f"{label}: {src.shape[1]}x{src.shape[0]} image exceeds the {max_pixels} pixel limit"
            )
        return _array_to_rgb(src, bg, label)
    try:
        with warnings.catch_warnings():
            # PIL's own bomb check is only a warning below 2x its limit; ours is the one that counts.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if isinstance(src, Image.Image):
                im = src
            elif isinstance(src, (bytes, bytearray, memoryview)):
                im = Image.open(io.BytesIO(bytes(src)))
            else:
                path = Path(src)
                reason = not_a_file_reason(path)
                if reason is not None:
                    raise InputError(f"{label}: {'file not found' if reason == 'no such file' else reason}")
                if path.stat().st_size == 0:
                    raise InputError(f"{label}: empty file (0 bytes)")  # as a 0-byte video says
                im = Image.open(path)
            w, h = im.size
            if w * h > max_pixels:
                raise InputError(
                    f"{label}: {w}x{h} image exceeds the {max_pixels} pixel limit (possible decompression bomb)"
                )
            im.load()
            # A corrupt EXIF block must not cost an otherwise decodable image.
            with contextlib.suppress(Exception):
                im = ImageOps.exif_transpose(im) or im
            return np.ascontiguousarray(_pil_to_rgb(im, bg))
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{label}: not a recognised image file (corrupt or unsupported format)") from None
    except Image.DecompressionBombError as err:
        raise InputError(f"{label}: refused as a decompression bomb ({err})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        # PIL reports truncated data as OSError("image file is truncated ...") and bad headers as SyntaxError.
        raise InputError(f"{label}: cannot decode image ({err})") from None


def iter_images(
    paths: Iterable[str | os.PathLike[str]],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: Literal["black", "white"] = "black",
    progress: bool = False,
    desc: str = "images",
) -> Iterator[tuple[str, np.ndarray | InputError]]:
    """Yield ``(path, image)`` for each path, or ``(path, InputError)`` for a bad file, and go on.

    Batch jobs count and report the errors instead of stopping at the first unreadable file.
    """
    items = list(paths) if progress else paths
    it = tqdm(items, desc=desc, unit="img", disable=not progress, dynamic_ncols=True)
    for p in it:
        try:
            yield str(p), load_image_rgb(p, max_pixels=max_pixels, background=background)
        except InputError as err:
            yield str(p), err


def face_too_small(image: np.ndarray, label: str, min_side: int = MIN_FACE_SIDE) -> FaceTooSmallError | None:
    """The error for a face crop whose short side is below ``min_side`` (:data:`MIN_FACE_SIDE`), else
    ``None``."""
    h, w = image.shape[:2]
    if min(h, w) >= min_side:
        return None
    return FaceTooSmallError(
        f"{label}: {w}x{h} pixels, below the {min_side}-px minimum face size: too small to tell "
        "real from fake"
    )


def unreadable_images(
    paths: Iterable[str | os.PathLike[str]],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: Literal["black", "white"] = "black",
    progress: bool = False,
    desc: str = "check images",
    min_side: int = MIN_FACE_SIDE,
) -> dict[str, InputError]:
    """Decode each image once (streamed: one in memory at a time) and return the ones that fail, by
    path, with their error: unreadable, or a crop below ``min_side`` pixels (:func:`face_too_small`, a
    :class:`~fakescope.errors.FaceTooSmallError`).
    ``train`` and ``evaluate --run`` check their rows with it up front, so that one corrupt file cannot
    end a run part-way and a 1-px "face" is neither trained on nor scored."""
    bad: dict[str, InputError] = {}
    for path, res in iter_images(
        paths, max_pixels=max_pixels, background=background, progress=progress, desc=desc
    ):
        err = res if isinstance(res, InputError) else face_too_small(res, _name_of(path, None), min_side)
        if err is not None:
            bad[path] = err
    return bad


def standin_photo() -> np.ndarray:
    """A real photograph with a face, shipped with scikit-image (NASA astronaut Eileen Collins), used to
    show ``detect`` on an uncropped image: face detection and alignment run on it."""
    from skimage.data import astronaut

    return np.ascontiguousarray(astronaut()[..., :3])
