"""Mixed precision (``train.amp``) with ``train.amp_fp32_depthwise``: under bf16 autocast the depthwise
convolutions run in float32 and the dense ones in bf16, in training, in its validation and after
``load_detector``, so a face gets one score from each. Real DFDC faces (``face_set``); no timings (the
speed is in ``benchmarks/train_speed.py --variants new new-bf16 new-bf16-all``)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from torch import nn

from fakescope.config import load_config
from fakescope.data.dataset import FaceDataset, collate_batch
from fakescope.data.manifest import read_manifest
from fakescope.inference.checkpoint import load_detector
from fakescope.inference.precision import apply_amp_policy, keep_depthwise_fp32
from fakescope.inference.predict import predict_batch
from fakescope.inference.spec import input_spec_for
from fakescope.models.registry import build_detector
from fakescope.train.trainer import train
from test_train import TINY, small_manifest


def _conv_output_dtypes(det: nn.Module, x: torch.Tensor) -> dict[str, list[torch.dtype]]:
    seen: dict[str, list[torch.dtype]] = {"grouped": [], "dense": []}
    hooks = [
        m.register_forward_hook(
            lambda mod, _i, out: seen["grouped" if mod.groups > 1 else "dense"].append(out.dtype)
        )
        for m in det.modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        det({"image": x})
    for h in hooks:
        h.remove()
    return seen


def test_depthwise_convolutions_run_in_float32_under_autocast_and_the_weights_do_not_change():
    cfg = load_config(None, TINY)
    det = build_detector(cfg.model, input_spec_for(cfg)).eval()
    x = torch.rand(2, 3, 32, 32)
    before = _conv_output_dtypes(det, x)
    assert before["grouped"] and set(before["grouped"]) == {torch.bfloat16}  # autocast's default
    state = {k: v.clone() for k, v in det.state_dict().items()}
    n = keep_depthwise_fp32(det)
    assert n == len(before["grouped"]) and keep_depthwise_fp32(det) == n  # idempotent
    after = _conv_output_dtypes(det, x)
    assert set(after["grouped"]) == {torch.float32}
    assert set(after["dense"]) == {torch.bfloat16}  # the dense convolutions still autocast
    assert det.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in det.state_dict().items())


def test_without_autocast_the_policy_changes_no_output():
    """In float32 the policy is invisible: the same outputs bit for bit, including through convolutions
    that pad in their own forward (the stride-2 depthwise ``Conv2dSame`` layers of the real Lite0)."""
    cfg = load_config(None, ["model.name=airl", "model.backbone=lite0", "model.pretrained=false",
                             "data.image_size=64"])  # fmt: skip
    det = build_detector(cfg.model, input_spec_for(cfg)).eval()
    assert any(type(m) is not nn.Conv2d and m.groups > 1 for m in det.modules() if isinstance(m, nn.Conv2d))
    x = {"image": torch.rand(2, 3, 64, 64)}
    with torch.no_grad():
        want = det(x)["logits"]
        keep_depthwise_fp32(det)
        got = det(x)["logits"]
    assert torch.equal(got, want)


def test_the_policy_applies_only_to_runs_that_autocast():
    cfg = load_config(None, TINY)
    det = build_detector(cfg.model, input_spec_for(cfg)).eval()
    assert apply_amp_policy(det, cfg.train) == 0
    assert set(_conv_output_dtypes(det, torch.rand(1, 3, 32, 32))["grouped"]) == {torch.bfloat16}
    off = load_config(None, [*TINY, "train.amp=true", "train.amp_fp32_depthwise=false"])
    assert apply_amp_policy(det, off.train) == 0
    on = load_config(None, [*TINY, "train.amp=true"])
    assert apply_amp_policy(det, on.train) > 0


@pytest.mark.slow
def test_an_amp_run_trains_and_scores_a_face_the_same_after_loading(face_set, tmp_path):
    manifest = small_manifest(face_set, tmp_path / "data", groups=24)
    cfg = load_config(None, [*TINY, f"data.manifest={manifest}", "train.epochs=1", "train.batch_size=8",
                             "train.amp=true"])  # fmt: skip
    train(cfg, tmp_path / "run")
    with open(tmp_path / "run" / "steps.csv", newline="") as fh:
        losses = [float(r["loss"]) for r in csv.DictReader(fh)]
    assert losses and all(math.isfinite(v) for v in losses)

    rows = read_manifest(manifest)[:8]
    ds = FaceDataset(rows, 32)
    batch = collate_batch([ds[i] for i in range(len(rows))])
    loaded, run_cfg, _ = load_detector(tmp_path / "run", "cpu")
    assert run_cfg.train.amp and run_cfg.train.amp_fp32_depthwise
    # The detector as the trainer validated it: built, the run's weights, the policy applied in set-up.
    trained = build_detector(run_cfg.model.model_copy(update={"pretrained": False}), input_spec_for(run_cfg))
    trained.load_state_dict(loaded.state_dict())
    apply_amp_policy(trained, run_cfg.train)
    cpu = torch.device("cpu")
    got = predict_batch(loaded, batch, cpu, amp=True)["logits"]
    want = predict_batch(trained, batch, cpu, amp=True)["logits"]
    assert torch.equal(got, want)
    # Without the policy the same weights give other scores: the check above can fail.
    plain = build_detector(run_cfg.model.model_copy(update={"pretrained": False}), input_spec_for(run_cfg))
    plain.load_state_dict(loaded.state_dict())
    assert not np.allclose(predict_batch(plain, batch, cpu, amp=True)["logits"].numpy(), got.numpy(), atol=0)


def test_training_with_amp_on_a_cpu_without_native_bf16_warns(face_set, tmp_path, monkeypatch):
    import fakescope.train.setup as setup

    monkeypatch.setattr(setup, "cpu_has_native_bf16", lambda: False)
    manifest = small_manifest(face_set, tmp_path / "data", groups=8)
    cfg = load_config(None, [*TINY, f"data.manifest={manifest}", "train.epochs=1", "train.batch_size=8",
                             "train.max_steps_per_epoch=1", "train.amp=true"])  # fmt: skip
    with pytest.warns(UserWarning, match="no native bf16.*leave train.amp off"):
        train(cfg, tmp_path / "run")
