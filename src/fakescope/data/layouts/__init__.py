"""Dataset layout builders: a folder in a benchmark's official layout → manifest rows.

``build_manifest(layout, root, options)`` is the one entry point; ``LAYOUTS`` lists the names.
Each builder lives in its own module and documents the folder tree it expects.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from fakescope.data.config import LayoutOptions
from fakescope.data.layouts.celebdf import build_celebdf
from fakescope.data.layouts.deeperforensics import build_deeperforensics
from fakescope.data.layouts.dfdc_preview import build_dfdc_preview
from fakescope.data.layouts.ffpp import build_ffpp
from fakescope.data.layouts.folder import build_folder
from fakescope.data.manifest import ManifestRow, read_manifest, validate_rows
from fakescope.errors import ConfigError, ManifestError

LayoutBuilder = Callable[[Path, LayoutOptions], list[ManifestRow]]


def _build_from_manifest(root: Path, options: LayoutOptions) -> list[ManifestRow]:
    return read_manifest(root if root.is_file() else root / "manifest.csv")


LAYOUTS: dict[str, LayoutBuilder] = {
    "manifest": _build_from_manifest,
    "folder": build_folder,
    "ffpp": build_ffpp,
    "celebdf": build_celebdf,
    "dfdc_preview": build_dfdc_preview,
    "deeperforensics": build_deeperforensics,
}


def register_layout(name: str) -> Callable[[LayoutBuilder], LayoutBuilder]:
    """Add a builder under ``name`` (for benchmarks outside fakescope)."""

    def deco(fn: LayoutBuilder) -> LayoutBuilder:
        LAYOUTS[name] = fn
        return fn

    return deco


def list_layouts() -> list[str]:
    return sorted(LAYOUTS)


def build_manifest(
    layout: str,
    root: str | os.PathLike[str],
    options: LayoutOptions | None = None,
    **overrides: object,
) -> list[ManifestRow]:
    """Rows for the dataset at ``root`` in ``layout``; ``overrides`` set ``LayoutOptions`` fields.

    The rows are validated (labels, groups, duplicated paths) before they are returned; files were
    found on disk, so they exist. Official splits are already in ``row.split``; pass the rows to
    :func:`fakescope.data.manifest.split_by_group` to fill the rest.
    """
    if layout not in LAYOUTS:
        raise ManifestError(f"unknown layout {layout!r}; known: {', '.join(list_layouts())}")
    root = Path(root).expanduser()
    if not root.exists():
        raise ManifestError(f"{root}: dataset folder not found")
    opts = options or LayoutOptions()
    if overrides:
        try:
            opts = LayoutOptions.model_validate({**opts.model_dump(), **overrides})
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"layout_options.{key}: {first['msg']}") from None
    rows = LAYOUTS[layout](root.resolve(), opts)
    validate_rows(rows, source=f"{root} ({layout} layout)", check_files=False)
    return rows


__all__ = ["LAYOUTS", "build_manifest", "list_layouts", "register_layout"]
