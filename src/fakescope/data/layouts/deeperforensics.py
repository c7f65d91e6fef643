"""DeeperForensics-1.0 (Jiang et al., CVPR 2020), in the layout of the official release::

    <root>/
      source_videos/<actor, e.g. M004>/.../*.mp4            real videos of the 100 paid actors
      manipulated_videos/<perturbation>/<NNN>_<actor>.mp4   fakes: the actor's face in FF++ video NNN
          perturbation: end_to_end (the standard set), end_to_end_level_1..5, end_to_end_random_level,
          end_to_end_mix_2_distortions, ..., reenact_postprocess
      lists/splits/train.txt, val.txt, test.txt             fake file names, one per line

Fakes take their split from the official lists. The real source videos have no official split:
their group is the actor, and they follow the split that holds most of that actor's fakes
(``split_by_group``); actors without fakes are split by the seeded fractions.
Groups are the actor id (``M004``), for real and fake videos alike.
A video may be replaced by a same-named folder of frames / face crops.
"""

from __future__ import annotations

from pathlib import Path

from fakescope.data.config import LayoutOptions
from fakescope.data.layouts.common import media_rows, missing_error, require_dir, scan_videos
from fakescope.data.manifest import ManifestRow
from fakescope.errors import ManifestError

DATASET = "DeeperForensics-1.0"


def read_split_lists(folder: Path) -> dict[str, str]:
    """``{video stem: split}`` from ``lists/splits/{train,val,test}.txt``."""
    out: dict[str, str] = {}
    for split in ("train", "val", "test"):
        f = folder / f"{split}.txt"
        if not f.is_file():
            raise ManifestError(f"{f}: DeeperForensics split list not found")
        for line in f.read_text().splitlines():
            if line.strip():
                out[Path(line.strip()).stem] = split
    return out


def _actor_of_fake(stem: str) -> str:
    return stem.split("_", 1)[1] if "_" in stem else stem


def build_deeperforensics(root: Path, options: LayoutOptions) -> list[ManifestRow]:
    splits = read_split_lists(root / "lists" / "splits")
    pert = options.deeperforensics_perturbation
    fake_dir = require_dir(root / "manipulated_videos" / pert, f"manipulated_videos/{pert}/")
    source_dir = require_dir(root / "source_videos", "source_videos/")
    rows: list[ManifestRow] = []
    unlisted: list[str] = []
    found: set[str] = set()
    for v in scan_videos(fake_dir):
        split = splits.get(v.name)
        if split is None:
            unlisted.append(v.name)
            continue
        found.add(v.name)
        rows += media_rows(
            v, label=1, group=_actor_of_fake(v.name), dataset=DATASET, method=pert, split=split
        )
    if unlisted:
        raise ManifestError(
            f"{fake_dir}: {len(unlisted)} fake(s) in no split list (e.g. {', '.join(unlisted[:5])})"
        )
    missing = sorted(set(splits) - found)
    if missing and not options.allow_missing:
        raise missing_error(fake_dir, missing, "set layout_options.allow_missing=true to skip them")
    for actor in sorted(p for p in source_dir.iterdir() if p.is_dir()):
        for v in scan_videos(actor, recursive=True):
            video = (
                v.path.relative_to(source_dir).with_suffix("").as_posix()
                if not v.frames
                else (v.path.relative_to(source_dir).as_posix())
            )
            rows += media_rows(v, label=0, group=actor.name, dataset=DATASET, method="source", video=video)
    if not any(r.label == 0 for r in rows):
        raise ManifestError(f"{source_dir}: no real source videos found")
    return rows
