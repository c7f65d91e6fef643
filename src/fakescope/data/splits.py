"""The rows a ``data`` config section names, split by group and capped (DESIGN.md "Data"; README
"Splits"). Training, evaluation and ``learn-inr-init`` all split through here, so a face that is in
the test split for one of them is in the test split for all of them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fakescope.data.config import DataConfig
from fakescope.data.manifest import ManifestRow, read_manifest, split_by_group
from fakescope.errors import ConfigError

__all__ = ["load_data_rows", "cap_rows", "load_splits"]


def load_data_rows(data_cfg: DataConfig) -> list[ManifestRow]:
    """The rows a ``data`` config section names: its ``manifest`` CSV, or a layout under ``root``."""
    if data_cfg.manifest:
        return read_manifest(data_cfg.manifest)
    if data_cfg.root is None:
        raise ConfigError("data: set data.manifest (a CSV) or data.layout + data.root")
    from fakescope.data.layouts import build_manifest

    return build_manifest(data_cfg.layout, data_cfg.root, data_cfg.layout_options)


def cap_rows(rows: Sequence[ManifestRow], cap: int | None, seed: int) -> list[ManifestRow]:
    """At most ``cap`` rows, half of each class where possible (seeded), keeping the input order."""
    rows = list(rows)
    if cap is None or len(rows) <= cap:
        return rows
    rng = np.random.default_rng(seed)
    by_class = {c: [i for i, r in enumerate(rows) if r.label == c] for c in (0, 1)}
    want = {0: cap // 2, 1: cap - cap // 2}
    for c, other in ((0, 1), (1, 0)):  # give a short class's unused share to the other
        if len(by_class[c]) < want[c]:
            want[other] += want[c] - len(by_class[c])
            want[c] = len(by_class[c])
    keep: list[int] = []
    for c in (0, 1):
        idx = by_class[c]
        keep.extend(rng.choice(idx, size=min(want[c], len(idx)), replace=False).tolist())
    return [rows[i] for i in sorted(keep)]


def load_splits(data_cfg: DataConfig) -> dict[str, list[ManifestRow]]:
    """Train / val / test rows split by group (``data.split``), each capped at ``data.max_per_split``."""
    splits = split_by_group(load_data_rows(data_cfg), data_cfg.split)
    return {
        name: cap_rows(rows, data_cfg.max_per_split, data_cfg.split.seed + i)
        for i, (name, rows) in enumerate(splits.items())
    }
