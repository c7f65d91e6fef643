"""Celeb-DF v1 and v2 (Li et al., CVPR 2020), in the layout of the official release::

    <root>/
      Celeb-real/id0_0000.mp4 ...            celebrity videos from YouTube (real)
      YouTube-real/00000.mp4 ...             more YouTube videos (real)
      Celeb-synthesis/id0_id16_0000.mp4 ...  fakes: the face of id16 put into video id0_0000
      List_of_testing_videos.txt             "<label> <folder>/<file>.mp4" per line, **1 = real, 0 = fake**

The test list is the official test split; everything else is ``train`` (``split_by_group`` then
carves a validation split out of it, by group). The label in the list is checked against the folder,
so a list read with the usual 1 = fake convention fails loudly instead of flipping labels.
A video may be replaced by a same-named folder of frames / face crops (``Celeb-real/id0_0000/``).
Groups are the filmed identity (``id0`` for ``id0_0000`` and ``id0_id16_0000``) and
``YouTube-real/<video>`` for the extra YouTube videos. The official test list is not identity-disjoint
from the rest; it is kept as published.
"""

from __future__ import annotations

from pathlib import Path

from fakescope.data.config import LayoutOptions
from fakescope.data.layouts.common import media_rows, missing_error, scan_videos
from fakescope.data.manifest import ManifestRow
from fakescope.errors import ManifestError

FOLDERS = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}
TEST_LIST = "List_of_testing_videos.txt"
# In List_of_testing_videos.txt, 1 marks a real video and 0 a fake one (the reverse of fakescope's ints).
LIST_LABEL_IS_REAL = {"1": True, "0": False}


def celebdf_version(root: Path, requested: str) -> str:
    if requested != "auto":
        return requested
    name = root.name.lower().replace("-", "").replace("_", "")
    return "v1" if name.endswith("v1") else "v2"


def read_test_list(path: Path) -> dict[str, bool]:
    """``{"Celeb-real/id0_0000": is_real}`` from the official test list."""
    out: dict[str, bool] = {}
    problems: list[str] = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in LIST_LABEL_IS_REAL:
            problems.append(f"line {n}: {line.strip()!r} (expected '<1|0> <folder>/<file>.mp4')")
            continue
        key = str(Path(parts[1]).with_suffix(""))
        out[key] = LIST_LABEL_IS_REAL[parts[0]]
    if problems:
        raise ManifestError(f"{path}: {len(problems)} bad line(s): " + "; ".join(problems[:10]))
    return out


def _group(folder: str, video: str) -> str:
    if folder == "YouTube-real":
        return f"YouTube-real/{video}"
    return video.split("_", 1)[0]


def build_celebdf(root: Path, options: LayoutOptions) -> list[ManifestRow]:
    version = celebdf_version(root, options.celebdf_version)
    dataset = f"Celeb-DF-{version}"
    list_path = root / TEST_LIST
    if not list_path.is_file():
        raise ManifestError(f"{list_path}: Celeb-DF test list not found")
    test = read_test_list(list_path)
    absent = [f for f in FOLDERS if not (root / f).is_dir()]
    if len(absent) == len(FOLDERS):
        raise ManifestError(f"{root}: none of {', '.join(FOLDERS)} found (is this a Celeb-DF folder?)")
    rows: list[ManifestRow] = []
    found: set[str] = set()
    mismatched: list[str] = []
    for folder, label in FOLDERS.items():
        for v in scan_videos(root / folder):
            key = f"{folder}/{v.name}"
            split = ""
            if key in test:
                found.add(key)
                split = "test"
                if test[key] != (label == 0):
                    mismatched.append(key)
            else:
                split = "train"
            rows += media_rows(
                v, label=label, group=_group(folder, v.name), dataset=dataset, method=folder, split=split
            )
    if mismatched:
        raise ManifestError(
            f"{list_path}: {len(mismatched)} label(s) disagree with their folder (e.g. {', '.join(mismatched[:5])}); "
            "in this file 1 = real and 0 = fake"
        )
    missing = sorted(set(test) - found)
    if missing and not options.allow_missing:
        raise missing_error(root, missing, "set layout_options.allow_missing=true to skip them")
    return rows
