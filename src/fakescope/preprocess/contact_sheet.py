"""Contact sheets: tile face crops into one image, to check alignment by eye (docs/preprocessing.md)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from fakescope.data.images import load_image_rgb
from fakescope.preprocess.align import template_landmarks
from fakescope.preprocess.config import AlignConfig
from fakescope.utils.atomic import atomic_write_bytes

__all__ = ["contact_sheet", "save_contact_sheet", "write_crop_contact_sheet"]


def contact_sheet(
    images: Sequence[np.ndarray | str | os.PathLike[str]],
    cols: int = 6,
    tile: int = 112,
    gap: int = 2,
    captions: Sequence[str] | None = None,
    marks: np.ndarray | None = None,
    mark_scale: float | None = None,
) -> np.ndarray:
    """Tile ``images`` (arrays or paths) into a grid of ``tile``-pixel squares, RGB uint8.

    ``marks`` (N x 2 points in the crops' own pixel coordinates, e.g. the alignment template) are
    drawn as small green dots on every tile, so a misaligned crop stands out at a glance;
    ``mark_scale`` maps crop pixels to tile pixels (default: tile / crop width).
    """
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    cols = max(1, min(cols, len(images)))
    rows = (len(images) + cols - 1) // cols
    cap_h = 14 if captions else 0
    sheet = np.full((rows * (tile + cap_h + gap) + gap, cols * (tile + gap) + gap, 3), 255, dtype=np.uint8)
    for i, src in enumerate(images):
        img = src if isinstance(src, np.ndarray) else load_image_rgb(src)
        scale = mark_scale if mark_scale is not None else tile / img.shape[1]
        small = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
        if marks is not None:
            small = np.ascontiguousarray(small)
            for x, y in np.asarray(marks, dtype=np.float64).reshape(-1, 2):
                cv2.circle(
                    small, (int(round(x * scale)), int(round(y * scale))), 1, (0, 255, 0), -1, cv2.LINE_AA
                )
        r, c = divmod(i, cols)
        y0 = gap + r * (tile + cap_h + gap)
        x0 = gap + c * (tile + gap)
        sheet[y0 : y0 + tile, x0 : x0 + tile] = small
        if captions:
            cv2.putText(
                sheet,
                str(captions[i])[:22],
                (x0 + 1, y0 + tile + cap_h - 3),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.33,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
    return sheet


def save_contact_sheet(
    sheet: np.ndarray, path: str | os.PathLike[str], jpeg_quality: int | None = None
) -> None:
    """Write the sheet atomically as PNG, or as JPEG when ``jpeg_quality`` is given (smaller files)."""
    bgr = sheet[..., ::-1]
    if jpeg_quality is None:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:  # pragma: no cover
        raise RuntimeError("could not encode the contact sheet")
    atomic_write_bytes(path, buf.tobytes())


def write_crop_contact_sheet(
    manifest: str | os.PathLike[str],
    path: str | os.PathLike[str],
    align: AlignConfig | None = None,
    max_tiles: int = 48,
    cols: int = 6,
    tile: int = 96,
) -> bool:
    """Tile the first ``max_tiles`` crops of a crop manifest, captioned ``video label frame``, with the
    template's eye positions marked. Returns False when the manifest lists no crop."""
    from fakescope.data.manifest import read_manifest
    from fakescope.errors import ManifestError

    try:
        rows = read_manifest(manifest)[:max_tiles]
    except ManifestError:  # no crops at all (every frame without a face): nothing to show
        return False
    align = align or AlignConfig()
    marks = (
        template_landmarks(align.size, align.margin, align.template)[:2]
        if align.method == "similarity"
        else None
    )
    captions = [f"{r.video[:10]} {r.label_name}" + ("" if r.frame is None else f" f{r.frame}") for r in rows]
    sheet = contact_sheet([r.path for r in rows], cols=cols, tile=tile, captions=captions, marks=marks)
    save_contact_sheet(sheet, path)
    return True
