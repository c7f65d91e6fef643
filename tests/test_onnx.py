"""The ONNX path for inference (issue 15): `fakescope export` and `--engine onnx` on face crops
(``face_set``: DFDC from ../shared/data, or the embedded stand-in set without it).

The AIRL run is tiny but real: `airl` with the pretrained Lite0 backbone (shipped by a package, no hub)
at 64 px, trained one epoch on a few dozen crops, so its scores spread across faces and a wrong
ONNX path (another resize, unnormalised pixels, a traced constant) moves them by far more than the
1e-3 parity tolerance; the tests check that spread too. INFER-family heads are checked on the batch the
engine builds, with checkpoints saved straight from freshly built detectors (the head's parity does not
depend on training).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cli_support import run_cli
from fakescope.config import config_from_dict
from fakescope.errors import ModelLoadError

TOL = 1e-3


def _cfg(manifest: Path, tmp: Path, model: dict, **sections) -> dict:
    raw = {
        "name": model["name"],
        "device": "cpu",
        "data": {
            "manifest": str(manifest),
            "image_size": 64,
            "max_per_split": 16,
        },
        "model": model,
        "train": {"epochs": 1, "batch_size": 8, "progress": False, "feature_cache_dir": str(tmp / "cache")},
        "eval": {"bootstrap": 0, "frames_per_video": 4},
    }
    for key, section in sections.items():
        raw.setdefault(key, {}).update(section)
    return raw


@pytest.fixture(scope="module")
def airl_run(face_set, tmp_path_factory) -> Path:
    from fakescope.train.trainer import train

    tmp = tmp_path_factory.mktemp("onnx_airl")
    raw = _cfg(face_set.manifest, tmp, {"name": "airl", "backbone": "lite0", "pretrained": True})
    train(config_from_dict(raw), tmp / "airl")
    return tmp / "airl"


@pytest.fixture(scope="module")
def airl_onnx(airl_run, tmp_path_factory) -> Path:
    from fakescope.inference.onnx_engine import export_onnx

    out = tmp_path_factory.mktemp("onnx_files") / "airl.onnx"
    export_onnx(airl_run, out)
    return out


@pytest.fixture(scope="module")
def faces(face_set) -> tuple[list[np.ndarray], np.ndarray]:
    """100 face crops (50 real, 50 fake, in manifest order) and their labels (1 = fake)."""
    from fakescope.data.images import load_image_rgb

    root = face_set.root
    with open(face_set.manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = [r for r in rows if r["label"] == "real"][:50] + [r for r in rows if r["label"] == "fake"][:50]
    crops = [load_image_rgb(root / r["path"]) for r in picked]
    return crops, np.array([int(r["label"] == "fake") for r in picked])


@pytest.fixture(scope="module")
def fp32_scores(airl_run, airl_onnx, faces) -> tuple[np.ndarray, np.ndarray]:
    """P(fake) of the 100 faces from the torch engine and from the fp32 ONNX engine."""
    from fakescope.api import load

    crops, _ = faces
    return load(airl_run).score_crops(crops)[0], load(airl_onnx, engine="onnx").score_crops(crops)[0]


def _saved_run(tmp: Path, raw: dict) -> Path:
    """A run folder holding an untrained detector's checkpoint (for export checks that need no training)."""
    from fakescope.inference.checkpoint import save_checkpoint
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector

    cfg = config_from_dict(raw)
    run = tmp / raw["name"]
    det = build_detector(cfg.model, input_spec_for(cfg)).eval()
    save_checkpoint(run / "checkpoints", "best", model=det, cfg=cfg, detector_name=cfg.model.name, epoch=0,
                    step=0, val_threshold={"frame": 0.4, "video": 0.45})  # fmt: skip
    return run


