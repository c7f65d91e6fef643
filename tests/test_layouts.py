"""Every benchmark layout builder on a stand-in tree with the official names (empty files)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from fakescope.data.config import SplitConfig
from fakescope.data.layouts import build_manifest, list_layouts
from fakescope.data.manifest import groups_on_several_sides, read_manifest, split_by_group, write_manifest
from fakescope.errors import ConfigError, ManifestError

FF_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
PAIRS = {
    "train": [["000", "001"], ["002", "003"], ["004", "005"]],
    "val": [["006", "007"]],
    "test": [["008", "009"]],
}


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def counts(splits) -> dict[str, tuple[int, int]]:
    """split -> (real rows, fake rows)."""
    return {
        s: (sum(r.label == 0 for r in rows), sum(r.label == 1 for r in rows)) for s, rows in splits.items()
    }


def make_ffpp(
    root: Path, comp: str = "c23", media: str = "videos", methods=FF_METHODS, frames: int = 0
) -> None:
    def add(folder: Path, name: str) -> None:
        if frames:
            for i in range(frames):
                touch(folder / name / f"{i:04d}.png")
        else:
            touch(folder / f"{name}.mp4")

    for pairs in PAIRS.values():
        for a, b in pairs:
            for vid in (a, b):
                add(root / "original_sequences/youtube" / comp / media, vid)
            for m in methods:
                for t, s in ((a, b), (b, a)):
                    add(root / "manipulated_sequences" / m / comp / media, f"{t}_{s}")
    (root / "splits").mkdir(parents=True, exist_ok=True)
    for split, pairs in PAIRS.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))


def test_registry_lists_every_layout():
    assert set(list_layouts()) >= {"folder", "ffpp", "celebdf", "dfdc_preview", "deeperforensics", "manifest"}


def test_ffpp_official_splits_follow_pairs(tmp_path):
    make_ffpp(tmp_path)
    rows = build_manifest("ffpp", tmp_path)
    assert len(rows) == 10 + 4 * 10
    by_video = {(r.method, r.video): r for r in rows}
    # Fake 000_001 and its mirror belong to the split of pair [000, 001], with the real 000 and 001.
    assert by_video[("Deepfakes", "000_001")].split == "train"
    assert by_video[("Face2Face", "007_006")].split == "val"
    assert by_video[("youtube", "009")].split == "test"
    assert by_video[("youtube", "009")].group == by_video[("FaceSwap", "009_008")].group == "008_009"
    splits = split_by_group(rows)
    assert counts(splits) == {"train": (6, 24), "val": (2, 8), "test": (2, 8)}
    assert groups_on_several_sides(splits) == set()
    # The same source pair made by two methods are different videos.
    ids = {r.video_id for r in rows if r.video == "000_001"}
    assert len(ids) == 4
    assert {r.dataset for r in rows} == {"FF++_c23"}


def test_ffpp_c40_frames_folders_and_faceshifter(tmp_path):
    make_ffpp(tmp_path, comp="c40", media="images", methods=("Deepfakes", "FaceShifter"), frames=3)
    rows = build_manifest(
        "ffpp", tmp_path, compression="c40", media="images", methods=["Deepfakes", "FaceShifter"]
    )
    assert len(rows) == 3 * (10 + 2 * 10)
    assert {r.frame for r in rows} == {0, 1, 2}
    assert Counter(r.method for r in rows) == {"youtube": 30, "Deepfakes": 30, "FaceShifter": 30}
    splits = split_by_group(rows)
    assert counts(splits) == {"train": (18, 36), "val": (6, 12), "test": (6, 12)}
    # Frames of one video share one video id.
    assert len({r.video_id for r in rows}) == 30


def test_ffpp_without_split_files_keeps_pairs_together(tmp_path):
    make_ffpp(tmp_path)
    for f in (tmp_path / "splits").iterdir():
        f.unlink()
    rows = build_manifest("ffpp", tmp_path)
    assert all(r.split == "" for r in rows)
    assert len({r.group for r in rows}) == 5
    splits = split_by_group(rows, SplitConfig(train=0.6, val=0.2, test=0.2))
    assert groups_on_several_sides(splits) == set()
    assert {s: len({r.group for r in rs}) for s, rs in splits.items()} == {"train": 3, "val": 1, "test": 1}


def test_ffpp_fake_outside_official_pairs_is_an_error(tmp_path):
    make_ffpp(tmp_path)
    touch(tmp_path / "manipulated_sequences/Deepfakes/c23/videos/123_456.mp4")
    with pytest.raises(ManifestError, match="Deepfakes/123_456"):
        build_manifest("ffpp", tmp_path)


def test_ffpp_unknown_option_is_a_config_error(tmp_path):
    make_ffpp(tmp_path)
    with pytest.raises(ConfigError, match="layout_options.compresion"):
        build_manifest("ffpp", tmp_path, compresion="c40")


def test_dfd_groups_by_filmed_actor(tmp_path):
    make_ffpp(tmp_path)
    scenes = ("exit_phone_room", "walking_outside")
    actors = [f"{i:02d}" for i in range(1, 21)]
    for a in actors:
        for s in scenes:
            touch(tmp_path / f"original_sequences/actors/c23/videos/{a}__{s}.mp4")
    for i, a in enumerate(actors):
        b = actors[(i + 1) % len(actors)]
        touch(
            tmp_path
            / f"manipulated_sequences/DeepFakeDetection/c23/videos/{a}_{b}__{scenes[0]}__ABCD{i:04d}.mp4"
        )
    rows = build_manifest("ffpp", tmp_path, methods=["DeepFakeDetection"])
    assert counts({"all": rows}) == {"all": (40, 20)}
    assert {r.dataset for r in rows} == {"DFD_c23"}
    splits = split_by_group(rows)
    assert groups_on_several_sides(splits) == set()
    # 20 actors, every group mixed: 14 / 3 / 3 actors, each with 2 real scenes and 1 fake.
    assert counts(splits) == {"train": (28, 14), "val": (6, 3), "test": (6, 3)}


def make_celebdf(root: Path) -> list[str]:
    ids = [f"id{i}" for i in range(8)]
    for i in ids:
        touch(root / f"Celeb-real/{i}_0000.mp4")
    for k in range(6):
        touch(root / f"YouTube-real/{k:05d}.mp4")
    for n, t in enumerate(ids):
        s = ids[(n + 1) % len(ids)]
        touch(root / f"Celeb-synthesis/{t}_{s}_0000.mp4")
        touch(root / f"Celeb-synthesis/{t}_{s}_0001.mp4")
    test = [
        "1 Celeb-real/id6_0000.mp4",
        "1 YouTube-real/00005.mp4",
        "0 Celeb-synthesis/id7_id0_0000.mp4",
        "0 Celeb-synthesis/id7_id0_0001.mp4",
    ]
    (root / "List_of_testing_videos.txt").write_text("\n".join(test) + "\n")
    return test


def test_celebdf_test_list_label_1_is_real(tmp_path):
    root = tmp_path / "Celeb-DF-v2"
    make_celebdf(root)
    rows = build_manifest("celebdf", root)
    assert len(rows) == 8 + 6 + 16
    assert {r.dataset for r in rows} == {"Celeb-DF-v2"}
    test = sorted(r.video for r in rows if r.split == "test")
    assert test == ["00005", "id6_0000", "id7_id0_0000", "id7_id0_0001"]
    splits = split_by_group(rows)
    assert counts(splits)["test"] == (2, 2)
    # val is carved from the official train part, never from test.
    tr, va = counts(splits)["train"], counts(splits)["val"]
    assert tr[0] + va[0] == 12 and tr[1] + va[1] == 14
    assert va[0] > 0 and va[1] > 0
    assert not {r.group for r in splits["val"]} & {r.group for r in splits["train"]}


def test_celebdf_v1_detected_from_folder_name(tmp_path):
    root = tmp_path / "Celeb-DF-v1"
    make_celebdf(root)
    assert {r.dataset for r in build_manifest("celebdf", root)} == {"Celeb-DF-v1"}


def test_celebdf_flipped_labels_fail_loudly(tmp_path):
    root = tmp_path / "celeb"
    lines = make_celebdf(root)
    flipped = [("0" if ln[0] == "1" else "1") + ln[1:] for ln in lines]
    (root / "List_of_testing_videos.txt").write_text("\n".join(flipped))
    with pytest.raises(ManifestError, match="1 = real"):
        build_manifest("celebdf", root)


def test_celebdf_missing_listed_video(tmp_path):
    root = tmp_path / "celeb"
    make_celebdf(root)
    (root / "YouTube-real/00005.mp4").unlink()
    with pytest.raises(ManifestError, match="YouTube-real/00005"):
        build_manifest("celebdf", root)
    rows = build_manifest("celebdf", root, allow_missing=True)
    assert sum(r.split == "test" for r in rows) == 3


def make_dfdcp(root: Path, frames: bool = False) -> dict:
    meta = {}
    for n in range(10):
        subj = f"{1000 + n}"
        split = "test" if n >= 8 else "train"
        real = f"original_videos/{subj}/{subj}_A_001.mp4"
        fake_a = f"method_A/{subj}/{subj}_B/{2000 + n}_A_001.mp4"
        fake_b = f"method_B/{subj}/{subj}_C/{3000 + n}_B_001.mp4"
        for key, label in ((real, "real"), (fake_a, "fake"), (fake_b, "fake")):
            meta[key] = {"label": label, "set": split, "augmentations": {}}
            if frames:
                for i in range(2):
                    touch(root / Path(key).with_suffix("") / f"{i:03d}.jpg")
            else:
                touch(root / key)
    (root / "dataset.json").write_text(json.dumps(meta))
    return meta


@pytest.mark.parametrize("frames", [False, True])
def test_dfdc_preview_uses_dataset_json(tmp_path, frames):
    make_dfdcp(tmp_path, frames=frames)
    rows = build_manifest("dfdc_preview", tmp_path)
    per = 2 if frames else 1
    assert len(rows) == 30 * per
    assert Counter(r.method for r in rows) == {
        "original_videos": 10 * per,
        "method_A": 10 * per,
        "method_B": 10 * per,
    }
    splits = split_by_group(rows)
    c = counts(splits)
    assert c["test"] == (2 * per, 4 * per)
    assert c["train"][0] + c["val"][0] == 8 * per and c["val"][0] > 0
    assert groups_on_several_sides(splits) == set()


def test_dfdc_preview_bad_label(tmp_path):
    meta = make_dfdcp(tmp_path)
    meta["original_videos/1000/1000_A_001.mp4"]["label"] = "REALISH"
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ManifestError, match="REALISH"):
        build_manifest("dfdc_preview", tmp_path)


def make_deeperforensics(root: Path) -> None:
    actors = [f"M{100 + i:03d}" for i in range(10)]
    names = {"train": [], "val": [], "test": []}
    for i, a in enumerate(actors):
        split = "train" if i < 6 else ("val" if i < 8 else "test")
        for src in (i, i + 10):
            name = f"{src:03d}_{a}.mp4"
            names[split].append(name)
            touch(root / "manipulated_videos/end_to_end" / name)
        touch(root / f"source_videos/{a}/light_uniform/happy/camera_front/{a}_happy_front.mp4")
        touch(root / f"source_videos/{a}/light_uniform/angry/camera_left/{a}_angry_left.mp4")
    touch(root / "source_videos/W200/light_uniform/happy/camera_front/W200_happy_front.mp4")
    for split, ns in names.items():
        touch(root / f"lists/splits/{split}.txt").write_text("\n".join(ns) + "\n")


def test_deeperforensics_lists_and_actor_groups(tmp_path):
    make_deeperforensics(tmp_path)
    rows = build_manifest("deeperforensics", tmp_path)
    assert counts({"all": rows}) == {"all": (21, 20)}
    splits = split_by_group(rows)
    # Fakes keep the official lists; each actor's real videos follow that actor's fakes.
    assert counts(splits)["val"][1] == 4 and counts(splits)["test"][1] == 4
    assert groups_on_several_sides(splits) == set()
    assert sum(c[0] for c in counts(splits).values()) == 21
    assert {r.split for r in rows if r.group == "M108" and r.label == 1} == {"test"}
    assert {r.split for r in splits["test"] if r.group == "M108"} == {"test"}


def test_deeperforensics_missing_lists(tmp_path):
    make_deeperforensics(tmp_path)
    (tmp_path / "lists/splits/val.txt").unlink()
    with pytest.raises(ManifestError, match="val.txt"):
        build_manifest("deeperforensics", tmp_path)


def test_folder_without_manifest_groups_by_subfolder(tmp_path):
    for p in (
        "real/a.jpg",
        "real/b.png",
        "real/person7/1.jpg",
        "real/person7/2.jpg",
        "fake/c.jpg",
        "fake/v.mp4",
    ):
        touch(tmp_path / "set" / p)
    rows = build_manifest("folder", tmp_path / "set")
    assert len(rows) == 6
    assert sorted(r.group for r in rows if r.label == 0) == ["a", "b", "person7", "person7"]
    assert {r.video_id for r in rows if r.group == "person7"} == {"set/real/person7"}
    # real/x and fake/x are different videos even with the same name.
    assert len({r.video_id for r in rows if r.group != "person7"}) == 4


def test_folder_with_manifest_and_round_trip(tmp_path):
    root = tmp_path / "set"
    for i in range(4):
        touch(root / f"real/r{i}.jpg")
        touch(root / f"fake/f{i}.jpg")
    (root / "manifest.csv").write_text(
        "path,label,group\n"
        + "".join(f"real/r{i}.jpg,real,g{i}\nfake/f{i}.jpg,fake,g{i}\n" for i in range(4))
    )
    rows = build_manifest("folder", root)
    assert [r.group for r in rows] == ["g0", "g0", "g1", "g1", "g2", "g2", "g3", "g3"]
    assert {r.dataset for r in rows} == {"set"}
    out = tmp_path / "out" / "m.csv"
    write_manifest(rows, out, relative_to=tmp_path)
    assert "../set/real/r0.jpg" in out.read_text()
    again = read_manifest(out)
    assert [(r.path, r.label, r.group, r.dataset) for r in again] == [
        (r.path, r.label, r.group, r.dataset) for r in rows
    ]


def test_folder_missing_class_folder(tmp_path):
    touch(tmp_path / "real/a.jpg")
    with pytest.raises(ManifestError, match="missing fake"):
        build_manifest("folder", tmp_path)


def test_layout_rows_round_trip_through_a_manifest(tmp_path):
    make_ffpp(tmp_path / "ff", media="images", methods=("Deepfakes", "Face2Face"), frames=2)
    rows = build_manifest("ffpp", tmp_path / "ff", media="images", methods=["Deepfakes", "Face2Face"])
    out = write_manifest(rows, tmp_path / "ff" / "manifest_c23.csv")
    again = read_manifest(out)
    assert again == rows
    assert [r.video_id for r in again] == [r.video_id for r in rows]
    assert "original_sequences/youtube/c23/images/000/0000.png" in out.read_text()
