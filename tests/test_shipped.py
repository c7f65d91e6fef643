"""The detector that ships inside the package (docs/model-card.md): it is the default of load(), detect
and models, it carries its calibration, familiarity model and provenance, it is small, its weights are
hash-checked, and on real held-out faces of every training source it detects fakes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import fakescope
from fakescope.cli import main
from fakescope.errors import ModelLoadError
from fakescope.inference.shipped import is_shipped, model_card_path, shipped_meta, shipped_model_dir

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("dfdc-faces", "ffhq-stylegan", "ciplab-photoshop")


@pytest.fixture(scope="module")
def shipped() -> Path:
    return shipped_model_dir()


def test_the_shipped_folder_is_small_complete_and_says_where_it_came_from(shipped):
    assert (shipped / "checkpoints" / "best.safetensors").stat().st_size <= 40 * 2**20
    for name in ("calibration.json", "familiarity.safetensors", "MODEL_CARD.md", "shipped.json"):
        assert (shipped / name).is_file(), name
    meta = shipped_meta(shipped)
    assert meta["command"].startswith("python scripts/train_shipped.py")
    assert set(meta["source_manifests_sha256"]) == {"dfdc-faces", "dfdc-faces-more", *SOURCES[1:]}
    assert len(meta["commit"]) >= 40 and meta["max_score_gap"] <= 1e-3
    assert model_card_path(shipped) is not None and is_shipped(shipped)
    card = (shipped / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "(written by" not in card, "the card's measured blocks were never filled in"


def test_damaged_shipped_weights_are_refused_with_one_line(shipped, tmp_path):
    copy = tmp_path / "detector"
    shutil.copytree(shipped, copy)
    weights = copy / "checkpoints" / "best.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-100] ^= 0xFF  # inside a tensor, the header intact
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match="damaged weights file"):
        fakescope.load(copy)


def _test_rows(shared_data: Path, per_class: int) -> list[tuple[str, int, str]]:
    from fakescope.data.config import SplitConfig
    from fakescope.data.manifest import read_manifest, split_by_group

    out = []
    for src in SOURCES:
        test = split_by_group(read_manifest(shared_data / src / "manifest.csv"), SplitConfig())["test"]
        for label in (0, 1):
            out += [(r.path, label, src) for r in [r for r in test if r.label == label][:per_class]]
    return out


@pytest.mark.shared_data
def test_load_with_no_argument_detects_held_out_fakes_of_every_source(shared_data):
    """Held-out test faces (the split train_shipped.py never trained or calibrated on), scored as a
    user's aligned crops: every source's fakes score above its reals, probabilities are calibrated
    probabilities, and the familiarity field is there."""
    from fakescope.eval.metrics import auc

    det = fakescope.load()
    assert is_shipped(det.source)
    rows = _test_rows(shared_data, 25)
    faces = [det.predict(path, aligned=True).faces[0] for path, _, _ in rows]
    y = np.array([label for _, label, _ in rows])
    for src in SOURCES:
        idx = [i for i, (_, _, s) in enumerate(rows) if s == src]
        score = auc(y[idx], [faces[i].score for i in idx])
        # The card's full test figures: DFDC 0.82, FFHQ-StyleGAN 0.79, CIPLAB 0.62 [0.56, 0.68].
        assert score > 0.55, f"{src}: AUC {score:.2f} on 50 held-out faces"
    assert auc(y, [f.score for f in faces]) > 0.65
    for face in faces:
        assert 0.0 <= face.probability <= 1.0
        assert set(face.familiarity) == {"score", "threshold", "unfamiliar"}
        assert face.label == ("fake" if face.score >= det.calibration.threshold else "real")


@pytest.mark.shared_data
def test_detect_with_no_model_prints_a_calibrated_verdict_and_familiarity(shared_data, capsys):
    face = sorted((shared_data / "dfdc-faces" / "fake").glob("*.jpg"))[0]
    assert main(["detect", str(face), "--json", "--device", "cpu"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "shipped"
    (result,) = doc["results"]
    (out,) = result["faces"]
    assert out["label"] in ("real", "fake") and 0.0 <= out["probability"] <= 1.0
    assert isinstance(out["familiarity"]["unfamiliar"], bool)
    assert result["probability"] == out["probability"]  # one face: the image's calibrated P(fake) is its
    assert main(["detect", str(face), "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "stand-in" not in table.lower() and face.name in table


def test_models_names_the_shipped_detector_and_its_card(capsys):
    assert main(["models", "--only", "airl", "--backbone", "lite0", "--image-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "shipped detector" in out and "fakescope-airl-pooled" in out and "MODEL_CARD.md" in out


def test_an_install_without_the_folder_says_so_in_one_line(monkeypatch, tmp_path):
    import fakescope.inference.shipped as shipped_mod

    monkeypatch.setattr(shipped_mod, "_resource_dir", lambda: tmp_path / "missing")
    with pytest.raises(ModelLoadError) as err:
        fakescope.load()
    assert "no shipped detector" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.shared_data
def test_the_training_manifests_keep_each_source_test_split_out_of_training(shared_data, tmp_path):
    """scripts/train_shipped.py's pooled manifest: each source's test split is exactly the one a
    single-source run is tested on, no group is on two sides, and every training row names its source."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from train_shipped import build_manifests
    finally:
        sys.path.pop(0)
    from fakescope.data.manifest import read_manifest

    paths = build_manifests(shared_data, tmp_path)
    pooled = read_manifest(paths["pooled"])
    sides: dict[str, set[str]] = {}
    for r in pooled:
        sides.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in sides.values())
    assert {r.dataset for r in pooled if r.split == "train"} == {"dfdc", "ffhq-stylegan", "ciplab-photoshop"}
    more = {r.path for r in read_manifest(shared_data / "dfdc-faces-more" / "manifest.csv")}
    assert all(r.split == "train" for r in pooled if r.path in more)
    expected = {p for p, _, _ in _test_rows(shared_data, 10_000)}
    assert {r.path for r in pooled if r.split == "test"} == expected


@pytest.mark.slow
def test_retraining_the_shipped_recipe_in_a_new_process_gives_bit_identical_weights(tiny_data, tmp_path):
    """The model card's promise: ``scripts/train_shipped.py`` run again with the same thread count
    gives the same weights, bit for bit. Two separate processes (fresh hash seeds, fresh loader
    workers) train the shipped recipe at tiny size on real faces of every source; the second reads the
    crops the first decoded into the cache, which must not move a single pixel either."""
    import subprocess

    import torch
    from safetensors.torch import load_file

    tiny = ["data.image_size=64", "train.epochs=2", "train.max_steps_per_epoch=3", "train.batch_size=8",
            "train.progress=false", f"data.crop_cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    runs = []
    for name in ("first", "second"):
        out = tmp_path / name
        cmd = [sys.executable, str(REPO / "scripts" / "train_shipped.py"), "--data", str(tiny_data), "--out",
               str(out), "--threads", "1", "--until", "train"]  # fmt: skip
        for s in tiny:
            cmd += ["--set", s]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(out / "run" / "checkpoints")
    assert (tmp_path / "cache").is_dir() and any((tmp_path / "cache").rglob("*"))
    # The promise holds per CPU, so the summary names the CPU and the instruction set that trained.
    cpu = json.loads((tmp_path / "first" / "train_summary.json").read_text())["cpu"]
    assert cpu["model"] and cpu["capability"] == torch.backends.cpu.get_cpu_capability()
    for name in ("best", "last"):
        a, b = (load_file(r / f"{name}.safetensors") for r in runs)
        assert a.keys() == b.keys() and len(a) > 100
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}: {k} differs"
