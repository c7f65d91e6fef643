"""End to end on real faces: `fakescope train` -> `fakescope evaluate --robustness` (tiny model, 32 px),
and evaluation errors a user can hit."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from fakescope.cli import main
from fakescope.data.manifest import read_manifest, split_by_group, write_manifest
from fakescope.data.perturbations import ROBUSTNESS_SWEEP


def _manifest(shared_data: Path, folder: Path, groups: int) -> Path:
    rows = read_manifest(shared_data / "dfdc-faces" / "manifest.csv")
    keep = set(list(dict.fromkeys(r.group for r in rows))[:groups])
    return write_manifest(
        [r for r in rows if r.group in keep], folder / "faces.csv", relative_to=folder / "x"
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_train_then_evaluate_with_robustness_on_real_faces(shared_data, tmp_path, capsys):
    manifest = _manifest(shared_data, tmp_path, groups=30)
    cfg = {
        "name": "tiny-airl",
        "seed": 0,
        "data": {"manifest": str(manifest), "image_size": 32},
        "model": {"name": "airl", "backbone": "efficientnet_tiny", "pretrained": False},
        "train": {"epochs": 1, "batch_size": 8, "progress": False},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(run)]) == 0
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "best.safetensors").is_file()

    rc = main(["evaluate", "--run", str(run), "--data", str(manifest), "--data", "ffhq-stylegan",
               "--data-root", str(shared_data), "--robustness", "--max-images", "16", "--bootstrap", "50"])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "AUC" in printed and "blur_s2+jpeg_q50" in printed

    # The training set is scored on its held-out test groups only.
    test_paths = {r.path for r in split_by_group(read_manifest(manifest))["test"]}
    clean = _rows(run / "predictions" / "run__faces.csv")
    assert clean and {r["path"] for r in clean} <= test_paths
    assert {r["perturbation"] for r in clean} == {"clean"}
    ffhq = _rows(run / "predictions" / "run__ffhq-stylegan.csv")
    assert len(ffhq) == 16 and sorted(r["label"] for r in ffhq) == ["fake"] * 8 + ["real"] * 8

    robust = json.loads((run / "metrics" / "robustness.json").read_text())["robustness"]
    assert [r["perturbation"] for r in robust if r["dataset"] == "ffhq-stylegan"] == list(ROBUSTNESS_SWEEP)
    for r in robust:
        assert 0.0 <= r["auc"] <= 1.0
        assert r["auc_ci_low"] <= r["auc"] <= r["auc_ci_high"]  # every perturbed AUC has its interval
        if r["perturbation"] == "clean":
            assert r["auc_drop"] == 0.0
    # Perturbations reach the model: blurred faces get different scores from clean ones.
    blurred = _rows(run / "predictions" / "run__ffhq-stylegan__blur_s3.csv")
    assert [r["path"] for r in blurred] == [r["path"] for r in ffhq]
    assert any(a["score"] != b["score"] for a, b in zip(blurred, ffhq, strict=True))

    cross = json.loads((run / "metrics" / "cross_dataset.json").read_text())["cross_dataset"]
    assert {(c["dataset"], c["split"]) for c in cross} == {("faces", "test"), ("ffhq-stylegan", "all")}
    for c in cross:
        assert c["threshold"] is not None  # accuracy at the threshold chosen on validation
        assert 0.0 <= c["acc_val_threshold"] <= 1.0
    assert (run / "metrics" / "cross_dataset.md").read_text().startswith("| run |")
    assert (run / "plots" / "roc__ffhq-stylegan.png").stat().st_size > 1000
    assert (run / "plots" / "tsne__run__faces.png").is_file()


def test_evaluate_errors_are_one_line(tmp_path, capsys):
    assert main(["evaluate", "--run", str(tmp_path / "nope"), "--data", "ffhq-stylegan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such run directory" in err[0]
    assert main(["evaluate", "--run", str(tmp_path)]) == 2
    assert "--data" in capsys.readouterr().err