def test_fp32_scores_match_pytorch_on_100_real_faces(airl_run, airl_onnx, faces, fp32_scores):
    import onnx

    from fakescope.api import load

    crops, _ = faces
    torch_det, onnx_det = load(airl_run), load(airl_onnx, engine="onnx")
    assert (torch_det.engine, onnx_det.engine) == ("torch", "onnx")
    want, got = fp32_scores
    assert len(got) == len(want) == 100
    assert np.abs(got - want).max() < TOL
    # The check can fail: the scores spread, and mirrored faces (one wrong step) move them far past TOL.
    mirrored = torch_det.score_crops([c[:, ::-1].copy() for c in crops])[0]
    assert want.std() > 10 * TOL and np.abs(mirrored - want).max() > 10 * TOL
    assert (onnx_det.threshold, onnx_det.video_threshold) == (torch_det.threshold, torch_det.video_threshold)
    props = {p.key: p.value for p in onnx.load(str(airl_onnx)).metadata_props}
    meta = json.loads((airl_run / "checkpoints" / "best.json").read_text())
    assert props["detector"] == "airl" and props["image_size"] == "64" and props["backbone"] == "lite0"
    assert props["source_weights_sha256"] == meta["weights_sha256"]
    assert json.loads(props["val_threshold"]) == meta["val_threshold"]
    assert props["fakescope.version"] and "[0,1]" in props["normalisation"]


def test_detect_engine_onnx_gives_the_same_json_as_torch(airl_run, airl_onnx, face_set, capsys):
    paths = face_set.fake[:3] + face_set.real[:3]
    common = [*map(str, paths), "--aligned", "--json"]
    rc_t, out_t, err_t = run_cli(capsys, "detect", *common, "--model", str(airl_run))
    rc_o, out_o, err_o = run_cli(capsys, "detect", *common, "--model", str(airl_onnx), "--engine", "onnx")
    assert rc_t == rc_o == 0, (err_t, err_o)
    doc_t, doc_o = json.loads(out_t), json.loads(out_o)
    assert (doc_t["engine"], doc_o["engine"]) == ("torch", "onnx")
    assert set(doc_t) == set(doc_o) and doc_t["threshold"] == doc_o["threshold"]
    assert len(doc_t["results"]) == len(doc_o["results"]) == 6
    for rt, ro in zip(doc_t["results"], doc_o["results"], strict=True):
        assert set(rt) == set(ro) and rt["source"] == ro["source"]
        assert abs(rt["score"] - ro["score"]) < TOL
        if abs(rt["score"] - doc_t["threshold"]) > TOL:
            assert rt["label"] == ro["label"]


def test_int8_export_scores_real_faces_and_its_auc_change_is_computed(
    airl_run, airl_onnx, faces, fp32_scores, tmp_path
):
    import onnx
    from sklearn.metrics import roc_auc_score

    from fakescope.api import load
    from fakescope.inference.onnx_engine import export_onnx

    crops, labels = faces
    int8 = tmp_path / "airl-int8.onnx"
    export_onnx(airl_run, int8, quantize="int8")
    props = {p.key: p.value for p in onnx.load(str(int8)).metadata_props}
    assert props["quantization"] == "int8-dynamic"
    assert int8.stat().st_size < airl_onnx.stat().st_size
    fp32 = fp32_scores[1]
    q = load(int8, engine="onnx").score_crops(crops)[0]
    assert np.isfinite(q).all() and (q >= 0).all() and (q <= 1).all()
    change = roc_auc_score(labels, q) - roc_auc_score(labels, fp32)
    assert np.isfinite(change)


def test_infer_head_on_precomputed_heatmaps_matches_pytorch(face_set, tmp_path, faces):
    from fakescope.api import load
    from fakescope.inference.onnx_engine import export_onnx

    inr = {"resolution": 32, "max_steps": 10, "workers": 1}
    raw = _cfg(face_set.manifest, tmp_path, {"name": "heatmaps"}, inr=inr)
    run = _saved_run(tmp_path, raw)
    export_onnx(run, tmp_path / "heatmaps.onnx")
    torch_det, onnx_det = load(run), load(tmp_path / "heatmaps.onnx", engine="onnx")
    assert onnx_det.inputs == frozenset({"image", "heatmaps"})
    # One batch (heatmaps fitted once) through both classifiers: the head's parity on the same inputs.
    batch, _, _ = torch_det.build_batch(faces[0][:3])
    want, got = torch_det.classify(batch), onnx_det.classify(batch)
    assert np.abs(got - want).max() < TOL and want.std() > TOL


