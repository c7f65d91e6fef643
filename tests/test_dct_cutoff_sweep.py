"""AIRL Table IV sweep (benchmarks/dct_cutoff_sweep.py): a tiny two-cutoff run on the real DFDC faces
gives the table, the paired differences against the reference cutoff and the plot, and a rerun trains
nothing again."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench_support import load_benchmark

REPO = Path(__file__).resolve().parents[1]


def _bench():
    bench = load_benchmark("dct_cutoff_sweep")
    return bench


def test_refuses_to_override_the_swept_cutoff(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        _bench().main(["--out", str(tmp_path), "--cutoffs", "2", "--set", "model.dct_cutoff=3"])
    assert e.value.code == 2 and "use --cutoffs" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.shared_data
def test_tiny_sweep_table_differences_plot_and_resume(shared_data, tmp_path, capsys, monkeypatch):
    bench = _bench()
    out = tmp_path / "out"
    argv = ["--data", str(shared_data), "--cutoffs", "2", "4", "--reference", "4", "--cross", "ffhq-stylegan",
            "--out", str(out), "--max-images", "8", "--bootstrap", "200"]  # fmt: skip
    for o in ["data.image_size=32", "data.max_per_split=16", "train.epochs=1", "train.batch_size=8",
              "train.progress=false", "eval.bootstrap=0", "model.pretrained=false",
              "data.crop_cache=false", "data.num_workers=0"]:  # fmt: skip
        argv += ["--set", o]
    assert bench.main(argv) == 0
    table = capsys.readouterr().out

    rows = {r["dct_cutoff"]: r for r in json.loads((out / "dct_cutoff_sweep.json").read_text())}
    assert sorted(rows) == [2, 4]
    for r in rows.values():
        dfdc = r["metrics"]["dfdc-faces"]
        assert dfdc["split"] == "test" and dfdc["n"] == 8 and math.isfinite(dfdc["auc"])
        assert r["metrics"]["ffhq-stylegan"]["split"] == "all"
    ref, other = rows[4]["paired_vs_reference"], rows[2]["paired_vs_reference"]
    assert ref["reference"] == other["reference"] == 4 and ref["n_images"] == other["n_images"] == 8
    assert ref["difference"] == 0.0
    assert other["ci_low"] <= other["difference"] <= other["ci_high"]
    aucs = {c: r["metrics"]["dfdc-faces"]["auc"] for c, r in rows.items()}
    assert other["difference"] == pytest.approx(aucs[2] - aucs[4])

    assert "Δ vs c=4 (paired 95% CI)" in table
    lines = [ln for ln in table.splitlines() if ln.startswith("| `airl` |")]
    assert [ln.split("|")[2].strip() for ln in lines] == ["2", "4"]
    assert "+0.000 [+0.000, +0.000]" in lines[1] and "—" not in "".join(lines)
    assert all(ln.rstrip(" |").endswith("1 / 1 / 1 (cut)") for ln in lines)  # 1 epoch of 1: budget-cut
    assert (out / "dct_cutoff_sweep.png").stat().st_size > 5000
    assert not list(out.glob(".*.tmp"))

    # --update-docs: the same table between the TABLE_IV markers, prose kept, the figure beside it.
    results = tmp_path / "docs" / "results.md"
    results.parent.mkdir()
    results.write_text("before\n<!-- TABLE_IV -->\nold\n<!-- /TABLE_IV -->\nafter\n", encoding="utf-8")
    assert bench.main([*argv, "--update-docs", str(results)]) == 0
    doc = results.read_text()
    assert doc.startswith("before\n<!-- TABLE_IV -->\n| detector | cutoff c |") and doc.endswith("after\n")
    assert "old" not in doc and all(ln in doc for ln in lines) and "(images/dct_cutoff_sweep.png)" in doc
    assert (results.parent / "images" / "dct_cutoff_sweep.png").stat().st_size > 5000

    # A rerun reads the finished rows back: no training, no scoring, row files untouched.
    row_files = sorted(out.glob("runs/*/sweep_row.json"))
    before = {f: f.stat().st_mtime_ns for f in row_files}

    def refuse(*a, **k):
        raise AssertionError("a finished cutoff was run again")

    monkeypatch.setattr("fakescope.train.trainer.train", refuse)
    monkeypatch.setattr("fakescope.eval.evaluate.evaluate_runs", refuse)
    assert bench.main(argv) == 0
    assert {f: f.stat().st_mtime_ns for f in row_files} == before
    assert capsys.readouterr().out.count("| `airl` |") == 2
