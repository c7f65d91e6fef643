"""`fakescope ensemble`: two runs trained on real faces combined into one run, which scores, calibrates
and detects like any other, and gives exactly the mean of the members' temperature-scaled log-odds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_support import run_cli
from fakescope.cli import main


@pytest.fixture(scope="module")
def manifest(face_set, tmp_path_factory) -> Path:
    """The first 100 groups (a real face and its fake each) of the face set, absolute paths: a val split
    of about 30 faces keeps the scoring short."""
    import csv

    with open(face_set.manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    groups = set(list(dict.fromkeys(r["group"] for r in rows))[:100])
    out = tmp_path_factory.mktemp("ensemble_data") / "manifest.csv"
    lines = ["path,label,group"] + [
        f"{(face_set.root / r['path']).resolve()},{r['label']},{r['group']}"
        for r in rows
        if r["group"] in groups
    ]
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def member_runs(manifest, tmp_path_factory) -> tuple[Path, Path]:
    """An AIRL-family run and an SRM run, each trained for one tiny epoch on the same real faces."""
    from fakescope.config import config_from_dict
    from fakescope.train.trainer import train

    tmp = tmp_path_factory.mktemp("ensemble")
    runs = []
    for name in ("airl", "srm"):
        raw = {
            "name": name,
            "device": "cpu",
            "model": {"name": name, "backbone": "efficientnet_tiny", "pretrained": False},
            "data": {"manifest": str(manifest), "image_size": 64, "max_per_split": 16},
            "train": {"epochs": 1, "batch_size": 8, "progress": False},
            "eval": {"bootstrap": 0},
        }
        train(config_from_dict(raw), tmp / name)
        runs.append(tmp / name)
    return runs[0], runs[1]


@pytest.fixture(scope="module")
def ensemble_run(member_runs, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ens") / "airl+srm"
    rc = main(["ensemble", *map(str, member_runs), "--out", str(out), "--bootstrap", "50", "--device", "cpu",
               "--json"])  # fmt: skip
    assert rc == 0
    return out, json.loads((out / "ensemble.json").read_text())


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


@pytest.mark.slow
def test_the_ensemble_run_scores_the_mean_of_its_members_temperature_scaled_log_odds(
    ensemble_run, member_runs, manifest
):
    from fakescope.eval.calibrate import score_split
    from fakescope.eval.ensemble import fit_temperatures
    from fakescope.eval.metrics import auc

    out, summary = ensemble_run
    meta = json.loads((out / "checkpoints" / "best.json").read_text())
    assert meta["detector"] == "ensemble" and [m["name"] for m in meta["config"]["model"]["members"]] == [
        "airl",
        "srm",
    ]
    rows_a, a = score_split(member_runs[0], manifest, "val", device="cpu")
    rows_b, b = score_split(member_runs[1], manifest, "val", device="cpu")
    rows_e, e = score_split(out, manifest, "val", device="cpu")
    assert [r.path for r in rows_e] == [r.path for r in rows_a] == [r.path for r in rows_b]
    temps = fit_temperatures({"a": a.scores, "b": b.scores}, a.labels)
    assert [m["temperature"] for m in summary["members"]] == pytest.approx([temps["a"], temps["b"]], rel=1e-6)
    expected = 1 / (1 + np.exp(-(_logit(a.scores) / temps["a"] + _logit(b.scores) / temps["b"]) / 2))
    assert np.asarray(e.scores) == pytest.approx(expected, abs=1e-5)
    # the summary's AUC is that of the float64 combination of the members' scores (the run's own float32
    # forward pass, checked above, can break a near-tie the other way)
    assert summary["val_auc"] == pytest.approx(auc(a.labels, expected), abs=1e-9)
    assert summary["n_val"] == len(rows_e) and summary["split"] == "val"
    for m, s in zip(summary["members"], (a, b), strict=True):
        assert m["val_auc"] == pytest.approx(auc(s.labels, s.scores))
        d = m["ensemble_minus_member"]
        assert d["difference"] == pytest.approx(summary["val_auc"] - m["val_auc"], abs=1e-9)
        assert d["ci_low"] <= d["difference"] <= d["ci_high"]
    thr = meta["val_threshold"]["frame"]
    assert summary["val_threshold"]["frame"] == pytest.approx(thr) and 0.0 <= thr <= 1.0


@pytest.mark.slow
def test_detect_and_calibrate_use_the_ensemble_run_like_any_other(
    ensemble_run, member_runs, manifest, face_set, tmp_path, capsys
):
    from fakescope.inference.calibration import Calibration

    out, summary = ensemble_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    faces = face_set.real[-1:] + face_set.fake[-1:]

    def scores(model: Path) -> list[float]:
        rc, text, err = run_cli(
            capsys, "detect", *faces, "--model", model, "--aligned", "--device", "cpu", "--json"
        )
        assert rc == 0, err
        return [r["faces"][0]["score"] for r in json.loads(text)["results"]]

    a, b = scores(member_runs[0]), scores(member_runs[1])
    t = [m["temperature"] for m in summary["members"]]
    expected = 1 / (1 + np.exp(-(_logit(a) / t[0] + _logit(b) / t[1]) / 2))
    assert scores(run) == pytest.approx(expected.tolist(), abs=1e-5)

    rc, text, err = run_cli(capsys, "calibrate", "--run", run, "--data", manifest, "--max-val", "32",
                         "--max-train", "32", "--bootstrap", "0", "--device", "cpu", "--json")  # fmt: skip
    assert rc == 0, err
    assert json.loads(text)["familiarity"]["method"] == "mahalanobis_layers"
    cal = Calibration.load(run / "calibration.json")
    rc, text, err = run_cli(
        capsys, "detect", *faces, "--model", run, "--aligned", "--device", "cpu", "--json"
    )
    assert rc == 0, err
    for r in json.loads(text)["results"]:
        face = r["faces"][0]
        # detect prints both to 6 decimals: the calibration of the printed score may differ in the last
        assert face["probability"] == pytest.approx(float(cal.apply(face["score"])), abs=1e-4)
        assert set(face["familiarity"]) == {"score", "threshold", "unfamiliar"}


@pytest.mark.slow
def test_bad_ensembles_are_refused_with_one_line_and_write_nothing(
    ensemble_run, member_runs, tmp_path, capsys
):
    out, _ = ensemble_run
    cases = []
    cases.append((["ensemble", member_runs[0], "--out", tmp_path / "one"], "at least two runs"))
    cases.append((["ensemble", *member_runs, "--out", out], "already holds a run"))
    small = tmp_path / "srm32"
    shutil.copytree(member_runs[1], small)
    meta_path = small / "checkpoints" / "best.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["data"]["image_size"] = 32
    meta_path.write_text(json.dumps(meta))
    cases.append((["ensemble", member_runs[0], small, "--out", tmp_path / "mixed"], "crops faces at 32 px"))
    cases.append((["ensemble", member_runs[0], tmp_path / "nowhere", "--out", tmp_path / "x"], "no such run"))
    for argv, message in cases:
        rc, text, err = run_cli(capsys, *argv, "--device", "cpu")
        assert rc == 2 and text == "", (argv, err)
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for name in ("one", "mixed", "x"):
        assert not (tmp_path / name).exists()


def test_an_ensemble_config_without_two_members_is_refused():
    from fakescope.errors import ConfigError
    from fakescope.models.config import ModelConfig
    from fakescope.models.registry import build_detector, list_detectors
    from fakescope.models.spec import InputSpec

    member = ModelConfig(name="airl", backbone="efficientnet_tiny", pretrained=False)
    with pytest.raises(ConfigError, match="at least two members"):
        build_detector(ModelConfig(name="ensemble", members=[member], member_temperatures=[1.0]), InputSpec())
    with pytest.raises(ConfigError, match="2 members"):
        build_detector(
            ModelConfig(name="ensemble", members=[member, member], member_temperatures=[1.0]), InputSpec()
        )
    with pytest.raises(ConfigError, match="> 0"):
        build_detector(
            ModelConfig(name="ensemble", members=[member, member], member_temperatures=[1.0, 0.0]),
            InputSpec(),
        )
    assert "ensemble" not in list_detectors()  # not a family to compare in `fakescope models`
