"""Familiarity (fakescope.inference.familiarity): the class-conditional Mahalanobis distance with a
shared, shrunk covariance after PCA, and the energy score; their thresholds, file and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fakescope.errors import InputError, ModelLoadError
from fakescope.inference.familiarity import Familiarity, energy_score, fit_familiarity, mahalanobis_distances


def _features(n: int, dims: int, shift: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes in ``dims`` dimensions on a low-rank structure (as penultimate features are), each
    around its own mean; ``shift`` moves every point off that structure."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99).normal(size=(20, dims))
    class_means = np.random.default_rng(98).normal(0, 3, size=(2, dims))
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 20)) @ basis + class_means[y] + 0.3 * rng.normal(size=(n, dims))
    if shift:
        x = x + shift * rng.normal(size=(n, dims))
    return x.astype(np.float32), y


def test_mahalanobis_separates_a_shifted_distribution_after_pca():
    x_train, y_train = _features(1500, 300)
    fam = fit_familiarity("mahalanobis", x_train, y_train, max_dims=64)
    g = fam.gaussians["features"]
    assert g.components is not None and g.components.shape == (64, 300)  # PCA to at most max_dims
    x_val, _ = _features(400, 300, seed=1)
    x_far, _ = _features(400, 300, shift=1.0, seed=2)
    near, far = fam.score(features=x_val), fam.score(features=x_far)
    auroc = roc_auc_score(np.r_[np.zeros(len(near)), np.ones(len(far))], np.r_[near, far])
    assert auroc > 0.95
    fam.set_threshold(near, 0.95)
    assert 0.95 <= np.mean(~fam.unfamiliar(near)) < 0.955
    assert np.mean(fam.unfamiliar(far)) > 0.8


def test_mahalanobis_is_the_distance_to_the_nearest_class_mean():
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    precision = np.diag([1.0, 4.0])
    x = np.array([[1.0, 0.0], [9.0, 1.0], [5.0, 0.0]])
    # first: 1 from class 0; second: sqrt(1 + 4) from class 1; third: 5 from either
    np.testing.assert_allclose(mahalanobis_distances(x, means, precision), [1.0, np.sqrt(5.0), 5.0])


def test_energy_is_minus_logsumexp_of_the_logits_and_needs_no_training():
    from scipy.special import logsumexp

    logits = np.random.default_rng(0).normal(0, 30, size=(50, 2))
    np.testing.assert_allclose(energy_score(logits), -logsumexp(logits, axis=1), rtol=1e-12)
    fam = fit_familiarity("energy")
    confident, unsure = np.array([[12.0, -3.0]]), np.array([[0.1, -0.1]])
    # a confident prediction (large logit) is familiar: lower energy
    assert fam.score(logits=confident)[0] < fam.score(logits=unsure)[0]
    assert fam.score_outputs({"logits": confident}) == pytest.approx(fam.score(logits=confident))
    assert fam.score_outputs({"features": np.zeros((1, 4))}) is None  # an output it does not read


@pytest.mark.parametrize("method", ["mahalanobis", "energy"])
def test_saved_model_reloads_to_identical_scores_in_a_small_file(tmp_path, method):
    x, y = _features(600, 1024)
    logits = np.random.default_rng(1).normal(size=(600, 2))
    fam = fit_familiarity(method, x, y)
    fam.set_threshold(fam.score(features=x, logits=logits))
    path = fam.save(tmp_path / "familiarity.safetensors")
    assert path.stat().st_size <= 8 * 1024 * 1024
    back = Familiarity.load(path)
    assert back.method == method and back.threshold == fam.threshold and back.quantile == 0.95
    x2, _ = _features(50, 1024, shift=0.5, seed=3)
    np.testing.assert_allclose(back.score(features=x2, logits=logits[:50]), fam.score(features=x2, logits=logits[:50]),
                               rtol=1e-4)  # fmt: skip  # stored as float32
    assert back.result(back.threshold + 1.0)["unfamiliar"] and not back.result(back.threshold)["unfamiliar"]


def test_bad_inputs_get_one_clear_line(tmp_path):
    with pytest.raises(InputError, match="unknown method"):
        fit_familiarity("knn")
    fam = fit_familiarity("mahalanobis", *_features(100, 16))
    with pytest.raises(InputError, match="another detector"):
        fam.score(features=np.zeros((2, 8)))
    with pytest.raises(InputError, match="threshold"):
        fam.save(tmp_path / "f.safetensors")  # no threshold set yet
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="not a usable familiarity model"):
        Familiarity.load(tmp_path / "bad.safetensors")


def _report(tmp_path, faces, heatmaps=None) -> str:
    from fakescope.api.results import Prediction
    from fakescope.explain.report import FaceExplanation, write_report

    pred = Prediction(source="face.jpg", kind="image", model="airl", model_source="run", threshold=0.5,
                      threshold_source="validation", faces=faces, score=max(f.score for f in faces),
                      label=faces[0].label, explained=list(range(len(faces))))  # fmt: skip
    exs = [FaceExplanation(crop=f.crop, heatmaps=heatmaps) for f in faces]
    return write_report(pred.report_data(), exs, tmp_path).read_text()


def test_report_shows_probability_familiarity_and_the_caution_only_for_an_unfamiliar_face(tmp_path):
    from fakescope.api.results import FaceResult
    from fakescope.inference.familiarity import CAUTION

    crop = np.full((32, 32, 3), 128, np.uint8)
    fam = Familiarity("energy", threshold=-2.0)
    near = FaceResult(0.8, "fake", crop=crop, probability=0.71, familiarity=fam.result(-3.5))
    far = FaceResult(0.3, "real", crop=crop, probability=0.22, familiarity=fam.result(-0.5))
    html = _report(tmp_path / "a", [near, far])
    assert html.count(CAUTION) == 1 and "calibrated P(fake)" in html
    assert "0.710" in html and "0.220" in html and "-0.500 (threshold -2.000): unfamiliar" in html
    assert "calibrated operating point" in html
    # no INR heatmaps in the report, so the footnote does not mention them; with heatmaps it does
    assert "INR" not in html
    plain = FaceResult(0.8, "fake", crop=crop)
    html = _report(tmp_path / "b", [plain], heatmaps=np.zeros((2, 8, 8), np.float32))
    assert "INR activations" in html and CAUTION not in html and "calibrated" not in html
    assert "probability" not in plain.to_dict() and "familiarity" not in plain.to_dict()
    assert far.to_dict()["familiarity"] == {"score": -0.5, "threshold": -2.0, "unfamiliar": True}
    assert far.to_dict()["note"] == CAUTION and "note" not in near.to_dict()


# ---- mahalanobis_layers: Lee et al.'s feature ensemble over the network's stages -----------------------


def _two_layer_outputs(
    n: int, seed: int, low_detail: bool = False
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Penultimate ``features`` and one early stage. ``low_detail`` inputs look typical to the
    penultimate features (the case the shipped detector met: video frames to a model trained on
    photographs) and are off only in the early stage."""
    feats, y = _features(n, 64, seed=seed)
    rng = np.random.default_rng(seed + 100)
    stage = rng.normal(size=(n, 24)) + y[:, None] * 0.5
    if low_detail:
        stage = 0.2 * stage + 2.0  # less texture energy, a shifted mean
    return {"features": feats, "pooled:backbone.blocks.0": stage.astype(np.float32)}, y


