"""Checkpoints: safetensors for tensors, JSON for everything else; never pickle (docs/design.md, "A run
directory"; docs/CONTRACTS.md "Runs and checkpoints").

A checkpoint named ``NAME`` in ``RUN/checkpoints/`` is:

- ``NAME.safetensors``: the detector's ``state_dict``;
- ``NAME.json``: the resolved config, detector name, epoch, step, validation metrics and the decision
  threshold chosen on the validation split, plus (``last`` only) the scalar resume state: scheduler,
  optimiser hyper-parameters, sampler position, early-stopping counters, Python RNG;
- ``NAME.state.safetensors`` (``last`` only): optimiser moments and the torch / numpy RNG states
  (:mod:`fakescope.train.state` builds and restores them; this module only stores them).

Every file is written atomically, the JSON last; each safetensors file carries the step in its
metadata, and loading checks it against the JSON, so a crash between two writes is detected instead
of resuming from a mixed state. The JSON also holds the SHA-256 of each safetensors file
(``weights_sha256``, ``state_sha256``), checked on load: a damaged weights file (bytes flipped inside a
tensor, the header intact) is refused with one line instead of scoring every input NaN. Checkpoints
written before the hash existed load without that check, but weights holding NaN or infinity are
refused either way.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import safe_open
from safetensors.torch import save as st_save

from fakescope.config import ExperimentConfig, config_from_dict
from fakescope.errors import FakescopeError, ModelLoadError
from fakescope.utils.atomic import atomic_write_bytes, atomic_write_json
from fakescope.utils.hashing import bytes_sha256

__all__ = [
    "FORMAT",
    "save_checkpoint",
    "read_checkpoint_meta",
    "load_model_state",
    "load_train_state",
    "resolve_checkpoint",
    "load_run_config",
    "load_detector",
]

FORMAT = "fakescope-checkpoint/1"

log = logging.getLogger(__name__)


def _tensors_to_bytes(tensors: dict[str, torch.Tensor], step: int) -> bytes:
    # clone(): tied / shared storages would make safetensors refuse the dict.
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return st_save(flat, metadata={"step": str(step), "format": FORMAT})


def _read_tensors(
    path: Path, expect_step: int | None, expect_sha256: str | None = None
) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        raw = path.read_bytes()
        data = st_load(raw)
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: cannot read safetensors file ({err})") from None
    if expect_step is not None and meta.get("step") != str(expect_step):
        raise ModelLoadError(
            f"{path}: holds step {meta.get('step')} but its JSON says step {expect_step} "
            "(interrupted while saving?); delete the checkpoint or resume from another"
        )
    if expect_sha256 is not None and bytes_sha256(raw) != expect_sha256:
        raise ModelLoadError(
            f"{path}: damaged weights file (its SHA-256 differs from the one recorded in "
            f"{path.name.removesuffix('.safetensors')}.json when it was saved); restore it from a copy"
        )
    return data


def _check_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    """Weights holding NaN or infinity score every input NaN: refuse them at load time."""
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ModelLoadError(f"{path}: damaged weights: tensor {key} holds NaN or infinite values")


def save_checkpoint(
    ckpt_dir: str | os.PathLike[str],
    name: str,
    *,
    model: torch.nn.Module,
    cfg: ExperimentConfig,
    detector_name: str,
    epoch: int,
    step: int,
    val_metrics: dict[str, Any] | None = None,
    val_threshold: float | dict[str, float] | None = None,
    resume: dict[str, Any] | None = None,
    state_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``NAME.safetensors`` (+ ``NAME.state.safetensors`` holding ``state_tensors`` when given)
    and ``NAME.json``. ``resume`` holds the JSON-able scalars needed to continue training
    (:func:`fakescope.train.state.training_state` builds both)."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    weights = _tensors_to_bytes(model.state_dict(), step)
    atomic_write_bytes(ckpt_dir / f"{name}.safetensors", weights)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "detector": detector_name,
        "epoch": int(epoch),
        "step": int(step),
        "val_metrics": val_metrics or {},
        "val_threshold": val_threshold,
        "config": cfg.model_dump(mode="json"),
        "weights_sha256": bytes_sha256(weights),
    }
    if state_tensors is not None:
        state_bytes = _tensors_to_bytes(state_tensors, step)
        atomic_write_bytes(ckpt_dir / f"{name}.state.safetensors", state_bytes)
        meta["state_sha256"] = bytes_sha256(state_bytes)
    if resume is not None:
        meta["resume"] = resume
    atomic_write_json(ckpt_dir / f"{name}.json", meta)
    return ckpt_dir / f"{name}.json"


def resolve_checkpoint(run_dir_or_checkpoint: str | os.PathLike[str], prefer: str = "best") -> Path:
    """The ``.json`` of a checkpoint given a run directory, its ``checkpoints/`` folder, or a
    checkpoint's ``.json`` / ``.safetensors`` file."""
    p = Path(run_dir_or_checkpoint)
    if not p.exists():
        raise ModelLoadError(f"{p}: no such run directory or checkpoint")
    if p.is_file():
        if p.suffix == ".json":
            return p
        if p.name.endswith(".safetensors"):
            j = p.with_name(p.name.removesuffix(".safetensors") + ".json")
            if j.is_file():
                return j
            raise ModelLoadError(f"{p}: its metadata file {j.name} is missing")
        raise ModelLoadError(f"{p}: not a checkpoint (.json or .safetensors)")
    for folder in (p / "checkpoints", p):
        for name in (prefer, "best", "last"):
            j = folder / f"{name}.json"
            if j.is_file():
                return j
    raise ModelLoadError(f"{p}: no checkpoints/best.json or checkpoints/last.json (was training run here?)")


