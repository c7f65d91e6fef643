"""PredictionWriter / reader, the report files and `fakescope evaluate --predictions`."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fakescope.cli import main
from fakescope.data.manifest import ManifestRow
from fakescope.errors import InputError
from fakescope.eval.metrics import choose_thresholds, video_level
from fakescope.eval.predictions import (
    PREDICTION_COLUMNS,
    PredictionWriter,
    iter_predictions,
    metrics_from_predictions,
    paired_clean_scores,
)


def _rows(n_videos: int, frames: int, seed: int):
    """Scored frames of n_videos videos (half fake), in two FF++-like methods sharing video names."""
    rng = np.random.default_rng(seed)
    out = []
    for v in range(n_videos):
        label = v % 2
        method = "Deepfakes" if label else "youtube"
        base = rng.normal(0.3 + 0.4 * label, 0.15)
        for f in range(frames):
            row = ManifestRow(
                f"/d/{method}/{v:03d}/{f}.png", label, f"g{v}", "FF++_c23", method, "", f"{v:03d}", f
            )
            out.append((row, float(np.clip(base + rng.normal(0, 0.05), 0, 1))))
    return out


def _write(path, scored, perturbation=""):
    with PredictionWriter(path) as w:
        for row, s in scored:
            w.write_row(row, s, perturbation)
    return path


def test_writer_streams_to_partial_and_finalises(tmp_path):
    path = tmp_path / "p.csv"
    w = PredictionWriter(path, flush_every=2)
    scored = _rows(2, 2, 0)
    for row, s in scored[:3]:
        w.write_row(row, s)
    # Before close: only the .partial exists and already holds the flushed rows.
    assert not path.exists()
    assert w.partial.read_text().count("\n") >= 3
    w.close()
    assert path.exists() and not w.partial.exists()
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(PREDICTION_COLUMNS)
    first = next(iter_predictions(path))
    assert first.video == "FF++_c23/youtube/000" and first.label == 0 and first.score == scored[0][1]


def test_resume_after_a_crash_mid_line(tmp_path):
    path = tmp_path / "p.csv"
    scored = _rows(4, 3, 1)
    with pytest.raises(RuntimeError), PredictionWriter(path) as w:
        for row, s in scored[:5]:
            w.write_row(row, s)
        raise RuntimeError("killed")
    partial = tmp_path / "p.csv.partial"
    with open(partial, "a") as fh:
        fh.write("/d/half,fa")  # a torn last line
    w = PredictionWriter(path, resume=True)
    assert w.done() == {(r.path, "") for r, _ in scored[:5]}
    for row, s in scored:
        if (row.path, "") not in w.done():
            w.write_row(row, s)
    w.close()
    preds = list(iter_predictions(path))
    assert [p.path for p in preds] == [r.path for r, _ in scored]


def test_resume_when_even_the_header_was_torn(tmp_path):
    path = tmp_path / "p.csv"
    (tmp_path / "p.csv.partial").write_text("path,lab")
    scored = _rows(1, 2, 0)
    with PredictionWriter(path, resume=True) as w:
        assert w.done() == set()
        for row, s in scored:
            w.write_row(row, s)
    assert [p.path for p in iter_predictions(path)] == [r.path for r, _ in scored]


def test_resume_extends_a_finished_file(tmp_path):
    path = _write(tmp_path / "p.csv", _rows(2, 2, 0))
    with PredictionWriter(path, resume=True) as w:
        assert len(w.done()) == 4
        for row, s in _rows(2, 2, 0):
            w.write_row(row, s, "blur_s2")
    assert sum(1 for _ in iter_predictions(path)) == 8


def test_metrics_from_predictions_match_direct_computation(tmp_path):
    scored = _rows(40, 4, 2)
    path = _write(tmp_path / "test.csv", scored)
    records = metrics_from_predictions(path, threshold=0.5, bootstrap=100)
    assert [(r["dataset"], r["perturbation"], r["level"]) for r in records] == [
        ("FF++_c23", "", "frame"),
        ("FF++_c23", "", "video"),
    ]
    y = np.array([r.label for r, _ in scored])
    s = np.array([x for _, x in scored])
    vids = np.array([r.video_id for r, _ in scored])
    frame, video = records
    assert frame["auc"] == pytest.approx(roc_auc_score(y, s))
    vy, vs, _ = video_level(y, s, vids)
    assert video["n"] == 40 and video["auc"] == pytest.approx(roc_auc_score(vy, vs))
    assert frame["acc_threshold"] == pytest.approx(np.mean((s >= 0.5) == y))


def test_perturbations_are_separate_results(tmp_path):
    scored = _rows(10, 2, 3)
    path = tmp_path / "rob.csv"
    with PredictionWriter(path) as w:
        for row, s in scored:
            w.write_row(row, s)
            w.write_row(row, 1.0 - s, "jpeg_q20")
    records = metrics_from_predictions(path, bootstrap=0)
    by = {(r["perturbation"], r["level"]): r for r in records}
    assert set(by) == {("", "frame"), ("", "video"), ("jpeg_q20", "frame"), ("jpeg_q20", "video")}
    assert by[("jpeg_q20", "frame")]["auc"] == pytest.approx(1 - by[("", "frame")]["auc"])
    assert records[0]["perturbation"] == ""


def test_bad_prediction_files(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label,score\na.png,fake,0.3\nb.png,fake,high\n")
    with pytest.raises(InputError, match="line 3: score 'high' is not a number"):
        list(iter_predictions(bad))
    nohead = tmp_path / "nohead.csv"
    nohead.write_text("path,score\n")
    with pytest.raises(InputError, match="missing column\\(s\\) label"):
        list(iter_predictions(nohead))


def test_cli_evaluate_with_validation_threshold(tmp_path, capsys):
    run = tmp_path / "run"
    test_path = _write(run / "predictions" / "test.csv", _rows(30, 3, 4))
    val_scored = _rows(20, 3, 5)
    val_path = _write(run / "predictions" / "val.csv", val_scored)
    rc = main(
        [
            "evaluate",
            "--predictions",
            str(test_path),
            "--val-predictions",
            str(val_path),
            "--bootstrap",
            "200",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "| FF++_c23 | none | frame | 90 (45/45) |" in out
    assert "| FF++_c23 | none | video | 30 (15/15) |" in out
    saved = json.loads((run / "metrics" / "test.json").read_text())
    y = np.array([r.label for r, _ in val_scored])
    s = np.array([x for _, x in val_scored])
    expected = choose_thresholds(y, s, np.array([r.video_id for r, _ in val_scored]))
    frame, video = saved["results"]
    assert frame["threshold"] == pytest.approx(expected["frame"])
    assert video["threshold"] == pytest.approx(expected["video"])
    assert frame["bootstrap"] == 200 and frame["auc_ci_low"] <= frame["auc"] <= frame["auc_ci_high"]
    assert (run / "metrics" / "test.md").read_text().startswith("# Metrics: test.csv")
    assert (run / "metrics" / "test.csv").read_text().startswith("dataset,perturbation,level,n,")


def test_cli_evaluate_errors_are_one_line(tmp_path, capsys):
    rc = main(["evaluate", "--predictions", str(tmp_path / "none.csv")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("none.csv: predictions file not found") and "\n" not in err
    assert main(["evaluate"]) == 2
    one_class = tmp_path / "val.csv"
    one_class.write_text("path,label,score\na,fake,0.2\nb,fake,0.9\n")
    test = _write(tmp_path / "t.csv", _rows(4, 1, 0))
    assert main(["evaluate", "--predictions", str(test), "--val-predictions", str(one_class)]) == 2
    assert "need both real and fake" in capsys.readouterr().err


def test_paired_clean_scores_pair_two_runs_on_the_same_images(tmp_path):
    scored = _rows(6, 2, 0)
    a = _write(tmp_path / "a.csv", scored)
    # Run b scored another copy of the set (other root), in another order, plus a perturbed pass.
    moved = [(replace(r, path="/copy" + r.path[2:]), 1 - s) for r, s in reversed(scored)]
    with PredictionWriter(tmp_path / "b.csv") as w:
        for row, s in moved:
            w.write_row(row, s, "")
            w.write_row(row, 0.5, "jpeg_q50")
    labels, sa, sb, groups = paired_clean_scores(a, tmp_path / "b.csv")
    assert labels.size == len(scored) and np.allclose(sa, 1 - sb)  # matched image by image
    assert sorted(set(groups)) == [f"g{v}" for v in range(6)]
    _write(tmp_path / "c.csv", scored[:-1])
    with pytest.raises(InputError, match="1 image.s. are scored by one run only"):
        paired_clean_scores(a, tmp_path / "c.csv")
    flipped = [(replace(r, label=1 - r.label), s) for r, s in scored]
    with pytest.raises(InputError, match="disagree on labels"):
        paired_clean_scores(a, _write(tmp_path / "d.csv", flipped))
