"""The video -> aligned crops pipeline and `fakescope prepare`, on the videos of ``face_set``: the
real DFDC videos, or the stand-in clips without ../shared (alignment accuracy and detection on
full-HD frames stay with the real videos)."""

from __future__ import annotations

import csv
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakescope.cli import main
from fakescope.data.manifest import ManifestRow, read_manifest, write_manifest
from fakescope.preprocess.align import template_landmarks
from fakescope.preprocess.config import PreprocessConfig
from fakescope.preprocess.detectors import MTCNNDetector, RetinaFaceDetector
from fakescope.preprocess.pipeline import run_prepare
from fakescope.preprocess.video import read_frames

FRAMES = 4
# Near-frontal subjects, where a 5-point similarity can bring both eyes onto the template.
FRONTAL = ("lynaeydofd", "widuwuoiur")
EYE_TOLERANCE_PX = 6.0  # in the 224 px crop


@pytest.fixture(scope="module")
def job_inputs(face_set, tmp_path_factory) -> Path:
    """The set's videos, a truncated copy of one, a zero-byte file and a faceless image."""
    root = tmp_path_factory.mktemp("inputs")
    rows = read_manifest(face_set.video_manifest)
    src = face_set.videos[0]
    (root / "cut.mp4").write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    (root / "zero.mp4").write_bytes(b"")
    cv2.imwrite(str(root / "wall.png"), np.full((240, 320, 3), 128, np.uint8))
    rows += [
        ManifestRow(str(root / "cut.mp4"), 1, "cut"),
        ManifestRow(str(root / "zero.mp4"), 0, "zero"),
        ManifestRow(str(root / "wall.png"), 0, "wall"),
    ]
    write_manifest(rows, root / "manifest.csv")
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def prepared(job_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    cfg = PreprocessConfig.model_validate({"frames": {"count": FRAMES}})
    summary = run_prepare(read_manifest(job_inputs), out, cfg, progress=False)
    return out, summary


def test_every_video_yields_the_configured_number_of_aligned_crops(prepared, face_set):
    out, summary = prepared
    rows = read_manifest(out / "manifest.csv")
    per_video: dict[str, list[ManifestRow]] = {}
    for r in rows:
        per_video.setdefault(r.video, []).append(r)
    assert sorted(per_video) == sorted(v.stem for v in face_set.videos)
    for video, crops in per_video.items():
        assert len(crops) == FRAMES, video
        assert len({r.frame for r in crops}) == FRAMES
        assert {r.group for r in crops} == {video}
        for r in crops:
            img = cv2.imread(r.path)
            assert img is not None and img.shape == (224, 224, 3)
    labels = [r.label for r in read_manifest(face_set.video_manifest)]
    n_real = labels.count(0) * FRAMES
    assert sum(r.label == 0 for r in rows) == n_real  # DFDC: lynaeydofd is the one real video
    assert summary.faces_found == len(labels) * FRAMES
    assert summary.crops_by_label == {"fake": len(labels) * FRAMES - n_real, "real": n_real}


def test_bad_files_are_clear_errors_and_the_job_completes(prepared, face_set):
    out, summary = prepared
    saved = json.loads((out / "summary.json").read_text())
    errors = {Path(e["path"]).name: e["error"] for e in saved["errors"]}
    assert set(errors) == {"cut.mp4", "zero.mp4"}
    assert "cut.mp4: cannot open as a video" in errors["cut.mp4"] and "truncated" in errors["cut.mp4"]
    assert "zero.mp4: empty file" in errors["zero.mp4"]
    n = len(face_set.videos)
    assert saved["inputs"] == n + 3 and saved["jobs_processed"] == n + 1 and saved["jobs_failed"] == 2


def test_frames_without_a_face_are_counted_and_listed(prepared):
    out, summary = prepared
    assert summary.no_face_frames == 1 and summary.no_face_policy == "drop"
    assert [Path(p).name for p in summary.inputs_without_face] == ["wall.png"]
    with open(out / "no_face.csv", newline="") as fh:
        listed = list(csv.DictReader(fh))
    assert [(Path(r["source"]).name, r["label"], r["frame"]) for r in listed] == [("wall.png", "real", "")]


def test_eyes_land_on_the_template(shared_data, prepared):
    """The recorded transform takes the detected eyes to the template; for frontal faces they land
    within a few pixels, and a fresh detection on the saved crop finds them there too (an accuracy
    on real faces: shared_data)."""
    out, _ = prepared
    template = template_landmarks(224, 0.3)
    detector = RetinaFaceDetector(max_side=None)
    with open(out / "landmarks.csv", newline="") as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == 24
    for rec in records:
        eyes = np.array([[float(rec[f"aligned_{e}_eye_{a}"]) for a in "xy"] for e in ("left", "right")])
        dy, dx = eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]
        assert abs(np.degrees(np.arctan2(dy, dx))) < 6, rec["path"]  # eyes level
        if rec["video"] in FRONTAL:
            assert np.linalg.norm(eyes - template[:2], axis=1).max() < EYE_TOLERANCE_PX, rec["path"]
            crop = cv2.imread(str(out / rec["path"]))[..., ::-1]
            found = detector.detect(np.ascontiguousarray(crop))
            assert found, rec["path"]
            assert np.linalg.norm(found[0].landmarks[:2] - template[:2], axis=1).max() < EYE_TOLERANCE_PX


