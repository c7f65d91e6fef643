"""`fakescope bench` times detect per stage (no timing assertions: only that the split is reported)."""

from __future__ import annotations

import json

import pytest

from fakescope.cli import main

pytestmark = [pytest.mark.slow]


def test_bench_reports_faces_per_second_split_by_stage(face_set, tmp_path, capsys):
    out = tmp_path / "speed.json"
    argv = ["bench", "--models", "airl", "heatmaps", "--backbone", "efficientnet_tiny", "--image-size", "64",
            "--inr-resolution", "16", "-n", "1", "--warmup", "0", "--images", str(face_set.root),
            "--set", "inr.max_steps=50", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "faces/s" in printed and "15.8 ms/face on an A100" in printed
    doc = json.loads(out.read_text())
    assert doc["machine"]["cpu_count"] >= 1
    by_model = {r["model"]: r for r in doc["results"]}
    assert set(by_model) == {"airl", "heatmaps"}
    for r in by_model.values():
        assert r["faces"] == 1 and r["faces_per_s"] > 0
        assert set(r["ms_per_face_by_stage"]) == {"detect_align", "features", "classifier"}
        assert r["ms_per_face_by_stage"]["detect_align"] > 0  # RetinaFace ran on the face crops
        assert isinstance(r["loadavg_before"], float)
    # Only the INFER family fits INRs: its feature stage dominates the AIRL one.
    assert by_model["heatmaps"]["inr_resolution"] == 16 and by_model["airl"]["inr_resolution"] is None
    assert (
        by_model["heatmaps"]["ms_per_face_by_stage"]["features"]
        > by_model["airl"]["ms_per_face_by_stage"]["features"]
    )
