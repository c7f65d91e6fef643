"""benchmarks/transfer.py end to end at tiny size, on a few dozen real faces of each shared source: the
leave-one-source-out table holds what the cells scored, a left-out source never reaches a training
manifest, a rerun trains nothing, and the paired differences are taken on the same images."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from bench_support import load_benchmark

REPO = Path(__file__).resolve().parents[1]
transfer = load_benchmark("transfer")

TINY = ["data.image_size=32", "train.epochs=1", "train.max_steps_per_epoch=2", "train.batch_size=8",
        "train.progress=false", "train.synthetic_landmarks=layout", "seed=0"]  # fmt: skip


def _rows(manifest: Path) -> list[dict[str, str]]:
    with open(manifest, newline="") as fh:
        return list(csv.DictReader(fh))


def _argv(data: Path, out: Path, recipe: str, *sets: str) -> list[str]:
    argv = ["--data", str(data), "--out", str(out), "--detectors", "npr", "--recipe", recipe,
            "--bootstrap", "50"]  # fmt: skip
    for s in (*TINY, *sets):
        argv += ["--set", s]
    return argv


@pytest.fixture(scope="module")
def bench(tiny_data: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("transfer")
    assert transfer.main(_argv(tiny_data, out, "base")) == 0
    assert len(json.loads((out / "transfer.json").read_text())["trained_this_call"]) == len(transfer.COLUMNS)
    assert transfer.main(_argv(tiny_data, out, "balanced", "train.balance_sources=true")) == 0
    return out


def test_every_cell_is_in_the_table_with_the_scores_it_wrote(bench: Path):
    result = json.loads((bench / "transfer.json").read_text())
    assert {(r["detector"], r["recipe"], r["column"]) for r in result["cells"]} == {
        ("npr", recipe, column) for recipe in ("base", "balanced") for column in transfer.COLUMNS
    }
    table = (bench / "transfer.md").read_text()
    for rec in result["summary"]:
        cells = {c["column"]: c for c in result["cells"] if c["recipe"] == rec["recipe"]}
        aucs = []
        for s in transfer.SOURCES:
            m = cells[s]["test"][s]
            # Every test face of the left-out source is scored (its test split, from its own manifest).
            assert m["n"] == len(_rows(bench / "manifests" / f"test_{s}.csv"))
            assert rec["left_out"][s] == m and 0.0 <= m["auc"] <= 1.0
            aucs.append(m["auc"])
        assert rec["mean_left_out_auc"] == pytest.approx(sum(aucs) / 3)
        assert rec["in_domain_dfdc"]["without ffhq-stylegan"] == cells["ffhq-stylegan"]["test"]["dfdc-faces"]
        line = next(ln for ln in table.splitlines() if ln.startswith(f"| `npr` | {rec['recipe']} |"))
        parts = [p.strip() for p in line.strip("|").split("|")]
        assert parts[2:5] == [transfer._cell(rec["left_out"][s]) for s in transfer.SOURCES]
        assert parts[5] == f"{rec['mean_left_out_auc']:.3f}"
        assert parts[7:10] == [transfer._cell(cells[transfer.SBI]["test"][s]) for s in transfer.SOURCES]
    assert (bench / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_left_out_source_never_reaches_a_training_manifest(bench: Path):
    tests = {s: {r["path"] for r in _rows(bench / "manifests" / f"test_{s}.csv")} for s in transfer.SOURCES}
    all_test = set().union(*tests.values())
    for column in transfer.COLUMNS:
        cfg = (bench / "runs" / f"npr__base__{column}" / "config.yaml").read_text()
        manifest = next(
            Path(ln.split(":", 1)[1].strip()) for ln in cfg.splitlines() if ln.strip().startswith("manifest:")
        )
        rows = _rows(manifest)
        assert rows and not all_test & {r["path"] for r in rows}
        sources = {r["group"].split(":", 1)[0] for r in rows}
        if column == transfer.SBI:
            assert sources == set(transfer.SOURCES) and {r["label"] for r in rows} == {"real"}
        else:
            assert sources == set(transfer.SOURCES) - {column}
            assert {r["split"] for r in rows} == {"train", "val"}


def test_a_second_call_trains_nothing_and_changes_no_cell(bench: Path, tiny_data: Path):
    logs = {f: f.read_bytes() for f in bench.glob("runs/*/log.csv")}
    rows = {f: f.read_bytes() for f in bench.glob("runs/*/transfer_row.json")}
    assert len(logs) == len(rows) == 8
    assert transfer.main(_argv(tiny_data, bench, "balanced", "train.balance_sources=true")) == 0
    assert json.loads((bench / "transfer.json").read_text())["trained_this_call"] == []
    assert {f: f.read_bytes() for f in bench.glob("runs/*/log.csv")} == logs
    assert {f: f.read_bytes() for f in bench.glob("runs/*/transfer_row.json")} == rows
    # A cell whose training finished but whose scoring did not (its row file lost) resumes: no epoch more,
    # the same scores.
    cell = bench / "runs" / "npr__base__sbi"
    before = json.loads((cell / "transfer_row.json").read_text())
    (cell / "transfer_row.json").unlink()
    assert transfer.main(_argv(tiny_data, bench, "base")) == 0
    after = json.loads((cell / "transfer_row.json").read_text())
    assert (
        after["resumed"] and after["test"] == before["test"] and after["epochs_run"] == before["epochs_run"]
    )
    assert len(_rows(cell / "log.csv")) == logs[cell / "log.csv"].decode().count("\n") - 1
    # A recipe name keeps its overrides.
    with pytest.raises(SystemExit, match="recipe 'balanced' was run with"):
        transfer.main(_argv(tiny_data, bench, "balanced", "train.augment.blur_p=0.5"))


def test_paired_differences_are_recipe_minus_baseline_on_the_same_images(bench: Path, tmp_path: Path):
    result = json.loads((bench / "transfer.json").read_text())
    cells = {(c["recipe"], c["column"]): c for c in result["cells"]}
    paired = [d for d in result["paired"] if "error" not in d]
    expected = {(s, s) for s in transfer.SOURCES} | {(transfer.SBI, s) for s in transfer.SOURCES}
    assert {(d["column"], d["source"]) for d in paired} == expected
    for d in paired:
        assert d["recipe"] == "balanced" and d["baseline"] == "base"
        assert d["auc_a"] == pytest.approx(
            cells[("balanced", d["column"])]["test"][d["source"]]["auc"], abs=1e-9
        )
        assert d["auc_b"] == pytest.approx(cells[("base", d["column"])]["test"][d["source"]]["auc"], abs=1e-9)
        assert d["difference"] == pytest.approx(d["auc_a"] - d["auc_b"])
    # --update-docs writes the table between the markers of a copy of docs/results.md.
    doc = tmp_path / "results.md"
    shutil.copyfile(REPO / "docs" / "results.md", doc)
    assert (
        transfer.main(["--out", str(bench), "--table-only", "--update-docs", str(doc), "--bootstrap", "50"])
        == 0
    )
    text = doc.read_text()
    block = text[text.index("<!-- TRANSFER -->") : text.index("<!-- /TRANSFER -->")]
    assert "| `npr` | balanced |" in block and "Paired differences" in block


def test_the_familiarity_flag_is_measured_on_the_left_out_runs(bench: Path, tmp_path: Path):
    """benchmarks/familiarity_loso.py calibrates each leave-one-source-out run on its own validation
    split and scores every test face: one row per left-out source, written into a card's block."""
    loso = load_benchmark("familiarity_loso")
    card = tmp_path / "card.md"
    card.write_text("# card\n<!-- CARD_FAMILIARITY -->\nold\n<!-- /CARD_FAMILIARITY -->\n")
    argv = ["--transfer", str(bench), "--detector", "npr", "--recipe", "base", "--bootstrap", "20",
            "--max-train", "60", "--familiarity", "mahalanobis", "--update-docs", str(card)]  # fmt: skip
    assert loso.main(argv) == 0
    rows = json.loads((bench / "familiarity_loso.json").read_text())
    assert [r["left_out"] for r in rows] == list(transfer.SOURCES)
    tests = {s: _rows(bench / "manifests" / f"test_{s}.csv") for s in transfer.SOURCES}
    for r in rows:
        assert 0.0 <= r["flag_auroc"] <= 1.0 and 0.0 <= r["flagged_in_source"] <= 1.0
        assert r["n"] == sum(len(v) for v in tests.values()) and r["n_left_out"] == len(tests[r["left_out"]])
        run = bench / "runs" / f"npr__base__{r['left_out']}"
        fitted = json.loads((run / "calibration.json").read_text())["fitted_on"]["manifest"]
        assert fitted.endswith(f"without_{r['left_out']}.csv")  # calibrated on training sources only
    text = card.read_text()
    assert "old" not in text and "| **mean** |" in text
    # Another familiarity model on the same runs: its rows join the table, the earlier ones stay as they were.
    argv_layers = [*argv[:-2], "--familiarity", "mahalanobis_layers"]
    assert loso.main(argv_layers) == 0
    both = json.loads((bench / "familiarity_loso.json").read_text())
    assert [(r["method"], r["left_out"]) for r in both] == [
        (m, s) for m in ("mahalanobis_layers", "mahalanobis") for s in transfer.SOURCES
    ]
    assert [r for r in both if r["method"] == "mahalanobis"] == rows
    fam = json.loads((bench / "runs" / "npr__base__dfdc-faces" / "calibration.json").read_text())[
        "familiarity"
    ]
    assert fam["method"] == "mahalanobis_layers"  # NPR's ResNet stages, read by hooks
    table = (bench / "familiarity_loso.md").read_text()
    (bench / "familiarity_loso.md").unlink()
    assert loso.main([*argv[:4], "--table-only"]) == 0  # measures nothing: the same table again
    assert (bench / "familiarity_loso.md").read_text() == table
    assert json.loads((bench / "familiarity_loso.json").read_text()) == both


