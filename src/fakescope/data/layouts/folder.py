"""The ``folder`` layout: any folder with ``real/`` and ``fake/`` (docs/design.md, "Datasets").

When the folder holds a ``manifest.csv`` (as every set in ``../shared/data`` does) that manifest is
the truth: its groups name the source video or person, which file names alone cannot tell.
Otherwise every image or video under ``real/`` and ``fake/`` becomes a row, and its group is the
first path component below ``real/`` or ``fake/`` (``real/person7/a.jpg`` → ``person7``,
``real/x.jpg`` → ``x``), so images kept together in a sub-folder stay on one side of a split.
"""

from __future__ import annotations

from pathlib import Path

from fakescope.data.config import LayoutOptions
from fakescope.data.layouts.common import is_image, is_video, scan_videos
from fakescope.data.manifest import ManifestRow, read_manifest
from fakescope.errors import ManifestError
from fakescope.utils.paths import scan_entry_reason

CLASS_FOLDERS = {"real": 0, "fake": 1}


def build_folder(root: Path, options: LayoutOptions) -> list[ManifestRow]:
    manifest = root / "manifest.csv"
    if manifest.is_file():
        rows = read_manifest(manifest)
        for r in rows:
            r.dataset = r.dataset or root.name
        return rows
    missing = [name for name in CLASS_FOLDERS if not (root / name).is_dir()]
    if missing:
        raise ManifestError(
            f"{root}: folder layout needs real/ and fake/ sub-folders (missing {', '.join(missing)})"
        )
    rows: list[ManifestRow] = []
    for cls, label in CLASS_FOLDERS.items():
        base = root / cls
        # Frame folders (real/<video>/0001.jpg) are one video each; loose images are their own video.
        frame_dirs = set()
        for media in scan_videos(base, recursive=True):
            rel = media.path.relative_to(base)
            group = rel.parts[0] if len(rel.parts) > 1 else Path(rel.parts[0]).stem
            video = rel.with_suffix("").as_posix() if not media.frames else rel.as_posix()
            if media.frames:
                frame_dirs.add(media.path)
                rows.extend(
                    ManifestRow(str(p), label, group, root.name, cls, "", video, i)
                    for i, p in enumerate(media.frames)
                )
            else:
                rows.append(ManifestRow(str(media.path), label, group, root.name, cls, "", video, None))
        for p in sorted(base.rglob("*")):
            # A FIFO, a link loop or a broken link with an image suffix stays a row: reading it names
            # it and counts it as failed (as detect's folder scan names it), instead of dropping it.
            if scan_entry_reason(p) == "" or not is_image(p) or p.parent in frame_dirs or is_video(p):
                continue
            rel = p.relative_to(base)
            group = rel.parts[0] if len(rel.parts) > 1 else p.stem
            rows.append(
                ManifestRow(str(p), label, group, root.name, cls, "", rel.with_suffix("").as_posix(), None)
            )
    if not rows:
        raise ManifestError(f"{root}: no images or videos under real/ or fake/")
    return rows
