"""Heatmap cache: content + config keyed, skips work on re-run, survives a kill, shared by processes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from fakescope.data.images import load_image_rgb
from fakescope.inr import CpuWorkerPool, HeatmapCache, InrConfig, heatmaps_for_images, image_key

R = 32
N_KILL = 10


@pytest.fixture(autouse=True)
def _one_thread():
    # 32 px fits gain nothing from intra-op threads, and on a shared CPU two spinning OpenMP threads
    # were measured 5-10x slower than one.
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def face_paths(face_set) -> list[str]:
    with open(face_set.manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [str(face_set.root / r["path"]) for r in rows[:N_KILL]]


@pytest.fixture(scope="module")
def reference(face_paths):
    """Uncached results for the same images, to compare resumed and concurrent runs against."""
    torch.set_num_threads(1)  # module fixtures run before the autouse one below
    images = [load_image_rgb(p) for p in face_paths]
    return heatmaps_for_images(images, _cfg(), "cpu", None)


def _cfg(**kw) -> InrConfig:
    # One image per batch on the in-process path, so every image reaches the cache as it finishes.
    fields = {"resolution": R, "max_steps": 300, "cpu_path": "batched", "batch_size": 1}
    return InrConfig(**{**fields, **kw})


# The child process fits the listed faces into the cache; it is what the tests kill or run twice.
# With a nonzero `pause_after` it says "paused" once that many entries are written, then waits to be
# killed: the kill lands at a known point however fast the machine is.
CHILD = textwrap.dedent(
    """
    import json, sys
    import torch
    torch.set_num_threads(1)
    from fakescope.data.images import load_image_rgb
    from fakescope.inr import CpuWorkerPool, HeatmapCache, InrConfig, heatmaps_for_images
    cfg = InrConfig.model_validate_json(sys.argv[1])
    paths = json.loads(sys.argv[3])
    pause_after = int(sys.argv[4])

    class PausingCache(HeatmapCache):
        written = 0

        def put(self, key, result):
            super().put(key, result)
            self.written += 1
            if self.written == pause_after:
                print("paused", flush=True)
                sys.stdin.read()  # until killed

    cache = PausingCache(sys.argv[2], cfg)
    heatmaps_for_images([load_image_rgb(p) for p in paths], cfg, "cpu", cache)
    """
)


def _spawn(cfg: InrConfig, cache_dir: Path, paths: list[str], pause_after: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, cfg.model_dump_json(), str(cache_dir), json.dumps(paths),
         str(pause_after)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _assert_same(got, ref) -> None:
    maps, recs = got
    ref_maps, ref_recs = ref
    for m, r, rm, rr in zip(maps, recs, ref_maps, ref_recs, strict=True):
        assert r.steps == rr.steps
        assert abs(r.final_psnr - rr.final_psnr) < 0.05
        np.testing.assert_allclose(m, rm, atol=1e-3)


def test_rerun_is_served_from_cache(tmp_path, face_paths, reference):
    images = [load_image_rgb(p) for p in face_paths[:3]]
    cache = HeatmapCache(tmp_path, _cfg())
    first = heatmaps_for_images(images, _cfg(), "cpu", cache)
    assert [r.cached for r in first[1]] == [False] * 3
    assert len(cache) == 3
    second = heatmaps_for_images(images, _cfg(), "cpu", cache)
    assert [r.cached for r in second[1]] == [True] * 3
    _assert_same(second, (reference[0][:3], reference[1][:3]))
    # Scheduling fields do not change the key; fields that change the result do.
    assert HeatmapCache(tmp_path, _cfg(batch_size=7, workers=3)).root == cache.root
    other = HeatmapCache(tmp_path, _cfg(target_psnr=30.0))
    assert other.root != cache.root and other.get(image_key(images[0])) is None
    # The key is the pixels, not the file: a one-pixel change is a different image.
    edited = images[0].copy()
    edited[0, 0, 0] ^= 1
    assert image_key(edited) != image_key(images[0])


def test_unreadable_entry_is_refitted(tmp_path, face_paths, reference):
    images = [load_image_rgb(face_paths[0])]
    cache = HeatmapCache(tmp_path, _cfg())
    cache.path(image_key(images[0])).parent.mkdir(parents=True)
    cache.path(image_key(images[0])).write_bytes(b"not safetensors")
    maps, recs = heatmaps_for_images(images, _cfg(), "cpu", cache)
    assert not recs[0].cached
    np.testing.assert_allclose(maps[0], reference[0][0], atol=1e-3)
    assert cache.get(image_key(images[0])) is not None


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_results(tmp_path, face_paths, reference):
    cfg = _cfg()
    cache = HeatmapCache(tmp_path, cfg)
    proc = _spawn(cfg, tmp_path, face_paths, pause_after=3)
    said = proc.stdout.readline()  # the child pauses after its third entry: no race with its speed
    assert said == b"paused\n", proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(cache)
    assert proc.returncode == -signal.SIGKILL
    assert n_before == 3
    images = [load_image_rgb(p) for p in face_paths]
    maps, recs = heatmaps_for_images(images, cfg, "cpu", cache)
    # Everything written before the kill is reused, the rest is fitted now.
    assert sum(r.cached for r in recs) == n_before
    _assert_same((maps, recs), reference)
    assert len(cache) == N_KILL


@pytest.mark.slow
def test_two_processes_fill_one_cache(tmp_path, face_paths, reference):
    """Like two torchrun ranks with overlapping shares: both finish, every entry is whole and right."""
    cfg = _cfg()
    half = N_KILL // 2
    procs = [_spawn(cfg, tmp_path, face_paths[: half + 2]), _spawn(cfg, tmp_path, face_paths[half - 2 :])]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    cache = HeatmapCache(tmp_path, cfg)
    assert len(cache) == N_KILL
    assert not list(cache.root.glob("*/.*.tmp"))
    images = [load_image_rgb(p) for p in face_paths]
    got = heatmaps_for_images(images, cfg, "cpu", cache)
    assert all(r.cached for r in got[1])
    _assert_same(got, reference)


def test_worker_processes_give_the_batched_results(tmp_path, face_paths, reference):
    """The CPU default path (one single-threaded process per core, pool kept warm across calls)
    computes what the batched path does."""
    images = [load_image_rgb(p) for p in face_paths[:4]]
    cfg = _cfg(cpu_path="workers", workers=2)
    cache = HeatmapCache(tmp_path, cfg)
    with CpuWorkerPool(cfg) as pool:
        first = heatmaps_for_images(images[:2], cfg, "cpu", cache, pool=pool)
        second = heatmaps_for_images(images[2:], cfg, "cpu", cache, pool=pool)
    got = (first[0] + second[0], first[1] + second[1])
    assert not any(r.cached for r in got[1])
    _assert_same(got, (reference[0][:4], reference[1][:4]))


def test_runs_trained_before_first_layer_map_keep_their_maps_and_cache():
    """``inr.first_layer_map`` changed layer 1's map. A run saved before the field existed must load
    with the old maps (``same``: PCA for every layer), and its cached heatmaps must stay addressable."""
    from fakescope.inference.checkpoint import _upgrade_saved_config
    from fakescope.inr.cache import config_key

    old_saved = {"inr": {"resolution": 32}, "model": {"name": "infer"}}
    assert _upgrade_saved_config(old_saved)["inr"]["first_layer_map"] == "same"
    new_saved = {"inr": {"resolution": 32, "first_layer_map": "l2norm"}, "model": {"name": "infer"}}
    assert _upgrade_saved_config(new_saved)["inr"]["first_layer_map"] == "l2norm"
    # The default InrConfig's cache key as fakescope computed it before the field existed (when the
    # default init was the seeded one; the shipped init keeps that key for init_file null).
    assert config_key(InrConfig(first_layer_map="same", init_file=None)) == "21e5b5bad6987c45"
    assert config_key(InrConfig(init_file=None)) != "21e5b5bad6987c45"  # the new default gives new maps
    upgraded = _upgrade_saved_config(old_saved)["inr"]
    assert upgraded["init_file"] is None and upgraded["lr"] == 3e-3  # the seeded init it was made with
