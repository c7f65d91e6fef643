"""Streamed precompute and lazy stores (issue 15, "Memory flat in data size"; docs/scale.md "Memory").

On face crops at 32 px (``face_set``: DFDC, or the stand-in set without ../shared) with tiny INR
fits (16 px, 20 steps): computing the stored inputs in
chunks gives exactly the arrays one pass over all crops gives (what ``precompute_inputs`` held in
memory before), the training log and the evaluation scores are the same whatever the chunk, every INR
fit record reaches the fit log, and a :class:`~fakescope.inference.stores.LazyStore` pickles as its index
(not its arrays), reads the same arrays after a round trip and in DataLoader workers. Memory itself is
measured by ``benchmarks/memory.py``, not here."""

from __future__ import annotations

import csv
import gc
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fakescope.config import load_config
from fakescope.data.dataset import FaceDataset, collate_batch
from fakescope.data.manifest import read_manifest, write_manifest
from fakescope.errors import ConfigError
from fakescope.inference.inputs import compute_inputs, precompute_inputs
from fakescope.inference.spec import input_spec_for
from fakescope.inference.stores import LazyStore
from fakescope.models.registry import build_detector

TINY_INFER = ["model.name=infer", "model.backbone=clip_tiny", "model.pretrained=false", "data.image_size=32",
              "inr.resolution=16", "inr.max_steps=8", "inr.cpu_path=batched", "inr.init_file=null",
              "train.progress=false",
              "eval.bootstrap=0", "seed=3"]  # fmt: skip


@pytest.fixture(scope="module")
def rows(face_set, tmp_path_factory):
    """The first 20 groups (one real + one fake face each): 40 faces, a chunk of 32 and a short one."""
    all_rows = read_manifest(face_set.manifest)
    keep = set(list(dict.fromkeys(r.group for r in all_rows))[:20])
    folder = tmp_path_factory.mktemp("data")
    manifest = write_manifest([r for r in all_rows if r.group in keep], folder / "manifest.csv",
                              relative_to=folder / "nowhere")  # fmt: skip
    return read_manifest(manifest), manifest


def _cfg(cache: Path, *extra: str):
    return load_config(None, [*TINY_INFER, f"train.feature_cache_dir={cache}", *extra])


def _detector(cfg):
    torch.manual_seed(0)
    return build_detector(cfg.model, input_spec_for(cfg)).eval()


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_chunked_precompute_gives_the_one_pass_arrays_and_every_fit_record(rows, tmp_path):
    faces, _ = rows
    cfg = _cfg(tmp_path / "one")
    det = _detector(cfg)
    ds = FaceDataset(faces, cfg.data.image_size)
    crops = [ds.load_crop(i) for i in range(len(ds))]
    # The reference: one pass over all crops held in memory, as precompute_inputs did before streaming.
    ref = compute_inputs({"heatmaps", "clip"}, crops, cfg, "cpu", detector=det, cache_dir=tmp_path / "one")
    paths = [r.path for r in faces]
    # Chunks of 32: a full chunk and a short one (one chunk for all: test_training_and_evaluation_...).
    cfg_c = _cfg(tmp_path / "chunked", "train.precompute_chunk=32")
    ds_c = FaceDataset(faces, cfg.data.image_size)
    precompute_inputs({"image", "heatmaps", "clip"}, ds_c, cfg_c, torch.device("cpu"), detector=det,
                      fit_log=tmp_path / "fits.csv")  # fmt: skip
    for name in ("heatmaps", "clip"):
        store = ds_c.stores[name]
        assert isinstance(store, LazyStore) and list(store) == paths
        for p, want in zip(paths, ref.stores[name], strict=True):
            got = store[p]
            assert got.dtype == np.float32 and np.array_equal(got, want), (name, p)
    assert not ds_c.stores["heatmaps"].spilled  # read back from the heatmap cache
    assert ds_c.stores["clip"].spilled  # a random backbone's embeddings are never cached: spill file
    fits = _csv(tmp_path / "fits.csv")
    assert [f["path"] for f in fits] == paths  # every record, in row order, none dropped
    assert [(int(f["steps"]), float(f["final_psnr"]), f["cached"]) for f in fits] == [
        (r.steps, round(r.final_psnr, 3), "0") for r in ref.fit_records
    ]


def test_pretrained_embeddings_are_read_from_the_feature_cache(rows, tmp_path):
    faces, _ = rows
    cfg = load_config(None, ["model.name=clip", "model.backbone=lite0", "model.pretrained=true",
                             "data.image_size=32", "train.progress=false", f"train.feature_cache_dir={tmp_path}",
                             "train.precompute_chunk=32"])  # fmt: skip
    det = _detector(cfg)
    ds = FaceDataset(faces, cfg.data.image_size)
    ref = compute_inputs({"clip"}, [ds.load_crop(i) for i in range(len(ds))], cfg, "cpu", detector=det)
    precompute_inputs(det.inputs, ds, cfg, torch.device("cpu"), detector=det)
    store = ds.stores["clip"]
    assert not store.spilled and not list(tmp_path.rglob("store.npy"))
    for r, want in zip(faces, ref.stores["clip"], strict=True):
        assert np.array_equal(store[r.path], want)