def test_mtcnn_and_retinaface_both_find_the_face(shared_data):
    frame = read_frames(shared_data / "dfdc-videos" / "lynaeydofd.mp4", [112])[0].image
    # Detecting on a 640-px copy keeps the test fast; coordinates come back in the 1080p frame.
    retina = RetinaFaceDetector(max_side=640).detect(frame)
    mtcnn = MTCNNDetector(max_side=640, min_face_size=40).detect(frame)
    assert len(retina) >= 1 and len(mtcnn) >= 1 and mtcnn[0].score >= 0.95
    r, m = retina[0], mtcnn[0]
    for face in (r, m):
        x1, y1, x2, y2 = face.box
        assert 60 < x2 - x1 < 800
        inside = (face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2) & (face.landmarks[:, 1] > y1)
        assert inside.all()
    # The two detectors agree on where the eyes are (within a tenth of the face width).
    width = r.box[2] - r.box[0]
    assert np.linalg.norm(r.landmarks[:2] - m.landmarks[:2], axis=1).max() < 0.1 * width


def _crop_digests(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "crops").rglob("*"))
        if p.is_file()
    }


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# `fakescope prepare` that stops for good once its first video is done (its record written), after
# writing `marker`: the test kills it at a known point, however fast the machine is.
PAUSING_PREPARE = """
import sys, threading
from pathlib import Path
import fakescope.preprocess.pipeline.executor as executor
from fakescope.cli import main
marker = Path(sys.argv[1])
process_job = executor.process_job
def pausing_process_job(*args, **kwargs):
    record = process_job(*args, **kwargs)
    marker.write_text(record["key"])
    threading.Event().wait()  # until the test kills the process
    return record
executor.process_job = pausing_process_job
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_crops_and_manifest(prepared, job_inputs, face_set, tmp_path):
    """Kill `fakescope prepare` after its first finished video, plant a half-written crop, re-run it
    (with two worker processes): the crops, manifest and landmarks equal the uninterrupted run's.
    Three videos and the truncated file keep it fast; jobs are independent, so the uninterrupted
    run's rows for these videos are what an uninterrupted run on them writes."""
    reference, _ = prepared
    videos = [v.stem for v in face_set.videos[-3:]]
    rows = [r for r in read_manifest(job_inputs) if Path(r.path).stem in videos or r.path.endswith("cut.mp4")]
    write_manifest(rows, tmp_path / "subset.csv", relative_to="/nonexistent")
    out = tmp_path / "resumed"
    args = ["prepare", str(tmp_path / "subset.csv"), "--out", str(out), "--frames", str(FRAMES), "-q"]
    paused = tmp_path / "paused"
    proc = subprocess.Popen([sys.executable, "-c", PAUSING_PREPARE, str(paused), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 180
    while not paused.exists():  # a state it stays in until the kill: no race with its speed
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.stem for p in (out / "records").glob("*.json")}
    assert done_before == {paused.read_text()}
    # What a kill in the middle of a video leaves: crops of a video that has no record yet.
    half = next(d for d in (reference / "crops").glob("*/*") if d.name.startswith(videos[1] + "-"))
    if half.name not in done_before:
        (out / half.relative_to(reference)).mkdir(parents=True, exist_ok=True)
        (out / half.relative_to(reference) / "000037.png").write_bytes(b"half a png")
    cmd = [sys.executable, "-m", "fakescope", *args, "--workers", "2"]
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 1, rerun.stderr  # 1: the truncated file is still reported
    assert "cut.mp4: cannot open as a video" in rerun.stdout + rerun.stderr
    assert json.loads((out / "summary.json").read_text())["jobs_resumed"] == len(done_before)

    want_crops = {
        k: v for k, v in _crop_digests(reference).items() if k.split("/")[2].split("-")[0] in videos
    }
    assert _crop_digests(out) == want_crops and len(want_crops) == 3 * FRAMES
    for name in ("manifest.csv", "landmarks.csv"):
        ref = _lines(reference / name)
        want = [ref[0]] + [line for line in ref[1:] if any(f"/{v}-" in line for v in videos)]
        assert _lines(out / name) == want, name
    assert not list(out.rglob("*.tmp"))


def test_resuming_with_another_config_is_refused(prepared, job_inputs, capsys):
    out, _ = prepared
    rc = main(["prepare", str(job_inputs), "--out", str(out), "--frames", "5", "-q"])
    assert rc == 2
    assert "different preprocess config" in capsys.readouterr().err


def test_prepare_help_explains_layouts_policies_and_outputs(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    text = capsys.readouterr().out
    for word in (
        "real/ and fake/",
        "ffpp",
        "per_label",
        "every_k",
        "--no-face",
        "score_half",
        "largest",
        "track",
        "manifest.csv",
        "landmarks.csv",
        "summary.json",
        "Resumable",
        "MTCNN",
    ):
        assert word in text, word


def test_frame_folder_with_tracking(shared_data, tmp_path):
    """Rows that share a video and carry `frame` (extracted frames) are sampled like a video; the
    track policy runs its two passes and keeps the frame numbers."""
    frames = read_frames(shared_data / "dfdc-videos" / "widuwuoiur.mp4", [10, 60, 110])
    rows = []
    for f in frames:
        path = tmp_path / "frames" / f"{f.index:04d}.jpg"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), cv2.resize(f.image, (960, 540))[..., ::-1])
        rows.append(ManifestRow(str(path), 1, "widuwuoiur", "dfdc", "", "", "widuwuoiur", f.index))
    cfg = PreprocessConfig.model_validate({"face_select": "track", "frames": {"count": 2}})
    summary = run_prepare(rows, tmp_path / "out", cfg, progress=False)
    crops = read_manifest(tmp_path / "out" / "manifest.csv")
    assert [r.frame for r in crops] == [10, 110] and summary.faces_found == 2
    assert {r.video for r in crops} == {"widuwuoiur"}