def test_infer_head_fed_a_pretrained_frozen_embedding_matches_pytorch(face_set, tmp_path, faces):
    from fakescope.api import load
    from fakescope.inference.onnx_engine import export_onnx

    raw = _cfg(face_set.manifest, tmp_path, {"name": "clip", "backbone": "lite0", "pretrained": True})
    run = _saved_run(tmp_path, raw)
    export_onnx(run, tmp_path / "clip.onnx")
    torch_det, onnx_det = load(run), load(tmp_path / "clip.onnx", engine="onnx")
    assert onnx_det.detector.backbone is not None  # rebuilt from lite0 and checked against its hash
    want, got = torch_det.score_crops(faces[0][:8])[0], onnx_det.score_crops(faces[0][:8])[0]
    assert np.abs(got - want).max() < TOL and want.std() > TOL


def test_bad_inputs_give_one_clear_line(face_set, tmp_path, capsys, airl_onnx):
    face = str(face_set.real[0])
    rc, _, err = run_cli(
        capsys, "export", "--run", str(tmp_path / "nope"), "--onnx", str(tmp_path / "x.onnx")
    )
    assert rc == 2 and err.count("\n") == 1 and "no such run directory" in err
    # A family with no export, and an INFER head whose frozen backbone could not be rebuilt.
    meso = _saved_run(tmp_path, _cfg(face_set.manifest, tmp_path, {"name": "meso4"}))
    rc, _, err = run_cli(capsys, "export", "--run", str(meso), "--onnx", str(tmp_path / "m.onnx"))
    assert rc == 2 and err.count("\n") == 1 and "meso4" in err and "only the AIRL family" in err
    clip = _saved_run(
        tmp_path,
        _cfg(face_set.manifest, tmp_path, {"name": "clip", "backbone": "clip_tiny", "pretrained": False}),
    )
    rc, _, err = run_cli(capsys, "export", "--run", str(clip), "--onnx", str(tmp_path / "c.onnx"))
    assert rc == 2 and err.count("\n") == 1 and "randomly initialised" in err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "c.onnx").exists()
    # A corrupt .onnx (truncated), a file that is not ONNX, and a file given to the wrong engine.
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(airl_onnx.read_bytes()[:5000])
    rc, _, err = run_cli(capsys, "detect", face, "--aligned", "--model", str(bad), "--engine", "onnx")
    assert rc == 2 and err.count("\n") == 1 and "truncated.onnx" in err
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    with pytest.raises(ModelLoadError, match="junk.onnx"):
        from fakescope.api import load

        load(junk, engine="onnx")
    rc, _, err = run_cli(capsys, "detect", face, "--aligned", "--model", str(airl_onnx))
    assert rc == 2 and err.count("\n") == 1 and "--engine onnx" in err


def test_bench_engine_onnx_exports_the_random_detector_and_says_which_engine_ran(face_set, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--models", "airl", "--backbone", "efficientnet_tiny", "--image-size", "64", "-n", "2"]
    argv += ["--warmup", "1", "--aligned", "--images", str(face_set.root / "real")]
    rc, _, err = run_cli(capsys, *argv, "--engine", "onnx", "--out", str(out))
    assert rc == 0, err
    (res,) = json.loads(out.read_text())["results"]
    assert res["engine"] == "onnx" and res["model"] == "airl" and res["backbone"] == "efficientnet_tiny"
    assert res["faces"] == 2 and res["faces_per_s"] > 0
