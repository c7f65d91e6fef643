"""`prepare`, `fit-inr` and `evaluate --run` as 2 shards (docs/scale.md): with `--shard K/N` (two
processes at once, then `fakescope merge`) and under `torchrun --nproc_per_node 2` (gloo, rank 0
merges). The merged outputs must equal one process's: the same manifest rows and crop bytes, the same
heatmaps, the same predictions and metrics. Small inputs: the 3 short clips of the stand-in set (small
frames, so the time goes to sharding, not decoding) x 3 frames, their 9 crops for fit-inr (8 px INRs)
and for evaluate (an untrained tiny AIRL at 32 px)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from fakescope.cli import main
from fakescope.errors import ConfigError
from fakescope.utils.sharding import Shard, parse_shard, resolve_shard

pytestmark = pytest.mark.slow

LABELS = ("real", "fake", "fake")  # of the stand-in clips, in order
MODES = ("shard", "torchrun")
INR = ["--set", "inr.resolution=8", "--set", "inr.max_steps=40", "--set", "inr.target_psnr=30"]
# A shard process must not think it is a torchrun rank because pytest itself runs under one.
ENV = {**{k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")},
       "OMP_NUM_THREADS": "1"}  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    # The one-process reference runs here with the shards' thread count: a network's output can move
    # in its last bits with the number of threads (measured on the JPEG-perturbed scores), which is not
    # what this test is about.
    torch.set_num_threads(1)


def _fakescope(*argv: object) -> list[str]:
    return [sys.executable, "-m", "fakescope", *map(str, argv)]


def _torchrun(*argv: object) -> list[str]:
    # "--": torchrun's own parser would take `--run` for an abbreviation of its `--run-path`.
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "fakescope", "--", *map(str, argv)]  # fmt: skip


def _check(proc: subprocess.CompletedProcess | subprocess.Popen, err: str = "") -> None:
    assert proc.returncode == 0, err[-3000:]


def run_sharded(mode: str, out: Path, *argv: object) -> None:
    """The command as 2 shards: two processes at once then `fakescope merge`, or torchrun."""
    if mode == "torchrun":
        r = subprocess.run(_torchrun(*argv), capture_output=True, text=True, env=ENV, timeout=300)
        _check(r, r.stderr)
        return
    procs = [
        subprocess.Popen(_fakescope(*argv, "--shard", f"{k}/2"), env=ENV, stderr=subprocess.PIPE, text=True)
        for k in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        _check(p, err)
    assert main(["merge", str(out)]) == 0


@pytest.fixture(scope="module")
def work(standin_set, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sharding")
    with open(root / "videos.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "group"])
        for video, label in zip(standin_set.videos, LABELS, strict=True):
            w.writerow([video, label, video.stem])
    return root


def _prepare_args(work: Path, out: Path) -> list[object]:
    return ["prepare", work / "videos.csv", "--out", out, "--frames", "3", "--quiet"]


@pytest.fixture(scope="module")
def prepared(work) -> dict[str, Path]:
    outs = {"one": work / "prep-one", **{m: work / f"prep-{m}" for m in MODES}}
    assert main([str(a) for a in _prepare_args(work, outs["one"])]) == 0
    for mode in MODES:
        run_sharded(mode, outs[mode], *_prepare_args(work, outs[mode]))
    return outs


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("mode", MODES)
def test_sharded_prepare_equals_one_process(prepared, mode, standin_set):
    one, merged = prepared["one"], prepared[mode]
    rows = _rows(one / "manifest.csv")
    assert len(rows) == 9 and [r["video"] for r in rows[::3]] == [v.stem for v in standin_set.videos]
    # Same rows in the same order (nothing dropped, duplicated or reordered), the same tables...
    for table in ("manifest.csv", "landmarks.csv", "no_face.csv"):
        assert (merged / table).read_text() == (one / table).read_text(), table
    # ...and the same crop bytes behind every row.
    for r in rows:
        assert (merged / r["path"]).read_bytes() == (one / r["path"]).read_bytes(), r["path"]
    a, b = (json.loads((d / "summary.json").read_text()) for d in (one, merged))
    for key in ("inputs", "jobs_failed", "frames_sampled", "faces_found", "no_face_frames", "crops_by_label",
                "errors", "short_videos", "config_hash"):  # fmt: skip
        assert a[key] == b[key], key
    shard_sizes = [
        json.loads((merged / "shards" / f"{k}-of-2" / "shard.json").read_text())["items"] for k in (0, 1)
    ]
    assert shard_sizes == [[0, 2], [1]]  # whole videos, by index modulo 2


def _cache_entries(cache: Path) -> dict[str, tuple[dict, dict[str, torch.Tensor]]]:
    out = {}
    for f in sorted(cache.glob("*/*/*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            out[f.name] = (fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()})  # noqa: SIM118
    return out


def test_sharded_fit_inr_equals_one_process(prepared, work):
    manifest = prepared["one"] / "manifest.csv"

    def args(out: Path) -> list[object]:
        return ["fit-inr", "--manifest", manifest, "--out", out, "--cache", out / "cache", "--device", "cpu",
                "--quiet", *INR]  # fmt: skip

    one = work / "inr-one"
    assert main([str(a) for a in args(one)]) == 0
    ref_maps = _cache_entries(one / "cache")
    assert len(ref_maps) == 9
    ref_summary = json.loads((one / "summary.json").read_text())
    for mode in MODES:
        out = work / f"inr-{mode}"
        run_sharded(mode, out, *args(out))
        assert (out / "records.csv").read_text() == (one / "records.csv").read_text(), mode
        maps = _cache_entries(out / "cache")
        assert maps.keys() == ref_maps.keys(), mode
        for name, (meta, tensors) in maps.items():
            # safetensors writes the metadata keys in no fixed order: compare contents, not bytes
            assert meta == ref_maps[name][0], name
            for key, t in tensors.items():
                assert torch.equal(t, ref_maps[name][1][key]), (mode, name, key)
        summary = json.loads((out / "summary.json").read_text())
        for key in ("n", "mean_psnr", "min_psnr", "share_reached", "mean_steps", "median_steps", "by_label",
                    "n_fitted", "n_cached", "n_skipped", "config_key"):  # fmt: skip
            assert summary[key] == ref_summary[key], (mode, key)


@pytest.fixture(scope="module")
def tiny_run(work) -> Path:
    """An untrained tiny AIRL saved as a run: evaluate only needs a checkpoint that scores."""
    from fakescope.config import config_from_dict
    from fakescope.data.splits import SEEN_ROWS_FILE, write_seen_rows
    from fakescope.inference.checkpoint import save_checkpoint
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector

    cfg = config_from_dict({
        "name": "tiny", "seed": 0, "device": "cpu", "data": {"image_size": 32},
        "model": {"name": "airl", "backbone": "efficientnet_tiny", "pretrained": False},
        "eval": {"bootstrap": 200, "perturbations": ["jpeg_q50"], "batch_size": 2},
    })  # fmt: skip
    torch.manual_seed(0)
    run = work / "tiny"
    detector = build_detector(cfg.model, input_spec_for(cfg))
    save_checkpoint(run / "checkpoints", "best", model=detector, cfg=cfg, detector_name="airl",
                    epoch=0, step=0, val_threshold=0.5)  # fmt: skip
    write_seen_rows(run / SEEN_ROWS_FILE, {"train": [], "val": []})
    return run


def test_sharded_evaluate_equals_one_process(prepared, tiny_run, work):
    def args(out: Path, plots: bool = False) -> list[object]:
        extra = [] if plots else ["--no-plots"]
        return ["evaluate", "--run", tiny_run, "--data", prepared["one"] / "manifest.csv", "--split", "all",
                "--robustness", "--device", "cpu", "--out", out, *extra]  # fmt: skip

    one = work / "eval-one"
    assert main([str(a) for a in args(one)]) == 0
    preds = sorted(p.name for p in (one / "predictions").glob("*.csv"))
    assert preds == ["tiny__prep-one.csv", "tiny__prep-one__jpeg_q50.csv"]
    assert len(_rows(one / "predictions" / preds[0])) == 9
    for mode in MODES:
        out = work / f"eval-{mode}"
        run_sharded(mode, out, *args(out, plots=mode == "shard"))
        for name in preds:
            assert (out / "predictions" / name).read_text() == (one / "predictions" / name).read_text(), name
        # AUC, its bootstrap interval and the thresholded accuracies: computed once on the merged scores
        for table in ("cross_dataset.json", "robustness.json", "cross_dataset.csv", "robustness.csv"):
            assert (out / "metrics" / table).read_text() == (one / "metrics" / table).read_text(), table
    assert (work / "eval-shard" / "plots" / "tsne__tiny__prep-one.png").is_file()
    # Batches of 2 rows, every other one: video 0's 3 frames were scored by both shards, and its video
    # score (in the metrics compared above) is still the mean over all three.
    marker = json.loads((work / "eval-shard" / "shards" / "1-of-2" / "shard.json").read_text())
    assert marker["items"] == [2, 3, 6, 7]


def test_merge_names_a_missing_or_unfinished_shard_and_a_rerun_shard_resumes(prepared, work, capsys):
    out = work / "prep-partial"
    shutil.copytree(prepared["shard"], out)
    (out / "manifest.csv").unlink()
    marker = out / "shards" / "1-of-2" / "shard.json"
    marker.unlink()
    assert main(["merge", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "shard 1-of-2 did not finish" in err and "\n" not in err
    shutil.rmtree(out / "shards" / "1-of-2")
    assert main(["merge", str(out)]) == 2
    assert "shard 1-of-2 is missing" in capsys.readouterr().err
    assert not (out / "manifest.csv").exists()
    # Rerun the lost shard alone: its video's record is still there, so nothing is decoded again.
    assert main([str(a) for a in [*_prepare_args(work, out), "--shard", "1/2"]]) == 0
    assert json.loads((out / "shards" / "1-of-2" / "summary.json").read_text())["jobs_resumed"] == 1
    assert main(["merge", str(out)]) == 0
    assert (out / "manifest.csv").read_text() == (prepared["one"] / "manifest.csv").read_text()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("3/2", "below N"),
        ("2/2", "K=2 for N=2"),
        ("-1/2", "below N"),
        ("0/0", "at least 1"),
        ("1", "K/N"),
        ("a/2", "whole number"),
        ("auto", "SLURM_ARRAY_TASK_ID"),
    ],  # fmt: skip
)
def test_bad_shard_values_are_one_clear_line(text, words):
    with pytest.raises(ConfigError, match=words):
        parse_shard(text, env={})


def test_shard_sources_and_partition():
    assert parse_shard("1/3", env={}) == Shard(1, 3, "--shard")
    slurm = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert parse_shard("auto", env=slurm) == Shard(3, 4, "slurm")
    assert resolve_shard(None, env={"RANK": "1", "WORLD_SIZE": "2"}) == Shard(1, 2, "torchrun")
    assert resolve_shard(None, env={}) == Shard()
    with pytest.raises(ConfigError, match="one or the other"):
        resolve_shard("0/2", env={"RANK": "0", "WORLD_SIZE": "2"})
    # Every item in exactly one shard, sizes within one of each other.
    taken = [Shard(k, 3).take(10) for k in range(3)]
    assert sorted(i for t in taken for i in t) == list(range(10)) and [len(t) for t in taken] == [4, 3, 3]


def test_bad_shard_flag_is_one_line_from_the_command(tmp_path, capsys):
    rc = main(["prepare", str(tmp_path), "--out", str(tmp_path / "o"), "--shard", "3/2"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("fakescope prepare: error: --shard 3/2") and "\n" not in err
