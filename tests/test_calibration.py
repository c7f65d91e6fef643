"""Calibration (fakescope.eval.calibration, fakescope.inference.calibration): temperature scaling,
isotonic regression stored as breakpoints, ECE, the threshold at a false-positive rate, the reliability
diagram; and ``fakescope calibrate`` on a tiny run trained on real faces, then ``detect --json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fakescope
from fakescope.errors import InputError, ModelLoadError
from fakescope.eval.calibration import (
    cross_fit,
    ece,
    ece_interval,
    fit_calibration,
    fit_isotonic,
    fit_temperature,
    nll,
    reliability_diagram,
    threshold_at_fpr,
)
from fakescope.inference.calibration import Calibration, apply_temperature
from fakescope.utils.atomic import atomic_write_json


def _overconfident(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from calibrated logits ``a``; the "model" reports ``sigmoid(temperature * a)``, so the
    temperature that calibrates it is ``temperature``."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 2.0, n)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-a))).astype(np.int64)
    return 1.0 / (1.0 + np.exp(-temperature * a)), y


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_temperature_scaling_recovers_a_known_temperature_and_lowers_ece(true_t):
    scores, y = _overconfident(20000, true_t)
    t = fit_temperature(scores, y)
    assert t == pytest.approx(true_t, rel=0.06)
    calibrated = apply_temperature(scores, t)
    assert ece(calibrated, y) < 0.02 < ece(scores, y)
    assert nll(calibrated, y) < nll(scores, y)
    # the order of the scores is kept: calibration never changes a ranking
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(calibrated[order]) >= 0)


def test_ece_matches_a_hand_computed_case_and_its_interval_covers_it():
    # two bins used: [0.0, 1/15) holds p=0.0 x2 (one fake): gap |0.5 - 0| = 0.5, weight 2/4;
    # [14/15, 1] holds p=1.0 x2 (both fake): gap 0. ECE = 0.25.
    assert ece([0.0, 0.0, 1.0, 1.0], [0, 1, 1, 1]) == pytest.approx(0.25)
    scores, y = _overconfident(2000, 3.0, seed=1)
    got = ece_interval(scores, y, bootstrap=200, seed=0)
    assert got["low"] <= got["ece"] <= got["high"] and got["high"] - got["low"] < 0.1
    assert ece_interval(scores, y, bootstrap=0)["low"] is None


def test_isotonic_stored_as_json_and_reloaded_gives_identical_outputs(tmp_path):
    from sklearn.isotonic import IsotonicRegression

    scores, y = _overconfident(3000, 2.0, seed=2)
    cal = fit_calibration(scores, y, method="isotonic", bootstrap=0)
    assert cal.method == "isotonic" and cal.x == fit_isotonic(scores, y)[0]
    path = tmp_path / "calibration.json"
    atomic_write_json(path, cal.to_json())
    back = Calibration.load(path)
    probe = np.concatenate([np.linspace(-0.5, 1.5, 997), scores[:500]])
    assert np.array_equal(back.apply(probe), cal.apply(probe))
    sk = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
    np.testing.assert_allclose(back.apply(probe), sk.predict(probe), rtol=0, atol=1e-12)
    assert back.threshold == cal.threshold and back.video_threshold == cal.video_threshold
    assert (
        "pickle" not in path.read_text()
        and json.loads(path.read_text())["calibrator"]["method"] == "isotonic"
    )


@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.2])
def test_threshold_at_fpr_keeps_the_rate_on_the_fitting_reals_and_is_the_smallest_such(fpr):
    rng = np.random.default_rng(3)
    reals = np.round(rng.beta(2, 5, 997), 3)  # rounded: many ties
    t = threshold_at_fpr(reals, fpr)
    assert np.mean(reals >= t) <= fpr
    below = reals[reals < t].max()  # the next lower threshold lets more reals through than allowed
    assert np.mean(reals >= below) > fpr


def test_fit_calibration_chooses_by_cross_fitted_nll_and_records_both(tmp_path):
    scores, y = _overconfident(4000, 3.0, seed=4)
    videos = [f"v{i // 4}" for i in range(len(y))]
    cal = fit_calibration(scores, y, videos, fpr=0.05, bootstrap=50)
    sel = cal.info["selection"]
    other = "isotonic" if cal.method == "temperature" else "temperature"
    assert sel["chosen"] == cal.method and sel[cal.method]["nll"] <= sel[other]["nll"]
    assert {"nll", "ece"} <= set(sel["temperature"]) and {"nll", "ece"} <= set(sel["isotonic"])
    assert sel == cross_fit(scores, y, folds=2, seed=0) | {"rule": sel["rule"], "chosen": cal.method}
    assert cal.info["ece_after"]["ece"] < cal.info["ece_before"]["ece"]
    assert cal.info["val_fpr"] <= 0.05
    # the video threshold is set on the mean frame score of each real video
    by_video = {}
    for v, s, label in zip(videos, scores, y, strict=True):
        by_video.setdefault(v, []).append((s, label))
    real_means = [
        np.mean([s for s, _ in rows]) for rows in by_video.values() if max(lab for _, lab in rows) == 0
    ]
    assert np.mean(np.array(real_means) >= cal.video_threshold) <= 0.05
    png = reliability_diagram(y, {"raw": scores, "calibrated": cal.apply(scores)}, tmp_path / "r.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 200


def test_bad_inputs_get_one_clear_line(tmp_path):
    with pytest.raises(InputError, match="one class only"):
        fit_calibration([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(InputError, match="no real face"):
        threshold_at_fpr([], 0.05)
    (tmp_path / "calibration.json").write_text('{"format": "something else"}')
    with pytest.raises(ModelLoadError, match="not a usable calibration"):
        Calibration.load(tmp_path / "calibration.json")


# ---- end to end: a tiny run trained on real faces, calibrated, then detect --------------------------------


@pytest.fixture(scope="module")
def tiny_run(face_set, tmp_path_factory) -> Path:
    from fakescope.config import config_from_dict
    from fakescope.train.trainer import train

    tmp = tmp_path_factory.mktemp("calibrate")
    raw = {
        "name": "airl",
        "device": "cpu",
        "model": {"name": "airl", "backbone": "efficientnet_tiny", "pretrained": False},
        "data": {"manifest": str(face_set.manifest), "image_size": 64, "max_per_split": 16},
        "train": {"epochs": 1, "batch_size": 8, "progress": False, "feature_cache_dir": str(tmp / "cache")},
        "eval": {"bootstrap": 0, "frames_per_video": 4},
    }
    run = tmp / "airl"
    train(config_from_dict(raw), run)
    return run


def _detect_json(capsys, run: Path, faces: list[Path]) -> dict:
    from fakescope.cli import main

    rc = main(["detect", *map(str, faces), "--model", str(run), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


@pytest.mark.slow
def test_calibrate_run_then_detect_shows_probability_and_familiarity(tiny_run, face_set, tmp_path, capsys):
    import shutil

    from fakescope.cli import main

    faces = face_set.real[-1:] + face_set.fake[-1:]
    plain = tmp_path / "plain"
    shutil.copytree(tiny_run, plain)  # the same run without the files: detect shows neither
    rc = main(["calibrate", "--run", str(tiny_run), "--data", str(face_set.manifest), "--max-val", "48",
               "--max-train", "48", "--bootstrap", "20", "--device", "cpu", "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    summary = json.loads(out)
    for name in ("calibration.json", "familiarity.safetensors", "reliability.png"):
        assert (tiny_run / name).stat().st_size > 0, name
    assert summary["split"] == "val" and summary["n_val"] == 48 and summary["val_fpr"] <= 0.05
    assert summary["method"] in ("temperature", "isotonic")
    assert summary["familiarity"]["method"] == "mahalanobis_layers"  # the default
    assert summary["familiarity"]["familiar_fraction_val"] >= 0.95
    for key in ("ece_before", "ece_after"):  # on 48 faces the upward-biased bootstrap may sit above the point
        assert 0.0 <= summary[key]["low"] <= summary[key]["high"] <= 1.0 and 0.0 <= summary[key]["ece"] <= 1.0
    cal = Calibration.load(tiny_run / "calibration.json")

    doc = _detect_json(capsys, tiny_run, faces)
    assert doc["threshold"] == pytest.approx(cal.threshold)
    for r in doc["results"]:
        face = r["faces"][0]
        assert face["probability"] == pytest.approx(float(cal.apply(face["score"])), abs=1e-6)
        assert face["label"] == ("fake" if face["score"] >= cal.threshold else "real")
        fam = face["familiarity"]
        assert set(fam) == {"score", "threshold", "unfamiliar"} and fam["unfamiliar"] == (
            fam["score"] > fam["threshold"]
        )
        assert fam["threshold"] == pytest.approx(summary["familiarity"]["threshold"], rel=1e-5, abs=1e-5)

    base = _detect_json(capsys, plain, faces)
    meta = json.loads((plain / "checkpoints" / "best.json").read_text())
    assert base["threshold"] == pytest.approx(meta["val_threshold"]["frame"])
    for r, r_cal in zip(base["results"], doc["results"], strict=True):
        face = r["faces"][0]
        assert "probability" not in face and "familiarity" not in face
        assert face["score"] == pytest.approx(
            r_cal["faces"][0]["score"], abs=1e-6
        )  # the raw score is unchanged


@pytest.mark.slow
def test_energy_familiarity_and_the_detect_table_show_both_columns(tiny_run, face_set, tmp_path, capsys):
    import shutil

    from fakescope.cli import main
    from fakescope.eval.calibrate import calibrate_run
    from fakescope.inference.familiarity import Familiarity

    run = tmp_path / "run"
    shutil.copytree(
        tiny_run, run, ignore=shutil.ignore_patterns("calibration.json", "familiarity.*", "reliability.*")
    )
    face = face_set.fake[-1]
    rc = main(["detect", str(face), "--model", str(run)])
    plain = capsys.readouterr().out
    assert rc == 0 and "calibrated" not in plain and "familiarity" not in plain
    summary = calibrate_run(run, face_set.manifest, familiarity="energy", max_val=40, bootstrap=0,
                            device="cpu", progress=False)  # fmt: skip
    fam = Familiarity.load(run / "familiarity.safetensors")
    assert fam.method == "energy" and fam.threshold == pytest.approx(summary["familiarity"]["threshold"])
    assert summary["familiarity"]["n_train"] == 0  # energy needs no training faces
    rc = main(["detect", str(face), "--model", str(run)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    header, _, row = out.splitlines()[:3]
    assert header.split()[:6] == ["input", "kind", "faces", "P(fake)", "calibrated", "familiarity"]
    det = fakescope.load(run)
    pred = det.predict(face)
    f = pred.faces[0]
    assert f"{float(det.calibration.apply(pred.score)):.3f}" in row
    assert ("UNFAMILIAR" in row) == f.familiarity["unfamiliar"] and f"{f.familiarity['score']:.2f}" in row
    assert ("unfamiliar input" in err) == f.familiarity["unfamiliar"]


@pytest.mark.slow
def test_a_calibrated_run_scores_video_frames_with_probability_and_familiarity(tiny_run, face_set, tmp_path):
    import shutil

    from fakescope.eval.calibrate import calibrate_run

    run = tmp_path / "run"
    shutil.copytree(
        tiny_run, run, ignore=shutil.ignore_patterns("calibration.json", "familiarity.*", "reliability.*")
    )
    calibrate_run(run, face_set.manifest, max_val=40, max_train=40, bootstrap=0, device="cpu", progress=False)
    det = fakescope.load(run)
    assert (
        det.video_threshold == det.calibration.video_threshold and det.threshold == det.calibration.threshold
    )
    pred = det.predict(face_set.videos[0])
    assert pred.kind == "video" and pred.faces
    assert pred.label == ("fake" if pred.score >= det.calibration.video_threshold else "real")
    for f in pred.faces:
        assert f.probability == pytest.approx(float(det.calibration.apply(f.score)))
        assert f.label == ("fake" if f.score >= det.calibration.threshold else "real")
        assert f.familiarity["threshold"] == pytest.approx(det.familiarity.threshold, abs=1e-6)
    # each frame's face carries its own familiarity: the one its crop gets when scored alone
    for f in pred.faces:
        again = det.predict(f.crop, aligned=True).faces[0]
        assert again.score == pytest.approx(f.score, abs=1e-5)
        assert again.familiarity["score"] == pytest.approx(f.familiarity["score"], rel=1e-4, abs=1e-4)
    assert len({round(f.familiarity["score"], 4) for f in pred.faces}) > 1  # not one value for all


def test_files_fitted_for_other_weights_are_not_used(tmp_path, caplog):
    from fakescope.inference.calibration import load_run_extras
    from fakescope.inference.familiarity import fit_familiarity

    scores, y = _overconfident(400, 2.0)
    cal = fit_calibration(scores, y, bootstrap=0)
    cal.info["fitted_on"] = {"weights_sha256": "a" * 64, "step": 7}
    atomic_write_json(tmp_path / "calibration.json", cal.to_json())
    fam = fit_familiarity("energy")
    fam.set_threshold([1.0, 2.0, 3.0])
    fam.info = {"weights_sha256": "a" * 64, "step": "7"}
    fam.save(tmp_path / "familiarity.safetensors")
    got_cal, got_fam = load_run_extras(tmp_path, {"weights_sha256": "a" * 64, "step": 7})
    assert got_cal.threshold == cal.threshold and got_fam.method == "energy"
    # the same step stored at another precision (a packaged float16 copy): another hash, still used
    assert load_run_extras(tmp_path, {"weights_sha256": "b" * 64, "step": 7})[0] is not None
    # another checkpoint of the run (prefer="last"): neither is used, and a warning says why
    assert load_run_extras(tmp_path, {"weights_sha256": "b" * 64, "step": 9}) == (None, None)
    assert "fitted for other weights" in caplog.text
    # an ONNX export gives no features: a Mahalanobis model is dropped for it, the calibration kept
    x = np.random.default_rng(0).normal(size=(50, 8))
    maha = fit_familiarity("mahalanobis", x, np.arange(50) % 2)
    maha.set_threshold(maha.score(features=x))
    maha.save(tmp_path / "familiarity.safetensors")
    got_cal, got_fam = load_run_extras(tmp_path, {}, engine="onnx")
    assert got_cal is not None and got_fam is None


@pytest.mark.slow
def test_layer_familiarity_through_calibrate_and_detect(tiny_run, face_set, tmp_path):
    """``--familiarity mahalanobis_layers``: fitted on every stage of AIRL's two streams, and detect
    gives each face the score its own forward pass gives, alone or in a batch."""
    import shutil

    from fakescope.cli import main
    from fakescope.inference.familiarity import Familiarity

    run = tmp_path / "run"
    shutil.copytree(
        tiny_run, run, ignore=shutil.ignore_patterns("calibration.json", "familiarity.*", "reliability.*")
    )
    rc = main(["calibrate", "--run", str(run), "--data", str(face_set.manifest), "--familiarity",
               "mahalanobis_layers", "--max-val", "40", "--max-train", "40", "--bootstrap", "0", "--device", "cpu"])  # fmt: skip
    assert rc == 0
    fam = Familiarity.load(run / "familiarity.safetensors")
    assert fam.method == "mahalanobis_layers" and fam.needs[-1] == "features"
    assert any(n.startswith("dct_stream.cnn.convs.") for n in fam.layers)
    assert any(n.startswith("backbone.") for n in fam.layers)
    from fakescope.data.images import load_image_rgb

    det = fakescope.load(run)
    faces = [face_set.real[-1], face_set.fake[-1]]
    alone = [det.predict(f, aligned=True).faces[0].familiarity for f in faces]
    for f in alone:
        assert set(f) == {"score", "threshold", "unfamiliar"} and np.isfinite(f["score"])
        assert f["threshold"] == pytest.approx(fam.threshold, abs=1e-5)
    again = [det.predict(f, aligned=True).faces[0].familiarity["score"] for f in faces]
    assert again == [f["score"] for f in alone]  # the hooks keep nothing from one call to the next
    scores, _, _ = det.score_crops([load_image_rgb(f) for f in faces])  # one batch of both
    together = [fam_["score"] for _, fam_ in det.extras.per_face(scores)]
    np.testing.assert_allclose(together, [f["score"] for f in alone], rtol=1e-4)