def test_layers_find_inputs_that_only_an_early_stage_sees_as_new(tmp_path):
    train, y = _two_layer_outputs(1200, 0)
    val, _ = _two_layer_outputs(300, 1)
    near, _ = _two_layer_outputs(300, 2)
    far, _ = _two_layer_outputs(300, 3, low_detail=True)
    truth = np.r_[np.zeros(300), np.ones(300)]

    penult = fit_familiarity("mahalanobis", train["features"], y)
    auroc_penult = roc_auc_score(truth, np.r_[penult.score(**near), penult.score(**far)])
    fam = fit_familiarity("mahalanobis_layers", labels=y, outputs=train)
    assert list(fam.gaussians) == ["pooled:backbone.blocks.0", "features"]  # stages first, then features
    assert fam.needs == ("pooled:backbone.blocks.0", "features") and fam.layers == ["backbone.blocks.0"]
    fam.standardise(val)
    for name, g in fam.gaussians.items():  # each layer's validation distances standardised to mean 0, sd 1
        z = g.standardised(val[name])
        assert abs(z.mean()) < 1e-9 and z.std() == pytest.approx(1.0)
    auroc_layers = roc_auc_score(truth, np.r_[fam.score_outputs(near), fam.score_outputs(far)])
    assert auroc_penult < 0.65 < 0.95 < auroc_layers, (auroc_penult, auroc_layers)

    fam.set_threshold(fam.score_outputs(val))
    back = Familiarity.load(fam.save(tmp_path / "familiarity.safetensors"))
    assert back.method == "mahalanobis_layers" and back.needs == fam.needs and back.threshold == fam.threshold
    np.testing.assert_allclose(back.score_outputs(far), fam.score_outputs(far), rtol=1e-4)
    assert back.score_outputs({"features": far["features"]}) is None  # a stage's output missing: no score
    with pytest.raises(InputError, match="needs the detector's pooled:backbone.blocks.0"):
        back.score(features=far["features"])


