"""benchmarks/retrain_check.py: the shipped weights against themselves are identical and need no scoring;
against a copy with one tensor changed, that one tensor is counted, and both detectors are scored on
the same real val faces (a shift of the classifier's bias moves every score but not the AUC)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from bench_support import load_benchmark

retrain_check = load_benchmark("retrain_check")
REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_weights_against_themselves_are_identical(tmp_path):
    out = tmp_path / "check.json"
    assert retrain_check.main([str(retrain_check.SHIPPED), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["same_keys"] and res["identical_tensors"] == res["tensors"] > 100
    assert res["max_abs_difference"] == 0.0 and res["sha256"]["retrain"] == res["sha256"]["shipped"]
    assert "val_faces" not in res  # nothing differs, so nothing is scored


@pytest.mark.shared_data
def test_a_changed_tensor_is_counted_and_both_are_scored_on_the_same_val_faces(tiny_data, tmp_path):
    from fakescope.inference.checkpoint import load_detector, save_checkpoint

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from train_shipped import build_manifests
    finally:
        sys.path.pop(0)
    pooled = build_manifests(tiny_data, tmp_path / "manifests")["pooled"]
    det, cfg, meta = load_detector(retrain_check.SHIPPED, "cpu")
    name, bias = next(
        (n, p) for n, p in det.named_parameters() if n.startswith("classifier") and p.dim() == 1
    )
    with torch.no_grad():
        bias[1] += 0.5  # the fake logit: every score moves up, no ranking changes
    save_checkpoint(tmp_path / "copy" / "checkpoints", "best", model=det, cfg=cfg, detector_name=meta["detector"],
                    epoch=meta["epoch"], step=meta["step"], val_metrics=meta["val_metrics"],
                    val_threshold=meta["val_threshold"])  # fmt: skip
    out = tmp_path / "check.json"
    argv = [str(tmp_path / "copy"), "--manifest", str(pooled), "--bootstrap", "50", "--out", str(out)]
    assert retrain_check.main(argv) == 0
    res = json.loads(out.read_text())
    assert res["identical_tensors"] == res["tensors"] - 1, name
    assert res["max_abs_difference"] == pytest.approx(0.5)
    assert res["val_faces"] >= 8  # every source's val faces of the tiny data
    assert res["retrain_minus_shipped"]["difference"] == pytest.approx(0.0, abs=1e-12)
    assert 0 < res["score_gap_median"] <= res["score_gap_max"] < 0.5
