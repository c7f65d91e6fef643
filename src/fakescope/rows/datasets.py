"""A ``--data`` spec as rows: a dataset name under the data root, a folder, or a manifest CSV."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fakescope.data.manifest import ManifestRow, read_manifest
from fakescope.errors import InputError

__all__ = ["DEFAULT_DATA_ROOT", "EvalSet", "resolve_dataset"]

DEFAULT_DATA_ROOT = Path(os.environ.get("FAKESCOPE_DATA", Path.cwd().parent / "shared" / "data"))


@dataclass
class EvalSet:
    """A named dataset: its rows and where they came from (a manifest file or a folder)."""

    name: str
    rows: list[ManifestRow]
    source: Path


def resolve_dataset(spec: str, data_root: str | os.PathLike[str] | None = None) -> EvalSet:
    """``spec`` is a folder name under ``data_root`` (default ``../shared/data``), any folder holding a
    ``manifest.csv`` or ``real/`` + ``fake/``, or a manifest CSV file."""
    root = Path(data_root) if data_root is not None else DEFAULT_DATA_ROOT
    p = Path(spec).expanduser()
    if not p.exists() and (root / spec).exists():
        p = root / spec
    if p.is_file():
        return EvalSet(p.stem if p.name != "manifest.csv" else p.parent.name, read_manifest(p), p.resolve())
    if p.is_dir():
        if (p / "manifest.csv").is_file():
            return EvalSet(p.name, read_manifest(p / "manifest.csv"), (p / "manifest.csv").resolve())
        if (p / "real").is_dir() or (p / "fake").is_dir():
            from fakescope.data.layouts import build_manifest

            return EvalSet(p.name, build_manifest("folder", p), p.resolve())
        raise InputError(f"{p}: no manifest.csv and no real/ or fake/ folder to evaluate")
    raise InputError(f"--data {spec}: not a file, a folder, or a dataset name under {root}")
