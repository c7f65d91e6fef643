"""INR engine: batched models, fitting to a target PSNR, exact PCA heatmaps (INFER §3.3-3.4, A.1)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from fakescope.data.images import load_image_rgb
from fakescope.errors import InputError
from fakescope.inr import InrConfig, heatmaps_for_images
from fakescope.inr.engine import _targets, fit_resized, resize_for_inr
from fakescope.inr.fitting import fit_batch
from fakescope.inr.heatmaps import SIGN_CORR_EPS, luminance, pca_maps
from fakescope.inr.models import coordinate_grid, forward, init_params, load_init, save_init

R = 32
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    # 32 px fits gain nothing from intra-op threads, and on a shared CPU two spinning OpenMP threads
    # were measured 5-10x slower than one.
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def faces(face_set) -> list[np.ndarray]:
    """Two real and two fake face crops (DFDC, or the stand-in set without ../shared), resized to 32 px."""
    with open(face_set.manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = [r for r in rows if r["label"] == "real"][:2] + [r for r in rows if r["label"] == "fake"][:2]
    return [resize_for_inr(load_image_rgb(face_set.root / r["path"]), R) for r in picked]


def _cfg(**kw) -> InrConfig:
    return InrConfig(resolution=R, max_steps=300, **kw)


def test_batched_equals_per_image(faces):
    # Tolerance: same step count, PSNR within 0.05 dB, heatmaps within 1e-3 (standardised units).
    # On this CPU the two are bitwise equal; the slack is for GPU kernels that round differently.
    cfg = _cfg()
    batched = fit_resized(faces, cfg, CPU)
    for img, b in zip(faces, batched, strict=True):
        (alone,) = fit_resized([img], cfg, CPU)
        assert b.record.steps == alone.record.steps
        assert abs(b.record.final_psnr - alone.record.final_psnr) < 0.05
        np.testing.assert_allclose(b.heatmaps, alone.heatmaps, atol=1e-3)
        assert np.abs(b.reconstruction.astype(int) - alone.reconstruction).max() <= 1


@pytest.mark.parametrize("activation", ["sine", "gauss", "wire"])
def test_every_activation_fits_a_real_face_to_35db(shared_data, faces, activation):
    # shared_data: reaching 35 dB is a property of real faces, which the stand-in set does not have.
    cfg = _cfg(activation=activation)
    (res,) = fit_resized([faces[0]], cfg, CPU)
    assert res.record.reached, res.record
    assert res.record.final_psnr >= 35.0
    assert res.record.steps < cfg.max_steps
    assert res.heatmaps.shape == (cfg.depth, R, R) and res.heatmaps.dtype == np.float32
    # The reconstruction is the face, not just something with the right PSNR bookkeeping.
    err = res.reconstruction.astype(np.float64) - faces[0]
    psnr = 10 * np.log10(255.0**2 / np.mean(err**2))
    assert psnr > 34.0


def test_converged_image_parameters_stop_changing(faces):
    """A face converges early; a noise image never does (width 32 is too small to memorise noise).
    Running longer must not move the converged face's parameters."""
    cfg = _cfg(width=32)
    noise = np.random.default_rng(0).integers(0, 256, (R, R, 3), dtype=np.uint8)
    tgt, _ = _targets([faces[0], noise], cfg, CPU)
    coords = coordinate_grid(R)
    init = load_init(cfg)
    short_params, short = fit_batch(tgt, init, cfg.model_copy(update={"max_steps": 70}), coords)
    long_params, long = fit_batch(tgt, init, cfg.model_copy(update={"max_steps": 110}), coords)
    assert short[0].reached and short[0].steps < 70
    assert short[0] == long[0]
    assert not short[1].reached and (short[1].steps, long[1].steps) == (70, 110)
    for a, b in zip(short_params.tensors(), long_params.tensors(), strict=True):
        assert torch.equal(a[0], b[0])  # the converged face: frozen bit for bit
        assert not torch.equal(a[1], b[1])  # the noise image kept training


def test_pca_matches_exact_first_component_from_numpy_svd(faces):
    cfg = _cfg(first_layer_map="same")  # the paper's PCA map for every layer, layer 1 included
    (res,) = fit_resized([faces[2]], cfg, CPU)
    tgt, luma = _targets([faces[2]], cfg, CPU)
    params, _ = fit_batch(tgt, load_init(cfg), cfg, coordinate_grid(R))
    _, acts = forward(params, coordinate_grid(R), cfg, return_activations=True)
    for layer, a in enumerate(acts):
        x = a[0].detach().double().numpy()
        xc = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        ref = xc @ vt[0]
        ref = (ref - ref.mean()) / ref.std()
        ours = pca_maps(a.detach(), luma)[0].numpy()
        assert abs(np.corrcoef(ours, ref)[0, 1]) > 0.99999, f"layer {layer + 1}"
        np.testing.assert_allclose(res.heatmaps[layer].ravel(), ours, atol=1e-4)