def read_checkpoint_meta(json_path: str | os.PathLike[str]) -> dict[str, Any]:
    json_path = Path(json_path)
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{json_path}: unreadable checkpoint metadata ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelLoadError(f"{json_path}: not a fakescope checkpoint (format {meta.get('format')!r})")
    return meta


def load_model_state(json_path: str | os.PathLike[str], meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    json_path = Path(json_path)
    st = json_path.with_name(json_path.name.removesuffix(".json") + ".safetensors")
    if not st.is_file():
        raise ModelLoadError(f"{st}: weights file missing")
    state = _read_tensors(st, int(meta["step"]), meta.get("weights_sha256"))
    _check_finite(state, st)
    if meta.get("weights_sha256") is None:
        # Saved before checkpoints recorded a hash: say that damage inside a tensor would go unnoticed.
        log.warning("%s: saved without a weights hash (an older fakescope), so damaged bytes inside its "
                    "tensors cannot be detected; only NaN/inf weights are refused", st)  # fmt: skip
    return state


def load_train_state(json_path: str | os.PathLike[str], meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    json_path = Path(json_path)
    st = json_path.with_name(json_path.name.removesuffix(".json") + ".state.safetensors")
    if "resume" not in meta or not st.is_file():
        raise ModelLoadError(f"{json_path}: holds no resume state (only checkpoints/last has it)")
    return _read_tensors(st, int(meta["step"]), meta.get("state_sha256"))


def load_state_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with one clear line when the keys or shapes do not match."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad_shape:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", bad_shape)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise ModelLoadError(f"{source}: weights do not fit this detector: {', '.join(parts)}")
    model.load_state_dict(state, strict=True)


def _upgrade_saved_config(raw: dict[str, Any]) -> dict[str, Any]:
    """Fill fields that a config saved by an older fakescope lacks with the value that older code used,
    not today's default, so an old run scores as it was trained. ``model.dct_input_scale`` (added with
    the AIRL DCT-scale fix) was effectively 1.0 before it existed; ``inr.first_layer_map`` (added with
    the layer-1 map fix) was effectively ``same`` (PCA for every layer); ``inr.init_file`` and ``inr.lr``
    were the seeded init at 3e-3 before the shipped learned init became the default."""
    model = dict(raw.get("model") or {})
    if "dct_input_scale" not in model:
        model["dct_input_scale"] = 1.0
    upgraded = {**raw, "model": model}
    if isinstance(raw.get("inr"), dict):
        inr = dict(raw["inr"])
        inr.setdefault("first_layer_map", "same")
        inr.setdefault("init_file", None)
        inr.setdefault("lr", 3e-3)
        upgraded["inr"] = inr
    return upgraded


def load_run_config(
    run_dir_or_checkpoint: str | os.PathLike[str], prefer: str = "best"
) -> tuple[Path, ExperimentConfig, dict[str, Any]]:
    """A checkpoint's JSON path, the config it was trained with and its meta, without building the
    detector or reading its weights (:func:`load_detector` does both). Raises :class:`ModelLoadError`
    for a missing run, unreadable metadata, a config that no longer validates or names another
    detector than the weights."""
    json_path = resolve_checkpoint(run_dir_or_checkpoint, prefer)
    meta = read_checkpoint_meta(json_path)
    try:
        cfg = config_from_dict(_upgrade_saved_config(meta["config"]), str(json_path))
    except FakescopeError as err:
        raise ModelLoadError(f"{json_path}: its saved config no longer validates: {err}") from None
    if cfg.model.name != meta.get("detector"):
        raise ModelLoadError(
            f"{json_path}: config names detector {cfg.model.name!r} but the weights are {meta.get('detector')!r}"
        )
    return json_path, cfg, meta


def load_detector(
    run_dir_or_checkpoint: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    prefer: str = "best",
) -> tuple[torch.nn.Module, ExperimentConfig, dict[str, Any]]:
    """Rebuild the detector a run trained and load its weights (``best`` by default).

    Returns ``(detector in eval mode on device, its ExperimentConfig, checkpoint meta)``. The detector
    is built without fetching pretrained weights: the checkpoint supplies every trained tensor.
    Raises :class:`ModelLoadError` for a missing run, unreadable files or weights that belong to another
    detector.
    """
    from fakescope.inference.precision import apply_amp_policy
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector

    json_path, cfg, meta = load_run_config(run_dir_or_checkpoint, prefer)
    detector = build_detector(cfg.model.model_copy(update={"pretrained": False}), input_spec_for(cfg))
    load_state_into(detector, load_model_state(json_path, meta), str(json_path))
    apply_amp_policy(detector, cfg.train)  # the layers the run kept in float32 under autocast
    detector.to(torch.device(device)).eval()
    return detector, cfg, meta
