"""`fakescope demo` runs end to end with no download and no ../shared (CI-sized settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakescope.cli import main
from fakescope.data.manifest import read_manifest
from fakescope.demo import STANDIN_NOTICE, StandinConfig, build_standin_dataset


def test_standin_set_is_deterministic_balanced_and_grouped_by_pair(tmp_path):
    m1 = build_standin_dataset(tmp_path / "a", StandinConfig(n_pairs=4))
    m2 = build_standin_dataset(tmp_path / "b", StandinConfig(n_pairs=4))
    rows = read_manifest(m1)
    assert [r.label for r in rows].count(0) == [r.label for r in rows].count(1) == 8
    assert len({r.group for r in rows}) == 4
    for r1, r2 in zip(rows, read_manifest(m2), strict=True):
        assert Path(r1.path).read_bytes() == Path(r2.path).read_bytes()
    assert "NOT A BENCHMARK" in (tmp_path / "a" / "STANDIN.txt").read_text()


def test_fakes_differ_from_their_real_only_inside_the_swapped_face(tmp_path):
    import numpy as np
    from PIL import Image

    build_standin_dataset(tmp_path, StandinConfig(n_pairs=1, grain=0.0))
    real = np.asarray(Image.open(tmp_path / "real" / "lfw000.png"), np.float32)
    fake = np.asarray(Image.open(tmp_path / "fake" / "lfw000.png"), np.float32)
    diff = np.abs(real - fake).mean(axis=2)
    assert diff[20:44, 22:42].mean() > 10  # the inner face was replaced
    assert diff[:4].mean() < 1 and diff[:, :3].mean() < 1  # the border is the target's own


@pytest.mark.slow
def test_demo_runs_end_to_end_and_prints_where_the_report_is(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert STANDIN_NOTICE in printed
    index = out / "report" / "index.html"
    assert printed.strip().endswith(f"Report: {index}")
    assert index.is_file()
    for model in ("infer", "airl"):
        meta = json.loads((out / "runs" / model / "checkpoints" / "best.json").read_text())
        assert meta["detector"] == model
        reports = sorted((out / "report" / model).glob("0*_*/index.html"))
        assert len(reports) == 4  # two stand-in crops, the photograph, the video
    assert list((out / "report" / "infer").glob("*/face00_inr_heatmaps.png"))
    assert list((out / "report" / "airl").glob("*/face00_dct.png"))
    assert list((out / "report" / "airl").glob("*astronaut_zoom.mp4/score_over_time.png"))
    assert list((out / "eval" / "metrics").glob("*.md"))
    # The shipped detector scores the same four files beside the stand-ins, without a stand-in banner.
    shipped = sorted((out / "report" / "shipped").glob("0*_*/index.html"))
    assert len(shipped) == 4
    assert "STAND-IN" not in shipped[0].read_text(encoding="utf-8")
    assert "shipped detector (trained on real data; not a stand-in)" in index.read_text(encoding="utf-8")
