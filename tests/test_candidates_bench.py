"""benchmarks/candidates.py end to end at tiny size, on a few dozen real faces of each shared source:
the candidates train on the shipped detector's pooled data, the choice reads their val faces and never
a test face, the table holds what the runs scored, a rerun trains nothing, and the floor can rule every
candidate out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bench_support import load_benchmark

candidates = load_benchmark("candidates")

TINY = ["data.image_size=32", "train.epochs=1", "train.max_steps_per_epoch=2", "train.batch_size=8",
        "train.progress=false", "seed=0"]  # fmt: skip


def _argv(data: Path, out: Path, *extra: str) -> list[str]:
    argv = ["--data", str(data), "--out", str(out), "--detectors", "npr", "meso4", "--recipe", "tiny",
            "--bootstrap", "50", *extra]  # fmt: skip
    for s in TINY:
        argv += ["--set", s]
    return argv


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def bench(tiny_data: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("candidates")
    # Tiny runs on four val faces a source cannot clear a real floor; -1 lets both through, so the
    # choice among eligible candidates is exercised (the floor itself is tested below).
    assert candidates.main(_argv(tiny_data, out, "--floor", "-1")) == 0
    return out


def test_the_choice_reads_val_faces_only_and_is_the_best_eligible_candidate(bench: Path):
    from fakescope.data.manifest import read_manifest
    from fakescope.eval.metrics import auc
    from fakescope.eval.predictions import iter_predictions

    result = json.loads((bench / "candidates.json").read_text())
    pooled = read_manifest(bench / "manifests" / "manifest_pooled.csv")
    val = {r.path for r in pooled if r.split == "val"}
    test = {r.path for r in pooled if r.split == "test"}
    assert val and test
    assert {c["detector"] for c in result["candidates"]} == {"npr", "meso4"}
    for c in result["candidates"]:
        run = bench / "runs" / f"{c['detector']}__tiny"
        # Trained on the pooled train split; selected on its val split; no test face was ever read.
        seen = _csv(run / "seen_rows.csv")
        assert not {r["path"] for r in seen} & test
        preds = list(iter_predictions(run / candidates.VAL_PREDICTIONS))
        assert {p.path for p in preds} == val
        # The table's figures are the run's own val scores, per source and pooled.
        y = np.array([p.label for p in preds])
        s = np.array([p.score for p in preds])
        assert c["val"]["pooled"]["auc"] == pytest.approx(auc(y, s))
        assert c["val"]["pooled"]["auc"] == pytest.approx(c["best_val_auc"], abs=1e-4)
        for source in ("dfdc-faces", "ffhq-stylegan", "ciplab-photoshop"):
            m = np.array([p.group.startswith(source + ":") for p in preds])
            assert c["val"][source]["n"] == int(m.sum()) > 0
            assert c["val"][source]["auc"] == pytest.approx(auc(y[m], s[m]))
        assert c["eligible"]  # floor -1
    best = max(result["candidates"], key=lambda c: c["val"]["pooled"]["auc"])
    assert result["chosen"]["detector"] == best["detector"]
    other = next(c for c in result["candidates"] if c is not best)
    assert other["vs_chosen"]["difference"] == pytest.approx(
        other["val"]["pooled"]["auc"] - best["val"]["pooled"]["auc"]
    )
    # The ensemble of the two is tried on the same val faces and kept only if validation says so.
    assert sorted(result["ensemble"]["tried"]) == ["meso4", "npr"]
    assert result["ensemble"]["members"] in ([best["detector"]], [best["detector"], other["detector"]])
    assert f"Chosen on validation: `{best['detector']}`" in (bench / "candidates.md").read_text()


def test_a_rerun_trains_nothing_and_a_high_floor_rules_every_candidate_out(bench: Path, tiny_data: Path):
    weights = {p: p.stat().st_mtime_ns for p in bench.glob("runs/*/checkpoints/*.safetensors")}
    assert weights
    assert candidates.main(_argv(tiny_data, bench, "--floor", "-1")) == 0
    assert {p: p.stat().st_mtime_ns for p in bench.glob("runs/*/checkpoints/*.safetensors")} == weights
    # A floor no tiny run can pass: nothing is chosen, and the table says why.
    assert candidates.main(_argv(tiny_data, bench, "--table-only", "--floor", "0.999")) == 0
    result = json.loads((bench / "candidates.json").read_text())
    assert result["chosen"] is None and not any(c["eligible"] for c in result["candidates"])
    assert (
        "No candidate's val AUC interval lies above 0.999 on every source."
        in (bench / "candidates.md").read_text()
    )


def test_the_table_goes_between_the_docs_markers(bench: Path, tiny_data: Path, tmp_path: Path):
    doc = tmp_path / "card.md"
    doc.write_text("before\n<!-- CANDIDATES -->\nold\n<!-- /CANDIDATES -->\nafter\n")
    assert candidates.main(_argv(tiny_data, bench, "--table-only", "--update-docs", str(doc))) == 0
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert (bench / "candidates.md").read_text().strip() in text


def test_bad_input_is_one_line(bench: Path, tiny_data: Path, tmp_path: Path):
    with pytest.raises(SystemExit, match="^error: .*no finished candidate"):
        candidates.main(_argv(tiny_data, tmp_path / "none", "--table-only"))
    with pytest.raises(SystemExit, match="^error: no recipe .*nope.yaml"):
        candidates.main([*_argv(tiny_data, tmp_path / "x"), "--detectors", "nope"])
    # A recipe name stands for one set of settings: other settings under the same name are refused.
    with pytest.raises(SystemExit, match="^error: recipe 'tiny' was run with"):
        candidates.main([*_argv(tiny_data, bench), "--set", "train.lr=1"])


def test_a_reference_run_is_compared_on_the_same_val_faces_and_never_chosen(bench: Path, tiny_data: Path):
    run = bench / "runs" / "npr__tiny"
    argv = _argv(tiny_data, bench, "--table-only", "--floor", "-1", "--reference", f"again={run}")
    assert candidates.main(argv) == 0
    result = json.loads((bench / "candidates.json").read_text())
    assert (bench / "references" / "again" / candidates.VAL_PREDICTIONS).is_file()
    (ref,) = result["references"]
    npr = next(c for c in result["candidates"] if c["detector"] == "npr")
    # the same run scored again on the same val faces: the same figures, per source too
    for key in ("pooled", "dfdc-faces", "ffhq-stylegan", "ciplab-photoshop"):
        assert ref["val"][key]["auc"] == pytest.approx(npr["val"][key]["auc"], abs=1e-4)
    assert ref["name"] == "again" and result["chosen"]["detector"] in ("npr", "meso4")
    ens = result["ensemble"]
    chosen_auc = (ens["val"] if len(ens["members"]) > 1 else result["chosen"]["val"])["pooled"]["auc"]
    assert ref["minus_chosen"]["difference"] == pytest.approx(ref["val"]["pooled"]["auc"] - chosen_auc)
    assert "| `again` (reference, not a candidate) |" in (bench / "candidates.md").read_text()
    with pytest.raises(SystemExit, match="^error: --reference npr: a candidate has that name"):
        candidates.main(_argv(tiny_data, bench, "--table-only", "--reference", f"npr={run}"))
    with pytest.raises(SystemExit, match="^error: --reference 'again': expected NAME=RUN"):
        candidates.main(_argv(tiny_data, bench, "--table-only", "--reference", "again"))
