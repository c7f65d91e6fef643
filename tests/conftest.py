"""Shared fixtures.

- ``shared_data`` locates ../shared/data (``FAKESCOPE_SHARED_DATA`` moves it) and skips with a reason
  when it is absent: tests of behaviour on real data (AUC, detection accuracy, overfitting real faces).
- ``face_set`` is the face set of every test of mechanics (resume, selection, parity, hostile inputs,
  ONNX, CLI plumbing): the real DFDC crops when ../shared/data is there, otherwise the embedded
  stand-in set of ``fakescope.demo`` built once per session, so a bare clone runs these tests too.
- ``tiny_data``: the four shared sources the shipped detector trains on, cut to a few dozen faces each.
- ``standin_set`` is that stand-in set always, for mechanics it serves as well and faster (sharding).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FAKESCOPE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "dfdc-faces" / "manifest.csv").is_file():
        pytest.skip(
            f"real data not found at {SHARED_DATA} (set FAKESCOPE_SHARED_DATA or clone beside ../shared)"
        )
    return SHARED_DATA


TINY_PER_CLASS = 14  # per source: 14 real and 14 fake faces (DFDC: 14 real/fake groups)


@pytest.fixture(scope="session")
def tiny_data(shared_data: Path, tmp_path_factory) -> Path:
    """The four shared sources ``train_shipped.build_manifests`` reads, cut to a few dozen faces each
    (absolute paths to the real crops): the data of the tiny runs of benchmarks/transfer.py and
    benchmarks/candidates.py."""
    root = tmp_path_factory.mktemp("tiny_data")
    for source in ("dfdc-faces", "ffhq-stylegan", "ciplab-photoshop", "dfdc-faces-more"):
        with open(shared_data / source / "manifest.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        keep = TINY_PER_CLASS if source != "dfdc-faces-more" else 2
        chosen = [r for r in rows if r["label"] == "real"][:keep] + [r for r in rows if r["label"] == "fake"][
            :keep
        ]
        if source.startswith("dfdc"):  # DFDC pairs a real face with its fake in one group: keep whole groups
            groups = list(dict.fromkeys(r["group"] for r in rows))[:keep]
            chosen = [r for r in rows if r["group"] in set(groups)]
        folder = root / source
        folder.mkdir()
        lines = ["path,label,group"] + [
            f"{(shared_data / source / r['path']).resolve()},{r['label']},{r['group']}" for r in chosen
        ]
        (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root


@dataclass(frozen=True)
class FaceSet:
    """Aligned face crops in ``root/real`` and ``root/fake`` with ``root/manifest.csv``
    (``path,label,group``, one real face and its fake per group, as in DFDC), plus a few videos listed
    with their labels in ``video_manifest``."""

    root: Path
    videos: tuple[Path, ...]
    standin: bool

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.csv"

    @property
    def video_manifest(self) -> Path:
        return self.videos[0].parent / "manifest.csv"

    def images(self, label: str) -> list[Path]:
        """The ``real`` or ``fake`` crops, sorted by name."""
        return sorted(p for p in (self.root / label).iterdir() if p.suffix in (".jpg", ".png"))

    @property
    def real(self) -> list[Path]:
        return self.images("real")

    @property
    def fake(self) -> list[Path]:
        return self.images("fake")


STANDIN_SIZE = 224  # DFDC's crop size; the face detector also misses some stand-in faces at 64 px


def _build_standin(folder: Path) -> FaceSet:
    from PIL import Image

    from fakescope.data.manifest import ManifestRow, read_manifest, write_manifest
    from fakescope.demo import StandinConfig, build_standin_dataset, write_standin_video

    root = folder / "standin-faces"
    manifest = build_standin_dataset(root, StandinConfig(size=STANDIN_SIZE))
    # The demo groups both faces of a pair; DFDC groups a real face with its own fake. Regroup by the
    # target face so split sizes and "the first N groups" mean what they mean on DFDC. Like DFDC's, the
    # crops are JPEG files (tests truncate, re-encode and size-check them) with names of their own, so
    # tests that gather crops in one folder see no clash.
    rows = read_manifest(manifest)
    for r in rows:
        r.group = Path(r.path).stem
        png = Path(r.path)
        r.path = str(png.with_name(f"{'swap' + r.group[3:] if r.label else r.group}.jpg"))
        Image.open(png).save(r.path, quality=95)
        png.unlink()
        r.dataset = r.method = ""
    write_manifest(rows, manifest)
    videos = tuple(
        write_standin_video(folder / "standin-videos" / f"zoom{n}.mp4", n_frames=n, size=160)
        for n in (24, 16, 12)
    )
    # Labels only for the mechanics of labelled videos: every clip is the same unmanipulated photo.
    labels = (0, 1, 1)
    video_rows = [ManifestRow(str(v), label, v.stem) for v, label in zip(videos, labels, strict=True)]
    write_manifest(video_rows, videos[0].parent / "manifest.csv")
    return FaceSet(root, videos, standin=True)


@pytest.fixture(scope="session")
def standin_set(tmp_path_factory) -> FaceSet:
    """The embedded stand-in set, always (2-3 s to build, once per session): for tests of mechanics
    where it serves as well as the real data and runs faster (small videos)."""
    return _build_standin(tmp_path_factory.mktemp("standin"))


@pytest.fixture(scope="session")
def face_set(request) -> FaceSet:
    """The DFDC face crops and videos when ../shared/data is there, else the stand-in set."""
    if (SHARED_DATA / "dfdc-faces" / "manifest.csv").is_file():
        videos = tuple(sorted((SHARED_DATA / "dfdc-videos").glob("*.mp4")))
        return FaceSet(SHARED_DATA / "dfdc-faces", videos, standin=False)
    return request.getfixturevalue("standin_set")


@pytest.fixture(autouse=True)
def _few_threads(monkeypatch):
    # Two cores here: keep tests from oversubscribing when pytest itself is the only job.
    import torch

    # FAKESCOPE_TEST_THREADS=1 lets two test runs share the two cores without their pools spinning.
    torch.set_num_threads(int(os.environ.get("FAKESCOPE_TEST_THREADS", min(2, os.cpu_count() or 1))))
    yield