def test_training_and_evaluation_do_not_depend_on_the_chunk(rows, tmp_path):
    from fakescope.eval.scoring import predict_rows
    from fakescope.train.trainer import train

    faces, manifest = rows
    logs, scores = [], []
    for chunk in (32, 256):
        cfg = _cfg(tmp_path / f"cache{chunk}", "model.name=clip", f"data.manifest={manifest}", "train.epochs=1",
                   "train.batch_size=8", "train.max_steps_per_epoch=3", f"train.precompute_chunk={chunk}")  # fmt: skip
        result = train(cfg, tmp_path / f"run{chunk}")
        log = _csv(tmp_path / f"run{chunk}" / "log.csv")
        logs.append([{k: v for k, v in row.items() if "seconds" not in k and "time" not in k} for row in log])
        det = _detector(cfg)
        out = predict_rows(det, cfg, faces, torch.device("cpu"), run_name="t", dataset="dfdc",
                           csv_path=tmp_path / f"pred{chunk}.csv", progress=False)  # fmt: skip
        scores.append(out.scores)
        assert result is not None
    assert logs[0] == logs[1]
    assert np.array_equal(scores[0], scores[1])


def test_lazy_store_pickles_as_its_index_and_reads_the_same_arrays_in_workers(rows, tmp_path):
    faces = rows[0][:16]
    cfg = _cfg(tmp_path / "cache", "train.precompute_chunk=32")
    det = _detector(cfg)
    ds = FaceDataset(faces, cfg.data.image_size)
    precompute_inputs({"heatmaps", "clip"}, ds, cfg, torch.device("cpu"), detector=det)
    for name, store in ds.stores.items():
        blob = pickle.dumps(store)
        arrays = sum(store[p].nbytes for p in store)
        per_face = max(len(p) for p in store) + 40  # path + 32-byte key + framing, not the array
        assert len(blob) < 4096 + per_face * len(store), (name, len(blob))
        if name == "heatmaps":
            assert len(blob) < arrays  # the arrays are not in it (an embedding of clip_tiny is small)
        back = pickle.loads(blob)
        assert list(back) == list(store) and len(back) == len(store)
        for p in store:
            assert np.array_equal(back[p], store[p])
        with pytest.raises(KeyError):
            back["not/a/face.jpg"]
    # DataLoader workers (fork here; spawn pickles the dataset, as above) read the same inputs.
    loaders = [DataLoader(ds, batch_size=16, num_workers=w, collate_fn=collate_batch) for w in (0, 2)]
    for a, b in zip(*loaders, strict=True):
        assert a["path"] == b["path"]
        for name in ("heatmaps", "clip"):
            assert torch.equal(a[name], b[name])
    # The spill file of the random backbone's embeddings goes with its store.
    spill_dir = ds.stores["clip"]._spill.dir
    assert os.path.isdir(spill_dir)
    del ds, loaders, a, b, store, back
    gc.collect()
    assert not os.path.exists(spill_dir)


def test_precompute_chunk_must_be_a_multiple_of_the_embedding_batch():
    with pytest.raises(ConfigError):
        load_config(None, ["train.precompute_chunk=100"])


@pytest.mark.slow
def test_ddp_ranks_fit_their_share_in_chunks_then_read_every_face(rows, tmp_path):
    import subprocess
    import sys

    import yaml

    from fakescope.data.manifest import split_by_group

    _, manifest = rows
    cache = tmp_path / "cache"
    cfg = {
        "seed": 1, "device": "cpu", "data": {"manifest": str(manifest), "image_size": 32},
        "model": {"name": "infer", "backbone": "clip_tiny", "pretrained": False},
        "inr": {"resolution": 16, "max_steps": 8, "cpu_path": "batched", "init_file": None},
        "train": {"epochs": 1, "batch_size": 4, "max_steps_per_epoch": 2, "progress": False,
                  "ddp_backend": "gloo", "feature_cache_dir": str(cache), "precompute_chunk": 32},
        "eval": {"bootstrap": 0},
    }  # fmt: skip
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "fakescope", "train", "--config", str(tmp_path / "ddp.yaml"), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    splits = split_by_group(read_manifest(manifest))
    for part in ("train", "val"):  # rank 0 logs every face's fit, none dropped
        fits = _csv(tmp_path / "run" / f"inr_fits_{part}.csv")
        assert sorted(f["path"] for f in fits) == sorted(r.path for r in splits[part])
    heatmaps = [p for p in cache.rglob("*.safetensors") if "features" not in p.parts]
    assert len(heatmaps) == len(splits["train"]) + len(splits["val"])  # each face fitted once, by one rank
