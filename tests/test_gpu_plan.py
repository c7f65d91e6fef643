"""benchmarks/gpu_plan.sh, the script prepared for a lent GPU, as its CPU dry run on real DFDC, FFHQ and
CIPLAB faces: every step writes its result labelled with the device that made it (a CPU dry run never
passes for GPU figures), the tarball holds what the steps wrote, and the log says which steps ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_plan.sh"
STEPS = ("inr_speed", "heatmaps", "train")
DRY_RUN = "CPU dry run (not GPU figures)"


def _run(args: list[str], work: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DEVICE": "cpu",
        "TINY": "1",
        "WHEELS": "none",
        "THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PY": sys.executable,
        "WORK": str(work),
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        cwd=work.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
@pytest.mark.shared_data
def test_the_dry_run_labels_every_step_cpu_and_packs_the_results(shared_data, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    proc = _run([str(shared_data), str(out)], work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    results = {step: json.loads((out / f"{step}.json").read_text()) for step in STEPS}
    for step, doc in results.items():
        assert doc["step"] == step
        assert doc["figures"] == DRY_RUN and doc["device"] == "cpu", doc
        assert doc["device_name"].startswith("cpu") and doc["tiny"] is True

    inr = results["inr_speed"]
    assert inr["complete"] and set(inr["results"]) == {"16", "32"}
    for size in inr["results"].values():
        assert set(size) == {"fp32", "bf16"}
        assert all(r["faces_per_second"] > 0 and r["mean_steps"] <= 5 for r in size.values())
    assert inr["goal_met"] is None  # no 224-px figure in a dry run: no claim about the goal

    heat = results["heatmaps"]
    assert heat["exit_code"] == 0 and not heat["budget_cut"]
    assert heat["faces"] == 8 and heat["cache_files"] == 8 and heat["summary"]["n"] == 8
    assert set(heat["faces_by_split"]) == {"train", "val", "test"}
    assert Path(heat["cache_dir"]).is_relative_to(work)  # the bulky cache stays out of OUT_DIR

    train = results["train"]
    assert train["exit_code"] == 0 and train["trained"] == "CPU dry run"
    assert train["sources"] == ["dfdc-faces", "dfdc-faces-more", "ffhq-stylegan", "ciplab-photoshop"]
    assert train["summary"]["epochs_run"] == 1 and 0.0 <= train["summary"]["best_val_auc"] <= 1.0
    assert "GPU" not in train["label"]

    with tarfile.open(out / "gpu_plan.tar.gz") as tar:
        names = set(tar.getnames())
        assert {f"{s}.json" for s in STEPS} | {"heatmaps/records.csv", "train/run/log.csv"} <= names
        for step in STEPS:
            assert json.loads(tar.extractfile(f"{step}.json").read()) == results[step]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["gpu_plan.log", "gpu_plan.tar.gz", *(f"{s}.json" for s in STEPS)]
    )  # a handful of files: what comes back from a lent machine is limited to 8

    log = (out / "gpu_plan.log").read_text()
    for step in STEPS:
        assert f"== step {step}: done" in log
    assert "!!" not in log and "== gpu_plan done" in log


def test_a_missing_data_folder_is_one_line(tmp_path):
    proc = _run([str(tmp_path / "nowhere"), str(tmp_path / "out")], tmp_path / "work", timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "dfdc-faces/manifest.csv not found" in proc.stderr
    assert not (tmp_path / "out").exists()