def test_contact_sheet_tiles_every_crop(prepared, tmp_path):
    from fakescope.preprocess.contact_sheet import write_crop_contact_sheet

    out, _ = prepared
    assert write_crop_contact_sheet(out / "manifest.csv", tmp_path / "sheet.png", cols=6, tile=96)
    sheet = cv2.imread(str(tmp_path / "sheet.png"))[..., ::-1]
    # 6 columns of 96 px tiles (DFDC: 24 crops -> 4 rows) with 14 px captions and 2 px gaps
    n_rows = -(-len(read_manifest(out / "manifest.csv")) // 6)
    assert sheet.shape == (n_rows * (96 + 14 + 2) + 2, 6 * (96 + 2) + 2, 3)
    x, y = np.round(template_landmarks(224, 0.3)[0] * 96 / 224).astype(int)
    assert tuple(sheet[2 + y, 2 + x]) == (0, 255, 0)  # the template's left eye, marked on the first tile


def test_short_faceless_clip_is_reported_under_score_half(tmp_path):
    import av

    path = tmp_path / "short.mp4"
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    for i in range(5):
        for p in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    cfg = PreprocessConfig.model_validate({"no_face_policy": "score_half", "frames": {"count": 10}})
    summary = run_prepare([ManifestRow(str(path), 1, "g")], tmp_path / "out", cfg, progress=False)
    assert summary.short_videos == [{"path": str(path), "n_frames": 5, "requested": 10}]
    assert summary.frames_sampled == 5 and summary.no_face_frames == 5 and summary.faces_found == 0
    assert summary.no_face_policy == "score_half" and "0.5" in summary.no_face_policy_means
    with open(tmp_path / "out" / "no_face.csv", newline="") as fh:
        listed = list(csv.DictReader(fh))
    assert [r["frame"] for r in listed] == ["0", "1", "2", "3", "4"]
    assert {(r["source"], r["label"], r["video"]) for r in listed} == {(str(path), "fake", "short")}
