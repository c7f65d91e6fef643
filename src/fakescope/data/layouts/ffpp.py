"""FaceForensics++ (Rössler et al., ICCV 2019) and DeepFakeDetection (DFD), in the layout the
official download script writes::

    <root>/
      original_sequences/youtube/<c23|c40|raw>/videos/000.mp4 ... 999.mp4
      original_sequences/actors/<comp>/videos/01__exit_phone_room.mp4 ...          (DFD real)
      manipulated_sequences/<Method>/<comp>/videos/000_003.mp4 ...
          Method: Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter, DeepFakeDetection
      splits/train.json, val.json, test.json   (from the FaceForensics GitHub repo: lists of pairs)

A fake ``000_003`` puts the face of ``003`` into video ``000``; it, its mirror ``003_000`` and the
real videos ``000`` and ``003`` all belong to the split of the pair ``["000", "003"]`` and share the
group ``000_003``. Without the split files, pairs are read from the fake names and split by group.
``videos`` may be replaced (``LayoutOptions.media``) by a folder of frames / face crops per video,
e.g. ``.../c23/images/000_003/0000.png`` as FaceForensics' extraction script writes.

DFD (Google/Jigsaw) has no official split; its group is the actor whose scene is filmed (the first
id in ``01_02__exit_phone_room__YVGY8LOK``), so a person's real scenes and the fakes made from them
stay on one side. DFD fakes also carry a second actor's face, which may sit on another side.
"""

from __future__ import annotations

import json
from pathlib import Path

from fakescope.data.config import LayoutOptions
from fakescope.data.layouts.common import media_rows, require_dir, scan_videos
from fakescope.data.manifest import ManifestRow
from fakescope.errors import ManifestError

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
ALL_METHODS = (*FFPP_METHODS, "FaceShifter", "DeepFakeDetection")
DFD = "DeepFakeDetection"


def _pair_key(a: str, b: str) -> str:
    return "_".join(sorted((a, b)))


def read_official_splits(splits_dir: Path) -> dict[str, str] | None:
    """``{pair_key: split}`` from the official ``{train,val,test}.json``; None when absent."""
    files = {s: splits_dir / f"{s}.json" for s in ("train", "val", "test")}
    if not any(f.is_file() for f in files.values()):
        return None
    out: dict[str, str] = {}
    for split, f in files.items():
        if not f.is_file():
            raise ManifestError(
                f"{f}: FaceForensics++ split file missing (the others are present in {splits_dir})"
            )
        try:
            pairs = json.loads(f.read_text())
            for pair in pairs:
                a, b = (str(x) for x in pair)
                out[_pair_key(a, b)] = split
        except (ValueError, TypeError) as err:
            raise ManifestError(f"{f}: not a JSON list of [id, id] pairs ({err})") from None
    return out


def _dfd_actor(video: str) -> str:
    return video.split("__", 1)[0].split("_", 1)[0]


def build_ffpp(root: Path, options: LayoutOptions) -> list[ManifestRow]:
    methods = list(options.methods) if options.methods else list(FFPP_METHODS)
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ManifestError(
            f"layout_options.methods: unknown FaceForensics++ method(s) {unknown}; known: {ALL_METHODS}"
        )
    comp = options.compression
    media = options.media
    splits_dir = Path(options.splits_dir) if options.splits_dir else root / "splits"
    official = read_official_splits(splits_dir)
    require_dir(root / "original_sequences", "FaceForensics++ original_sequences/")
    ff_dataset, dfd_dataset = f"FF++_{comp}", f"DFD_{comp}"

    fakes: dict[str, list] = {}
    for m in methods:
        folder = root / "manipulated_sequences" / m / comp / media
        require_dir(folder, f"{m} {comp} {media}/ folder")
        fakes[m] = list(scan_videos(folder))
        if not fakes[m]:
            raise ManifestError(f"{folder}: no videos or frame folders")

    rows: list[ManifestRow] = []
    ff_methods = [m for m in methods if m != DFD]
    if ff_methods:
        # Pair of every source id: from the official split files, else from the fake names.
        partner: dict[str, str] = {}
        if official:
            for key in official:
                a, b = key.split("_")
                partner[a], partner[b] = key, key
        else:
            for m in ff_methods:
                for v in fakes[m]:
                    a, _, b = v.name.partition("_")
                    partner.setdefault(a, _pair_key(a, b))
                    partner.setdefault(b, _pair_key(a, b))
        real_folder = require_dir(
            root / "original_sequences" / "youtube" / comp / media, f"original youtube {comp} {media}/ folder"
        )
        problems: list[str] = []
        for v in scan_videos(real_folder):
            group = partner.get(v.name, v.name)
            split = official.get(group, "") if official else ""
            if official and not split:
                problems.append(f"real {v.name}")
            rows += media_rows(v, label=0, group=group, dataset=ff_dataset, method="youtube", split=split)
        for m in ff_methods:
            for v in fakes[m]:
                a, sep, b = v.name.partition("_")
                if not sep:
                    problems.append(f"{m}/{v.name} (expected target_source, e.g. 000_003)")
                    continue
                group = _pair_key(a, b)
                split = official.get(group, "") if official else ""
                if official and not split:
                    problems.append(f"{m}/{v.name}")
                rows += media_rows(v, label=1, group=group, dataset=ff_dataset, method=m, split=split)
        if problems:
            shown = ", ".join(problems[:10]) + (
                f", ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            )
            raise ManifestError(f"{root}: {len(problems)} video(s) in no official split pair ({shown})")
    if DFD in methods:
        actors = require_dir(
            root / "original_sequences" / "actors" / comp / media,
            f"DFD original actors {comp} {media}/ folder",
        )
        for v in scan_videos(actors):
            rows += media_rows(
                v, label=0, group=f"actor{_dfd_actor(v.name)}", dataset=dfd_dataset, method="actors"
            )
        for v in fakes[DFD]:
            rows += media_rows(
                v, label=1, group=f"actor{_dfd_actor(v.name)}", dataset=dfd_dataset, method=DFD
            )
    return rows
