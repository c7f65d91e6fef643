"""README's every-detector table (benchmarks/learning_curve.py --headline / --update-docs): which runs it
shows, what it calls "inside", the paired SBI-minus-fakes differences, and the marker rewrite."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bench_support import load_benchmark

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lc():
    mod = load_benchmark("learning_curve")
    return mod


def _metrics(auc, lo, hi, dataset="manifest_all", n=900):
    return {
        "dataset": dataset,
        "n": n,
        "auc": auc,
        "auc_ci_low": lo,
        "auc_ci_high": hi,
        "acc_val_threshold": 0.6,
    }


def _row(det, auc, lo, hi, tag=""):
    return {"detector": det, "size": "all", "train_faces": 4200, "metrics": _metrics(auc, lo, hi), "best_epoch": 3,
            "epochs_run": 5, "epochs_budget": 8, "stopped_early": True, "time_cut": False, "best_val_auc": 0.7,
            "train_seconds_this_call": 600.0, "resumed": False, "overrides": [], "tag": tag}  # fmt: skip


def _predictions(path: Path, labels, scores, groups):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "score", "group"])
        for i, (y, s, g) in enumerate(zip(labels, scores, groups, strict=True)):
            w.writerow([f"/data/{'fake' if y else 'real'}/{i}.png", "fake" if y else "real", s, g])


def test_table_lists_each_detector_once_with_its_sbi_row_and_says_what_is_inside(lc, tmp_path):
    rows = [_row("airl", 0.72, 0.69, 0.75), _row("clip", 0.70, 0.67, 0.73), _row("meso4", 0.60, 0.56, 0.64),
            _row("clip", 0.62, 0.58, 0.66, tag="sbi"), _row("clip", 0.99, 0.98, 1.0, tag="lr1e-3")]  # fmt: skip
    rows.append({**_row("clip", 0.80, 0.78, 0.82), "size": "1000"})  # a learning-curve point: not shown
    cross = {"clip__all__sbi": [_metrics(0.66, 0.63, 0.69, "ffhq-stylegan", 1600)]}
    table = lc.headline_table(rows, cross, tmp_path)
    lines = table.splitlines()
    body = [ln for ln in lines if ln.startswith("| `")]
    assert [ln.split("`")[1] for ln in body] == ["airl", "clip", "meso4"]  # papers first
    clip = body[1].split(" | ")
    assert "0.700 [0.67, 0.73]" in clip[2] and "10 min" in clip[5]
    assert clip[6] == "0.620 [0.58, 0.66]" and clip[7] == "0.660 [0.63, 0.69]"  # SBI: DFDC, FFHQ
    assert "0.99" not in table and "0.80" not in table  # tagged variants and smaller sizes stay out
    assert "baseline" in body[2]
    reading = [ln for ln in lines if ln.startswith("- DFDC test, DFDC fakes")][0]
    # clip's 0.70 lies in airl's [0.69, 0.75] and airl's 0.72 in clip's [0.67, 0.73]; meso4 is below.
    assert (
        "best `airl`" in reading
        and "inside its interval: `clip`" in reading
        and "the other 1 is not." in reading
    )


def test_a_detector_whose_recipe_run_is_retrained_keeps_an_empty_row(lc, tmp_path):
    # The AIRL family's old-rate runs are tagged paperlr; until the new recipe's run lands the row shows
    # "—" rather than vanishing or borrowing the old run's numbers.
    rows = [_row("airl", 0.85, 0.82, 0.87), _row("airl_nocon", 0.72, 0.69, 0.75, tag="paperlr")]
    body = [ln for ln in lc.headline_table(rows, {}, tmp_path).splitlines() if ln.startswith("| `")]
    assert [ln.split("`")[1] for ln in body] == ["airl", "airl_nocon"]
    assert "0.720" not in body[1] and body[1].split(" | ")[2] == "—"


def test_sbi_paired_difference_is_read_from_both_runs_predictions(lc, tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 200)
    groups = [f"v{i // 4}" for i in range(y.size)]
    good = 1 / (1 + np.exp(-(y - 0.5 + rng.normal(0, 0.6, y.size))))  # P(fake), as evaluate writes
    poor = 1 / (1 + np.exp(-(y - 0.5 + rng.normal(0, 3.0, y.size))))
    runs = tmp_path / "runs"
    _predictions(runs / "clip__all" / "eval" / "predictions" / "clip__all__manifest_all.csv", y, poor, groups)
    _predictions(runs / "clip__all__sbi" / "eval" / "predictions" / "x.csv", y, good, groups)
    rows = [_row("clip", 0.6, 0.5, 0.7), _row("clip", 0.8, 0.7, 0.9, tag="sbi"), _row("airl", 0.7, 0.6, 0.8)]
    table = lc.sbi_paired_table(rows, tmp_path, bootstrap=300)
    clip = [ln for ln in table.splitlines() if ln.startswith("| `clip`")][0].split(" | ")
    diff = float(clip[1].split()[0])
    assert diff > 0.2 and clip[1].endswith("SBI better")
    assert clip[2] == "—"  # no cross predictions yet
    assert "`airl`" not in table  # no SBI run: no row


def test_update_docs_fills_readme_and_results_and_draws_the_figure(lc, tmp_path):
    out = tmp_path / "lc"
    for r in (_row("airl", 0.72, 0.69, 0.75), _row("airl", 0.65, 0.61, 0.69, tag="sbi")):
        run = out / "runs" / ("airl__all" + ("__sbi" if r["tag"] else ""))
        run.mkdir(parents=True)
        (run / "learning_curve_row.json").write_text(json.dumps(r))
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- HEADLINE -->\n<!-- /HEADLINE -->\n")
    results = tmp_path / "docs" / "results.md"
    results.parent.mkdir()
    results.write_text(
        "".join(f"<!-- {m} -->\n<!-- /{m} -->\n" for m in ("HEADLINE", "FULL_TABLE", "SBI_PAIRED"))
    )
    lc.update_docs(out, readme, results)
    assert "| `airl` | 0.720 [0.69, 0.75] | — |" in readme.read_text()  # README: no paper column
    assert "| `airl` | AIRL | 0.720 [0.69, 0.75] |" in results.read_text()
    assert results.read_text().count("airl") >= 3
    assert (tmp_path / "docs" / "images" / "detectors.png").stat().st_size > 5000


def test_a_budget_cut_run_is_marked(lc, tmp_path):
    cut = {**_row("meso4", 0.70, 0.67, 0.73), "stopped_early": False, "epochs_run": 8, "epochs_budget": 8}
    table = lc.headline_table([cut, _row("airl", 0.72, 0.69, 0.75)], {}, tmp_path, readme=True)
    assert "| `meso4` | 0.700 [0.67, 0.73] † |" in table and "| `airl` | 0.720 [0.69, 0.75] |" in table
