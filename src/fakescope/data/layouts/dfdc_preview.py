"""DFDC-Preview (Dolhansky et al., 2019), in the layout of the preview release::

    <root>/
      dataset.json                      {"<relative path>": {"label": "real"|"fake", "set": "train"|"test", ...}}
      original_videos/<subject>/<video>.mp4
      method_A/<subject>/<...>/<video>.mp4
      method_B/<subject>/<...>/<video>.mp4

``dataset.json`` is the truth for labels and the official train/test split (``split_by_group``
carves a validation split out of train, by group). The method is the top folder, the group is the
subject folder right below it (the filmed person), so a person's real and fake videos stay together.
A listed video may be replaced by a same-named folder of frames / face crops (extension dropped).
"""

from __future__ import annotations

import json
from pathlib import Path

from fakescope.data.config import LayoutOptions
from fakescope.data.layouts.common import media_for, media_rows, missing_error
from fakescope.data.manifest import ManifestRow, parse_label
from fakescope.errors import ManifestError

DATASET = "DFDC-Preview"
SETS = {"train": "train", "val": "val", "test": "test"}


def build_dfdc_preview(root: Path, options: LayoutOptions) -> list[ManifestRow]:
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise ManifestError(f"{meta_path}: DFDC-Preview dataset.json not found")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as err:
        raise ManifestError(f"{meta_path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise ManifestError(f"{meta_path}: expected an object keyed by video path")
    rows: list[ManifestRow] = []
    problems: list[str] = []
    missing: list[str] = []
    for key in sorted(meta):
        info = meta[key]
        label = parse_label(info.get("label", "")) if isinstance(info, dict) else None
        split = SETS.get(str(info.get("set", "")).lower()) if isinstance(info, dict) else None
        if label is None or split is None:
            problems.append(
                f"{key}: label={info.get('label') if isinstance(info, dict) else info!r}, "
                f"set={info.get('set') if isinstance(info, dict) else None!r}"
            )
            continue
        rel = Path(key)
        media = media_for(root / rel.with_suffix(""), root / rel)
        if media is None:
            missing.append(key)
            continue
        parts = rel.parts
        method = parts[0] if len(parts) > 1 else ""
        group = parts[1] if len(parts) > 2 else rel.stem
        rows += media_rows(
            media,
            label=label,
            group=group,
            dataset=DATASET,
            method=method,
            split=split,
            video=rel.with_suffix("").as_posix(),
        )
    if problems:
        raise ManifestError(
            f"{meta_path}: {len(problems)} entr(ies) without a real/fake label or a train/test set: "
            + "; ".join(problems[:10])
        )
    if missing and not options.allow_missing:
        raise missing_error(root, missing, "set layout_options.allow_missing=true to skip them")
    if not rows:
        raise ManifestError(f"{meta_path}: no listed video found under {root}")
    return rows
