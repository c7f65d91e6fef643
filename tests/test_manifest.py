"""Manifest reading, validation, writing and the seeded split by group."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fakescope.data.config import SplitConfig
from fakescope.data.manifest import (
    ManifestRow,
    groups_on_several_sides,
    read_manifest,
    split_by_group,
    write_manifest,
)
from fakescope.errors import ManifestError


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _files(root: Path, *names: str) -> None:
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        (root / n).write_bytes(b"x")


def test_read_resolves_relative_paths_and_optional_columns(tmp_path):
    _files(tmp_path, "real/a.jpg", "fake/b.jpg")
    m = _write(
        tmp_path / "m.csv",
        "path,label,group,dataset,method,split,video,frame\n"
        "real/a.jpg,real,p1,ds,orig,train,v1,3\n"
        "fake/b.jpg,FAKE,p1,ds,DF,,v1,\n",
    )
    rows = read_manifest(m)
    assert rows[0] == ManifestRow(str(tmp_path / "real/a.jpg"), 0, "p1", "ds", "orig", "train", "v1", 3)
    assert rows[1].label == 1 and rows[1].frame is None and rows[1].split == ""
    assert rows[0].video_id == "ds/orig/v1" and rows[1].video_id == "ds/DF/v1"


def test_video_id_falls_back_to_full_path_not_folder_name():
    a = ManifestRow("/d/Deepfakes/000_003/0001.png", 1, "g")
    b = ManifestRow("/d/Face2Face/000_003/0001.png", 1, "g")
    assert a.video_id != b.video_id


def test_every_bad_row_is_listed_once(tmp_path):
    _files(tmp_path, "a.jpg", "b.jpg")
    m = _write(
        tmp_path / "m.csv",
        "path,label,group\na.jpg,real,g\nmissing.jpg,fake,g\nb.jpg,maybe,g\na.jpg,fake,g\nb.jpg,real,\n",
    )
    with pytest.raises(ManifestError) as err:
        read_manifest(m)
    msg = str(err.value)
    assert "5 problem(s)" in msg
    assert "line 3: file not found" in msg
    assert "line 4: unknown label 'maybe'" in msg
    assert "line 5: duplicated path a.jpg (first on line 2)" in msg
    assert "line 6: duplicated path b.jpg" in msg
    assert "\n" not in msg


def test_problem_list_is_capped(tmp_path):
    m = _write(tmp_path / "m.csv", "path,label,group\n" + "".join(f"x{i}.jpg,real,g\n" for i in range(50)))
    with pytest.raises(ManifestError, match=r"50 problem\(s\).*and 40 more"):
        read_manifest(m)
    assert len(read_manifest(m, check_files=False)) == 50


@pytest.mark.parametrize(
    "text, match",
    [
        ("path,label\na.jpg,real\n", "missing column\\(s\\) group"),
        ("", "missing column"),
        ("path,label,group\n", "no rows"),
        ("path,label,group,split\na.jpg,real,g,holdout\n", "unknown split 'holdout'"),
        ("path,label,group,frame\na.jpg,real,g,x1\n", "frame 'x1' is not an integer"),
    ],
)
def test_malformed_manifests(tmp_path, text, match):
    _files(tmp_path, "a.jpg")
    with pytest.raises(ManifestError, match=match):
        read_manifest(_write(tmp_path / "m.csv", text))


def test_missing_manifest_file(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def test_write_is_atomic_and_round_trips(tmp_path):
    rows = [
        ManifestRow(str(tmp_path / "d/real/a.jpg"), 0, "g1", video="v", frame=0),
        ManifestRow("/elsewhere/b.jpg", 1, "g1", split="test"),
    ]
    out = write_manifest(rows, tmp_path / "d/m.csv")
    text = out.read_text().splitlines()
    assert text[0] == "path,label,group,split,video,frame"
    assert text[1].startswith("real/a.jpg,real,g1")
    assert text[2].startswith("/elsewhere/b.jpg,fake")
    assert read_manifest(out, check_files=False) == rows
    assert [p.name for p in out.parent.iterdir()] == ["m.csv"]


def _synthetic(n_groups: int, fakes_per_group: int = 2, real_only: int = 0) -> list[ManifestRow]:
    rows = []
    for g in range(n_groups):
        rows.append(ManifestRow(f"/r/{g}.jpg", 0, f"g{g}"))
        rows += [ManifestRow(f"/f/{g}_{k}.jpg", 1, f"g{g}") for k in range(fakes_per_group)]
    rows += [ManifestRow(f"/ro/{g}.jpg", 0, f"solo{g}") for g in range(real_only)]
    return rows


def test_split_fractions_groups_and_determinism():
    rows = _synthetic(200, real_only=40)
    splits = split_by_group(rows, SplitConfig(seed=3))
    assert groups_on_several_sides(splits) == set()
    n = {s: len(v) for s, v in splits.items()}
    assert sum(n.values()) == len(rows)
    for s, frac in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
        assert abs(n[s] / len(rows) - frac) < 0.02
        assert {r.label for r in splits[s]} == {0, 1}
        assert any(r.group.startswith("solo") for r in splits[s])  # stratified: real-only groups everywhere
    again = split_by_group(rows, SplitConfig(seed=3))
    assert [r.path for r in again["test"]] == [r.path for r in splits["test"]]
    other = split_by_group(rows, SplitConfig(seed=4))
    assert [r.path for r in other["test"]] != [r.path for r in splits["test"]]
    # Input order does not matter.
    shuffled = split_by_group(list(reversed(rows)), SplitConfig(seed=3))
    assert {r.path for r in shuffled["test"]} == {r.path for r in splits["test"]}


def test_small_sets_still_reach_every_split():
    # 3 real-only and 3 fake-only groups: each split gets one of each class.
    rows = [ManifestRow(f"/r{i}", 0, f"r{i}") for i in range(3)] + [
        ManifestRow(f"/f{i}", 1, f"f{i}") for i in range(3)
    ]
    splits = split_by_group(rows)
    assert {s: sorted(r.label for r in v) for s, v in splits.items()} == {
        s: [0, 1] for s in ("train", "val", "test")
    }


def test_preset_splits_are_kept_and_their_groups_follow():
    rows = [
        ManifestRow("/a", 0, "g1", split="test"),
        ManifestRow("/b", 1, "g1"),
        ManifestRow("/c", 1, "g2", split="val"),
    ] + _synthetic(20)
    splits = split_by_group(rows)
    where = {r.path: s for s, v in splits.items() for r in v}
    assert where["/a"] == where["/b"] == "test" and where["/c"] == "val"
    assert groups_on_several_sides(splits) == set()


def test_val_carved_from_official_train_only():
    rows = [ManifestRow(f"/t{i}", i % 2, f"t{i // 2}", split="test") for i in range(20)]
    rows += [ManifestRow(f"/x{i}", i % 2, f"x{i // 2}", split="train") for i in range(100)]
    splits = split_by_group(rows)
    assert len(splits["test"]) == 20 and all(r.path.startswith("/t") for r in splits["test"])
    assert 10 <= len(splits["val"]) <= 24 and all(r.path.startswith("/x") for r in splits["val"])
    no_carve = split_by_group(rows, SplitConfig(carve_val=False))
    assert len(no_carve["val"]) == 0


def test_official_split_spanning_a_group_is_kept_as_published():
    rows = [ManifestRow("/a", 0, "g", split="train"), ManifestRow("/b", 1, "g", split="test")]
    splits = split_by_group(rows)
    assert [r.path for r in splits["train"]] == ["/a"] and [r.path for r in splits["test"]] == ["/b"]
    assert groups_on_several_sides(splits) == {"g"}


def test_dfdc_faces_splits_70_15_15_by_group(shared_data):
    rows = read_manifest(shared_data / "dfdc-faces" / "manifest.csv")
    assert Counter(r.label for r in rows) == {0: 3000, 1: 3000}
    splits = split_by_group(rows)
    assert groups_on_several_sides(splits) == set()
    n = len(rows)
    for s, frac in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
        assert abs(len(splits[s]) / n - frac) < 0.01, (s, len(splits[s]))
        labels = Counter(r.label for r in splits[s])
        assert labels[0] > 0 and labels[1] > 0
    groups = [{r.group for r in v} for v in splits.values()]
    assert sum(len(g) for g in groups) == len({r.group for r in rows})