def test_an_ensemble_is_chosen_on_val_and_scored_on_the_left_out_faces(
    bench: Path, tiny_data: Path, tmp_path: Path
):
    """Lever 5: a second detector on the same left-out cells, then ``--ensemble``: each cell's val scores
    are the ones the trainer selected on, the temperatures are fitted on them alone, and the ensemble's
    test scores are the mean of the chosen members' calibrated log-odds on the same test faces."""
    import numpy as np

    from fakescope.eval.ensemble import combine, fit_temperatures
    from fakescope.eval.metrics import auc

    out = tmp_path / "transfer"
    shutil.copytree(bench, out)
    argv = _argv(tiny_data, out, "base")
    argv[argv.index("npr")] = "meso4"
    assert transfer.main([*argv, "--columns", *transfer.SOURCES, "--ensemble", "npr", "meso4"]) == 0
    result = json.loads((out / "transfer.json").read_text())
    ens = {c["column"]: c for c in result["cells"] if c.get("kind") == "ensemble"}
    assert set(ens) == set(transfer.SOURCES)
    for column, row in ens.items():
        val = {}
        for det in ("npr", "meso4"):
            cell = out / "runs" / f"{det}__base__{column}"
            y_val, s_val, *_ = transfer._joined({det: cell / transfer.VAL_PREDICTIONS})
            # The val split scored is the one the trainer chose its epoch on.
            best = json.loads((cell / "transfer_row.json").read_text())["best_val_auc"]
            assert auc(y_val, s_val[det]) == pytest.approx(best, abs=1e-4)
            val[det] = cell / transfer.VAL_PREDICTIONS
        y_val, s_val, *_ = transfer._joined(val)
        assert row["ensemble"]["temperatures"] == pytest.approx(fit_temperatures(s_val, y_val))
        chosen = row["ensemble"]["members"]
        assert set(chosen) <= {"npr", "meso4"} and len(row["ensemble"]["val_auc"]) == 3
        files = {d: transfer._predictions(out, d, "base", column, column) for d in ("npr", "meso4")}
        y, s, *_ = transfer._joined(files)
        expected = auc(y, combine({m: s[m] for m in chosen}, row["ensemble"]["temperatures"]))
        assert row["test"][column]["auc"] == pytest.approx(expected, abs=1e-5)
        assert row["test"][column]["n"] == len(_rows(out / "manifests" / f"test_{column}.csv"))
        assert np.isfinite(row["val_threshold"])
    diffs = [d for d in result["ensembles"] if d["column"] == d["source"]]
    assert {d["column"] for d in diffs} == set(transfer.SOURCES) and all(
        d["baseline"] == "npr" for d in diffs
    )
    table = (out / "transfer.md").read_text()
    assert "| `ensemble-npr-meso4` | base |" in table and "Ensembles (mean of calibrated log-odds" in table
    # Val scores are in the predictions format, video and all; a file in the older four-column format
    # (no video) is scored again when an ensemble reads it, to the same scores.
    from fakescope.eval.predictions import PREDICTION_COLUMNS, iter_predictions

    column = transfer.SOURCES[0]
    val_file = out / "runs" / f"npr__base__{column}" / transfer.VAL_PREDICTIONS
    assert tuple(_rows(val_file)[0]) == PREDICTION_COLUMNS
    before = {p.path: p.score for p in iter_predictions(val_file)}
    assert all(p.video for p in iter_predictions(val_file))
    old = ["path,label,score,group"] + [
        f"{p.path},{p.label},{p.score!r},{p.group}" for p in iter_predictions(val_file)
    ]
    val_file.write_text("\n".join(old) + "\n")
    ensemble_argv = [*argv, "--table-only", "--ensemble", "npr", "meso4"]
    assert transfer.main(ensemble_argv) == 0
    assert tuple(_rows(val_file)[0]) == PREDICTION_COLUMNS
    assert {p.path: p.score for p in iter_predictions(val_file)} == pytest.approx(before, abs=1e-6)
    # Members that scored different images stop the ensemble with one line, not a traceback.
    lines = val_file.read_text().splitlines()
    val_file.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(SystemExit, match=r"^error: ensemble npr\+meso4 \[base\]: .*scored different images"):
        transfer.main(ensemble_argv)
