"""`fakescope fit-inr` end to end on real faces (32 px): records, summary, figures, cache reuse."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from PIL import Image

from fakescope.cli import main


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def manifest(face_set, tmp_path):
    root = face_set.root
    with open(face_set.manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))[:4]  # two groups, each a real face and a swap made from it
    path = tmp_path / "m.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "group"])
        for r in rows:
            w.writerow([root / r["path"], r["label"], r["group"]])
    return path


def test_fit_inr_writes_records_summary_and_figures_then_reuses_the_cache(manifest, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["fit-inr", "--manifest", str(manifest), "--out", str(out), "--cache", str(cache),
            "--set", "inr.resolution=32", "--set", "inr.cpu_path=batched", "--quiet"]  # fmt: skip
    assert main([*args, "--figures", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 4 and summary["n_fitted"] == 4
    assert summary["share_reached"] == 1.0 and summary["mean_psnr"] >= 35.0
    assert summary["by_label"]["real"]["n"] == 2 and summary["by_label"]["fake"]["n"] == 2
    with open(out / "records.csv", newline="") as fh:
        records = list(csv.DictReader(fh))
    assert [r["reached"] for r in records] == ["1"] * 4
    assert all(float(r["final_psnr"]) >= 35.0 for r in records)
    (fig,) = (out / "figures").glob("*.png")
    assert Image.open(fig).size[0] > Image.open(fig).size[1] > 100  # two rows of five panels
    assert (out / "config.yaml").is_file()

    capsys.readouterr()
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["n_cached"] == 4 and again["n_fitted"] == 0
    assert again["mean_psnr"] == pytest.approx(summary["mean_psnr"])


def test_fit_inr_bad_manifest_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label,group\nmissing.jpg,real,g\n")
    assert main(["fit-inr", "--manifest", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fakescope fit-inr: error:") and "missing.jpg" in err and "\n" not in err
