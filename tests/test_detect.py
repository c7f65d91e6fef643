"""`fakescope detect` and the Python API on face crops with tiny trained runs.

Two runs are trained once per module through the trainer API, on a few dozen face crops of
``face_set`` (DFDC from ../shared/data, or the embedded stand-in set without it) at small size: an
AIRL-family run (random tiny EfficientNet) and an INFER-family run (tiny CLIP + INR
heatmaps at 16 px). Scores of such tiny models carry no meaning; the tests check what a user sees:
the fields, the thresholds, the report files, and one clear line per bad input.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fakescope
from fakescope.cli import main
from fakescope.config import config_from_dict
from fakescope.errors import ModelLoadError, NoFaceError

pytestmark = [pytest.mark.slow]


def _train(tmp: Path, manifest: Path, overrides: dict) -> Path:
    from fakescope.train.trainer import train

    raw = {
        "name": overrides["model"]["name"],
        "device": "cpu",
        "data": {
            "manifest": str(manifest),
            "image_size": 64,
            "max_per_split": 16,
        },
        "train": {"epochs": 1, "batch_size": 8, "progress": False, "feature_cache_dir": str(tmp / "cache")},
        "eval": {"bootstrap": 0, "frames_per_video": 4},
    }
    for key, section in overrides.items():
        raw.setdefault(key, {}).update(section)
    run = tmp / raw["name"]
    train(config_from_dict(raw), run)
    return run


@pytest.fixture(scope="module")
def airl_run(face_set, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("airl")
    model = {"name": "airl", "backbone": "efficientnet_tiny", "pretrained": False}
    return _train(tmp, face_set.manifest, {"model": model})


@pytest.fixture(scope="module")
def infer_run(face_set, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("infer")
    return _train(
        tmp,
        face_set.manifest,
        {
            "model": {"name": "infer", "backbone": "clip_tiny", "pretrained": False},
            "data": {"max_per_split": 8},
            "inr": {"resolution": 16, "max_steps": 150, "workers": 1},
        },
    )


def _faces(face_set, n: int = 2) -> list[Path]:
    return face_set.real[-1:] + face_set.fake[-(n - 1) :]


def _run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["detect", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_detect_json_fields_and_report_files_on_real_faces(airl_run, face_set, tmp_path, capsys):
    faces = _faces(face_set)
    report = tmp_path / "report"
    rc, out, err = _run_cli(
        capsys, *map(str, faces), "--model", str(airl_run), "--json", "--report", str(report)
    )
    assert rc == 0, err
    doc = json.loads(out)
    meta = json.loads((airl_run / "checkpoints" / "best.json").read_text())
    assert doc["detector"] == "airl" and doc["errors"] == []
    assert doc["threshold"] == pytest.approx(meta["val_threshold"]["frame"])
    assert doc["threshold_source"] == "validation"
    assert [r["source"] for r in doc["results"]] == [str(f) for f in faces]
    for r in doc["results"]:
        assert r["kind"] == "image" and len(r["faces"]) == 1
        face = r["faces"][0]
        assert 0.0 <= face["score"] <= 1.0 and r["score"] == face["score"]
        assert face["label"] == ("fake" if face["score"] >= doc["threshold"] else "real")
        x1, y1, x2, y2 = face["box"]
        width, height = Image.open(r["source"]).size
        # A box around the face; on a tight crop (the stand-in faces) it may run past the border.
        assert x1 < x2 and y1 < y2 and 0 <= (x1 + x2) / 2 < width and 0 <= (y1 + y2) / 2 < height
        lm = np.array(face["landmarks"])
        assert lm.shape == (5, 2)
        assert lm[0, 0] < lm[1, 0]  # the left eye is left of the right eye: a real upright face
        assert face["detection_score"] >= 0.9
    index = Path(doc["report"])
    assert index.is_file() and all(f.name in index.read_text() for f in faces)
    for i, _ in enumerate(faces):
        folder = next(report.glob(f"{i:03d}_*"))
        for name in ("index.html", "face00_crop.png", "face00_gradcam.png", "face00_dct.png"):
            assert (folder / name).stat().st_size > 0, name
        html = (folder / "index.html").read_text()
        assert "face00_gradcam.png" in html and "threshold" in html


def test_api_predict_path_pil_array_and_aligned_crop(airl_run, face_set):
    det = fakescope.load(airl_run)
    path = _faces(face_set)[0]
    by_path = det.predict(path)
    by_pil = det.predict(Image.open(path))
    by_array = det.predict(np.asarray(Image.open(path).convert("RGB")))
    assert by_path.score == pytest.approx(by_pil.score, abs=1e-6) == pytest.approx(by_array.score, abs=1e-6)
    crop = det.predict(path, aligned=True)
    assert crop.faces[0].box is None and crop.faces[0].landmarks is None
    assert det.counts["faces"] == 4 and det.timings["classifier"] > 0


def test_video_score_is_the_mean_of_its_frame_scores(airl_run, face_set, tmp_path):
    video = face_set.videos[0]
    det = fakescope.load(airl_run)
    pred = det.predict(video)
    assert pred.kind == "video" and pred.frames_sampled == 4  # eval.frames_per_video of the run
    scores = [f.score for f in pred.frames if f.score is not None]
    assert len(scores) == 4 - pred.frames_no_face
    assert pred.score == pytest.approx(float(np.mean(scores)))
    assert pred.label == ("fake" if pred.score >= det.video_threshold else "real")
    assert [f.frame for f in pred.faces] == sorted(f.frame for f in pred.faces)
    d = pred.to_dict()
    assert {"frames", "frames_sampled", "frames_no_face", "no_face_policy"} <= set(d)
    from fakescope.explain.report import write_report

    html = write_report(pred.report_data(), det.explain(pred), tmp_path / "video")
    assert (tmp_path / "video" / "score_over_time.png").stat().st_size > 0
    assert "Score over time" in html.read_text()


def test_infer_family_report_shows_inr_heatmaps_and_gradcam(infer_run, face_set, tmp_path, capsys):
    face = _faces(face_set)[1]
    rc, out, err = _run_cli(capsys, str(face), "--model", str(infer_run), "--json", "--report", str(tmp_path))
    assert rc == 0, err
    res = json.loads(out)["results"][0]["faces"][0]
    assert res["inr"]["steps"] >= 1 and res["inr"]["psnr"] > 10  # the fit is reported, never hidden
    folder = next(tmp_path.glob("000_*"))
    assert (folder / "face00_inr_heatmaps.png").stat().st_size > 0
    assert (folder / "face00_gradcam.png").stat().st_size > 0
    assert not (folder / "face00_dct.png").exists()  # the DCT residual belongs to the AIRL family


def test_bad_inputs_get_one_clear_line_each_and_the_rest_goes_on(airl_run, face_set, tmp_path, capsys):
    good = _faces(face_set)[0]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(good.read_bytes()[:2000])
    noface = tmp_path / "wall.png"
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(noface)
    unsupported = tmp_path / "notes.txt"
    unsupported.write_text("not an image")
    rc, out, err = _run_cli(
        capsys, str(corrupt), str(noface), str(unsupported), str(good), "--model", str(airl_run)
    )
    assert rc == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("fakescope detect:")]
    assert len(lines) == 3, err
    assert "corrupt.jpg" in lines[0] and "truncated" in lines[0]
    assert "wall.png" in lines[1] and "no face" in lines[1]
    assert "notes.txt" in lines[2] and "not a recognised image" in lines[2]
    assert "Traceback" not in err
    assert str(good) in out and "image" in out  # the good file was still scored


def test_missing_model_directory_is_one_line(tmp_path, capsys):
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    rc, out, err = _run_cli(capsys, str(img), "--model", str(tmp_path / "no_such_run"))
    assert rc == 2 and out == ""
    assert err.strip().count("\n") == 0 and "no_such_run" in err and "no such run directory" in err


def test_checkpoint_from_another_detector_is_one_line(airl_run, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(airl_run / "checkpoints", ckpt)
    meta = json.loads((ckpt / "best.json").read_text())
    meta["detector"] = meta["config"]["model"]["name"] = "airl_rgb"  # weights stay AIRL's two streams
    (ckpt / "best.json").write_text(json.dumps(meta))
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    rc, out, err = _run_cli(capsys, str(img), "--model", str(ckpt / "best.json"))
    assert rc == 2 and out == ""
    assert err.strip().count("\n") == 0 and "do not fit" in err
    with pytest.raises(ModelLoadError):
        fakescope.load(ckpt / "best.json")


def test_predict_raises_no_face_error_for_an_empty_scene(airl_run):
    det = fakescope.load(airl_run)
    with pytest.raises(NoFaceError, match="no face"):
        det.predict(np.full((120, 120, 3), 200, np.uint8))


@pytest.mark.parametrize("run_name", ["airl_run", "infer_run"])
def test_evaluate_predict_and_detect_give_one_score_per_crop(run_name, request, face_set, tmp_path, capsys):
    """One path from a crop to a score: `evaluate`'s predictions CSV, `load(run).predict(path, aligned=True)`
    and `detect --aligned` agree to 1e-5 on the same crop files (issue 12's parity check)."""
    import csv

    from fakescope.data.manifest import read_manifest, split_by_group

    run = request.getfixturevalue(run_name)
    cfg = fakescope.load(run).cfg
    # Crops from the run's test split (never trained on), two per class.
    test_rows = split_by_group(read_manifest(face_set.manifest), cfg.data.split)["test"]
    rows = [r for r in test_rows if r.label == 0][:2] + [r for r in test_rows if r.label == 1][:2]
    manifest = tmp_path / "four.csv"
    manifest.write_text("path,label,group\n" + "".join(f"{r.path},{r.label},{r.group}\n" for r in rows))

    assert main(["evaluate", "--run", str(run), "--data", str(manifest), "--out", str(tmp_path / "ev"),
                 "--no-plots", "--device", "cpu"]) == 0  # fmt: skip
    capsys.readouterr()
    (pred_csv,) = (tmp_path / "ev" / "predictions").glob("*four.csv")
    with open(pred_csv, newline="") as fh:
        by_eval = {row["path"]: float(row["score"]) for row in csv.DictReader(fh)}

    det = fakescope.load(run)
    by_api = {r.path: det.predict(r.path, aligned=True).score for r in rows}

    rc, out, err = _run_cli(capsys, *[r.path for r in rows], "--model", str(run), "--aligned", "--json",
                            "--device", "cpu")  # fmt: skip
    assert rc == 0, err
    by_cli = {res["source"]: res["score"] for res in json.loads(out)["results"]}

    assert set(by_eval) == set(by_api) == set(by_cli) == {r.path for r in rows}
    for path in by_eval:
        assert by_api[path] == pytest.approx(by_eval[path], abs=1e-5), path
        assert by_cli[path] == pytest.approx(by_eval[path], abs=1e-5), path


def test_evaluate_never_scores_the_runs_own_images_under_another_path(
    airl_run, face_set, tmp_path, capsys, monkeypatch
):
    """Leakage guard by content: train/val images copied under new names into a derived CSV, evaluated
    from another working folder, are recognised by their bytes, excluded and counted, never scored."""
    import csv

    from fakescope.data.manifest import read_manifest, split_by_group

    seen = list(csv.DictReader((airl_run / "seen_rows.csv").read_text().splitlines()))
    train_rows = [r for r in seen if r["split"] == "train"][:2]
    val_rows = [r for r in seen if r["split"] == "val"][:1]
    copies = tmp_path / "copies"
    copies.mkdir()
    lines = ["path,label,group"]
    for i, r in enumerate(train_rows + val_rows):
        dst = copies / f"renamed_{i}.jpg"
        shutil.copyfile(r["path"], dst)
        lines.append(f"{dst},{'fake' if '/fake/' in r['path'] else 'real'},copy{i}")
    cfg = fakescope.load(airl_run).cfg
    test = split_by_group(read_manifest(face_set.manifest), cfg.data.split)["test"]
    fresh = [r for r in test if r.label == 0][:2] + [r for r in test if r.label == 1][:2]
    lines += [f"{r.path},{r.label},{r.group}" for r in fresh]
    manifest = copies / "derived.csv"
    manifest.write_text("\n".join(lines) + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rc = main(["evaluate", "--run", str(airl_run), "--data", str(manifest), "--out", str(tmp_path / "ev"),
               "--no-plots", "--device", "cpu"])  # fmt: skip
    _, err = capsys.readouterr()
    assert rc == 0, err
    assert "3 of 7 images are the run's own training images by content (2 train, 1 val)" in err
    (pred_csv,) = (tmp_path / "ev" / "predictions").glob("*derived.csv")
    scored = [row["path"] for row in csv.DictReader(pred_csv.read_text().splitlines())]
    assert sorted(scored) == sorted(r.path for r in fresh)
    summary = json.loads(next((tmp_path / "ev" / "metrics").glob("*.json")).read_text())
    assert "excluded_seen" in json.dumps(summary)


def test_a_run_saved_before_dct_input_scale_loads_with_the_scale_it_was_trained_with(airl_run, tmp_path):
    old = tmp_path / "old_run"
    shutil.copytree(airl_run, old)
    meta_path = old / "checkpoints" / "best.json"
    meta = json.loads(meta_path.read_text())
    assert meta["config"]["model"]["dct_input_scale"] == 255.0
    del meta["config"]["model"]["dct_input_scale"]
    meta_path.write_text(json.dumps(meta))
    assert fakescope.load(old).cfg.model.dct_input_scale == 1.0
    assert fakescope.load(airl_run).cfg.model.dct_input_scale == 255.0


def test_a_tight_face_crop_scored_without_aligned_is_scored_as_a_crop_and_says_so(airl_run, face_set, capsys):
    """Re-aligning a tight face crop (224 px on DFDC, 128 px stand-in) would zoom out and fill most of the
    new crop from outside the image. detect recognises a face that fills most of the image, scores it as
    --aligned would, and says which path it took."""
    path = _faces(face_set)[0]
    rc, out, err = _run_cli(capsys, str(path), "--model", str(airl_run), "--json")
    assert rc == 0, err
    res = json.loads(out)["results"][0]
    assert res["faces"][0]["path"] == "aligned-crop" and "outside_frame" not in res["faces"][0]
    assert "scored as an aligned face crop" in res["note"]
    assert "note:" in err
    rc, out, err = _run_cli(capsys, str(path), "--model", str(airl_run), "--json", "--aligned")
    forced = json.loads(out)["results"][0]
    assert "note" not in forced and forced["faces"][0]["score"] == res["faces"][0]["score"]


def test_detect_feeds_infer_family_its_cached_embedding(infer_run, face_set):
    """`detect` gives an INFER-family detector the frozen embedding through the feature cache, as
    training did, instead of re-running the frozen backbone inside the model (a misspelt flag once made
    every detector skip the cache). Both ways must give the same score."""
    import torch

    from fakescope.data.images import load_image_rgb
    from fakescope.inference.inputs import batch_for_crops
    from fakescope.inference.predict import predict_batch

    det = fakescope.load(infer_run)
    crops = [load_image_rgb(p) for p in _faces(face_set)]
    cpu = torch.device("cpu")
    with_cache, _ = batch_for_crops(crops, det.cfg, cpu, det.detector)
    without, _ = batch_for_crops(crops, det.cfg, cpu, det.detector, embeddings=False)
    assert "clip" in with_cache and "clip" not in without
    with torch.no_grad():
        a = predict_batch(det.detector, with_cache, cpu)["prob"]
        b = predict_batch(det.detector, without, cpu)["prob"]
    assert torch.allclose(a, b, atol=1e-5)