def test_pooled_outputs_hook_every_stage_of_airl_and_come_off_again():
    import torch

    from fakescope.config import load_config
    from fakescope.inference.familiarity import PooledOutputs, familiarity_layers
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector

    cfg = load_config(None, ["model.name=airl", "model.backbone=efficientnet_tiny", "model.pretrained=false",
                             "data.image_size=64"])  # fmt: skip
    det = build_detector(cfg.model, input_spec_for(cfg)).eval()
    layers = familiarity_layers(det)
    assert [n for n in layers if n.startswith("dct_stream.cnn.convs.")] == [
        f"dct_stream.cnn.convs.{i}" for i in range(3)
    ]
    assert any(n.startswith("backbone.") for n in layers)
    images = torch.rand(3, 3, 64, 64)
    hooks = PooledOutputs(det, layers)
    with torch.no_grad():
        out = det({"image": images})
        one = det({"image": images[:1]})
    for name in layers:
        pooled = out[f"pooled:{name}"]
        assert pooled.ndim == 2 and pooled.shape[0] == 3
        # each face's pooled output is its own: the same face alone gives the same vector
        torch.testing.assert_close(one[f"pooled:{name}"][0], pooled[0], rtol=1e-4, atol=1e-5)
    hooks.remove()
    with torch.no_grad():
        assert not any(k.startswith("pooled:") for k in det({"image": images}))
    with pytest.raises(ModelLoadError, match="no layer"):
        PooledOutputs(det, ["backbone.nothing.here"])


def test_each_thread_keeps_its_own_faces_familiarity():
    """`serve` scores several jobs through one detector at once: a face's familiarity and a forward
    pass's stage outputs belong to the thread that computed them, whatever another thread did between."""
    import threading

    import torch

    from fakescope.inference.calibration import RunExtras
    from fakescope.inference.familiarity import PooledOutputs

    fam = Familiarity("energy", threshold=0.0)
    extras = RunExtras(None, fam)

    def in_thread(fn):
        t = threading.Thread(target=fn)
        t.start()
        t.join()

    extras.keep({"logits": np.array([[5.0, 0.0]])})  # this thread's face: confident, familiar
    in_thread(lambda: extras.keep({"logits": np.array([[0.0, 0.0], [0.1, 0.0]])}))  # another job's faces
    ((_, mine),) = extras.per_face(np.array([0.5]))
    assert mine["score"] == pytest.approx(float(energy_score(np.array([[5.0, 0.0]]))[0]), abs=1e-6)

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1))
    hooks = PooledOutputs(net, ["0"])
    hooks._keeper("x")(None, None, torch.ones(1, 2, 3, 3))  # this thread's pass, half way
    in_thread(lambda: hooks._keeper("x")(None, None, torch.zeros(5, 2, 3, 3)))  # another thread's
    merged = hooks._merge(None, None, {})
    assert merged["pooled:x"].shape == (1, 2) and torch.all(merged["pooled:x"] == 1)