def test_heatmap_sign_rule_is_stable_under_batch_order_and_component_sign(faces):
    cfg = _cfg()
    forward_order = fit_resized(faces, cfg, CPU)
    reverse_order = fit_resized(faces[::-1], cfg, CPU)[::-1]
    for a, b in zip(forward_order, reverse_order, strict=True):
        np.testing.assert_allclose(a.heatmaps, b.heatmaps, atol=1e-3)
    # The rule: each map correlates positively with the image's luminance (or, when that correlation
    # is negligible, the largest loading is positive). Negating the activations flips the principal
    # direction; the rule must undo it.
    _, luma = _targets(faces, cfg, CPU)
    acts = torch.randn(len(faces), R * R, 16, dtype=torch.float64) + luma[
        ..., None
    ].double() * torch.linspace(-1, 2, 16, dtype=torch.float64)
    maps = pca_maps(acts, luma)
    torch.testing.assert_close(pca_maps(-acts, luma), maps)
    torch.testing.assert_close(pca_maps(acts.flip(0), luma.flip(0)), maps.flip(0))
    for m, lum in zip(maps, luma, strict=True):
        r = np.corrcoef(m.numpy(), lum.numpy())[0, 1]
        assert r > SIGN_CORR_EPS
    for res, img in zip(forward_order, faces, strict=True):
        lum = luminance(torch.from_numpy(img).double() / 255).numpy().ravel()
        r = np.corrcoef(res.heatmaps[-1].ravel(), lum)[0, 1]
        assert r > 0  # the last layer shows the face, brighter skin -> larger values
        assert np.allclose(res.heatmaps.mean(axis=(1, 2)), 0, atol=1e-4)
        assert np.allclose(res.heatmaps.std(axis=(1, 2)), 1, atol=1e-3)


def test_l2norm_mode_gives_standardised_maps(faces):
    maps, records = heatmaps_for_images(faces[:1], _cfg(heatmap_mode="l2norm"), CPU)
    assert maps[0].shape == (3, R, R)
    assert np.allclose(maps[0].std(axis=(1, 2)), 1, atol=1e-3)
    pca, _ = heatmaps_for_images(faces[:1], _cfg(), CPU)
    assert not np.allclose(maps[0][-1], pca[0][-1], atol=0.1)
    assert records[0].reached


def test_public_api_resizes_and_keeps_order(faces, face_set):
    full = load_image_rgb(face_set.real[-1])
    assert full.shape[0] != R
    maps, records = heatmaps_for_images([full, faces[1]], _cfg(), CPU)
    assert [m.shape for m in maps] == [(3, R, R)] * 2
    (alone,) = fit_resized([faces[1]], _cfg(), CPU)
    np.testing.assert_allclose(maps[1], alone.heatmaps, atol=1e-3)
    assert records[1].steps == alone.record.steps


def test_init_file_round_trip_and_errors(tmp_path):
    cfg = _cfg(width=16, depth=2)
    init = init_params(cfg, seed=5)
    path = tmp_path / "init.safetensors"
    save_init(init, path)
    loaded = load_init(cfg.model_copy(update={"init_file": str(path)}))
    for a, b in zip(init.tensors(), loaded.tensors(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(InputError, match="init.safetensors.*width=32"):
        load_init(cfg.model_copy(update={"init_file": str(path), "width": 32}))


def test_bad_image_is_one_clear_error():
    with pytest.raises(InputError, match="image 0: expected a uint8 HxWx3"):
        heatmaps_for_images([np.zeros((8, 8), np.float32)], _cfg(), CPU)


def _jpeg_q90(image: np.ndarray) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _map_correlations(a, b, layer: int) -> np.ndarray:
    pairs = zip(a, b, strict=True)
    return np.array(
        [np.corrcoef(x.heatmaps[layer].ravel(), y.heatmaps[layer].ravel())[0, 1] for x, y in pairs]
    )


@pytest.mark.slow
def test_layer1_map_survives_jpeg_q90(shared_data):
    """Issue 11: the layer-1 map must not change when a face is re-encoded as JPEG Q 90 and refitted.

    At the CPU recipe's 64 px, the paper's PCA map of layer 1 kept r > 0.7 on 68 % of 72 DFDC faces
    (4-6 % flipped sign) because that layer's top eigenvalues are near-tied; the default L2-norm map kept
    it on 99 % (docs/inr.md). Twelve faces (six real, six fake); the PCA rule fails this test on them.
    """
    root = shared_data / "dfdc-faces"
    with open(root / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = [r for r in rows if r["label"] == "real"][:6] + [r for r in rows if r["label"] == "fake"][:6]
    clean = [load_image_rgb(root / r["path"]) for r in picked]
    cfg = InrConfig(resolution=64)
    assert cfg.first_layer_map == "l2norm"
    a = fit_resized([resize_for_inr(c, 64) for c in clean], cfg, CPU)
    b = fit_resized([resize_for_inr(_jpeg_q90(c), 64) for c in clean], cfg, CPU)
    r = _map_correlations(a, b, layer=0)
    assert (r > 0.7).mean() >= 11 / 12, np.round(r, 2)
    # Layer 3 (a PCA map with a clear eigen-gap) is stable too, so the refits themselves are comparable.
    r3 = _map_correlations(a, b, layer=2)
    assert np.median(r3) > 0.8, np.round(r3, 2)
