"""A shared INR initialisation meta-learned on training faces (Reptile), and its resumable job.

Not in the paper: INFER (§3.3, supplementary A.4) fits every face from scratch. docs/design.md
("Fitting") allows a fixed seed or a learned initialisation file; every image still starts from the *same*
initialisation, so a unit of layer l keeps one meaning across images. The method is Reptile (Nichol
et al. 2018, "On first-order meta-learning algorithms"), which Tancik et al. (CVPR 2021, "Learned
initializations for optimizing coordinate-based neural representations") showed cuts the steps a
coordinate network needs on a class of images such as faces:

    repeat outer_steps times:
        draw images_per_step faces; fit each for inner_steps Adam steps from theta (one batch)
        theta += outer_lr * (mean of the fitted weights - theta)

The inner loop is :func:`fakescope.inr.fitting.fit_batch` itself (Adam at ``inner_lr``, full batch,
MSE, the configured target range), so the init is learned for the fit that will start from it.
Fits that start near a good solution want a smaller step than fits from a random init, so the file
records ``inner_lr`` and fitting with it should set ``inr.lr`` to that value (docs/inr.md).

The job writes a checkpoint (theta, meta-update count, RNG state) every ``checkpoint_every``
meta-updates; a killed run resumes from it and produces the same file as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from tqdm import tqdm

from fakescope.errors import InputError
from fakescope.inr.cache import image_key
from fakescope.inr.config import INIT_MATCHING_FIELDS, InrConfig, InrInitConfig
from fakescope.inr.engine import _targets, fit_resized, resize_for_inr
from fakescope.inr.fitting import fit_batch
from fakescope.inr.models import InrParams, coordinate_grid, init_params, save_init
from fakescope.inr.shipped import fit_lr
from fakescope.utils.hashing import config_hash

__all__ = ["LearnedInitSummary", "learn_init", "init_metadata"]


@dataclass
class LearnedInitSummary:
    """What ``learn_init`` did: meta-updates run now and before (resumed), wall time, and the
    hold-out check (mean steps to the target from the seeded and from the learned init)."""

    outer_steps: int
    resumed_from: int
    wall_seconds: float
    n_train_images: int
    holdout: dict

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def init_metadata(inr: InrConfig, init_cfg: InrInitConfig, n_images: int) -> dict[str, str]:
    """The safetensors metadata of a learned init: the INR fields it fits, and how it was learned."""
    fields = {k: getattr(inr, k) for k in INIT_MATCHING_FIELDS}
    return {
        "fakescope_learned_init": "1",
        "inr": json.dumps(fields, sort_keys=True),
        "resolution": str(inr.resolution),
        "inner_lr": repr(init_cfg.inner_lr),
        "learning": init_cfg.model_dump_json(),
        "n_images": str(n_images),
    }


def _state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state")


def _load_theta(path: Path, like: InrParams) -> tuple[InrParams, dict[str, str]]:
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    n = len(like.weights)
    weights = [tensors[f"layers.{i}.weight"][None] for i in range(n)]
    biases = [tensors[f"layers.{i}.bias"][None] for i in range(n)]
    return InrParams(weights, biases), meta


def _split_holdout(groups: Sequence[str], n_holdout: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices (learn, holdout): whole groups held out, so no identity is on both sides."""
    order = sorted(set(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(order)
    held: set[str] = set()
    count = 0
    for g in order:
        if count >= n_holdout:
            break
        held.add(g)
        count += sum(1 for x in groups if x == g)
    learn = [i for i, g in enumerate(groups) if g not in held]
    hold = [i for i, g in enumerate(groups) if g in held][:n_holdout]
    return learn, hold


def _holdout_check(
    images: list[np.ndarray], inr: InrConfig, theta: InrParams, inner_lr: float, device: torch.device
) -> dict:
    if not images:
        return {}
    # "seeded" means the seeded init, at the seeded init's own rate unless inr.lr is set, even if the
    # config names an init file (the shipped one by default).
    seeded_cfg = inr.model_copy(update={"init_file": None})
    seeded = fit_resized(images, seeded_cfg, device)
    learned = fit_resized(images, inr.model_copy(update={"lr": inner_lr}), device, theta.to(device))

    def stats(results: list) -> dict:
        recs = [r.record for r in results]
        return {"mean_steps": float(np.mean([r.steps for r in recs])),
                "mean_psnr": float(np.mean([r.final_psnr for r in recs])),
                "share_reached": float(np.mean([r.reached for r in recs]))}  # fmt: skip

    return {"n": len(images), "seeded_init": {"lr": fit_lr(seeded_cfg), **stats(seeded)},
            "learned_init": {"lr": inner_lr, **stats(learned)}}  # fmt: skip


def learn_init(
    images: Sequence[np.ndarray],
    groups: Sequence[str],
    inr: InrConfig,
    init_cfg: InrInitConfig,
    out: str | os.PathLike[str],
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    holdout: Sequence[np.ndarray] | None = None,
) -> LearnedInitSummary:
    """Meta-learn a shared initialisation from uint8 RGB face crops and write it to ``out``.

    ``holdout``: the faces of the hold-out check (``learn-inr-init`` passes validation-split faces;
    never test faces), all of ``images`` are then learned from. Without it, ``inr_init.holdout_images``
    faces are carved out of ``images`` by whole ``groups`` (one per image), so no identity is on both
    sides. Resumes from ``<out>.state`` when it exists and was made with the same settings.
    """
    out = Path(out)
    device = torch.device(device)
    if len(images) != len(groups):
        raise ValueError("one group per image")
    if holdout is None:
        learn_idx, hold_idx = _split_holdout(groups, init_cfg.holdout_images, seed)
        hold_images = [images[i] for i in hold_idx]
    else:
        learn_idx, hold_images = list(range(len(images))), list(holdout)
    learn_idx = learn_idx[: init_cfg.max_images]
    if len(learn_idx) < init_cfg.images_per_step:
        raise InputError(
            f"learn-inr-init needs at least inr_init.images_per_step={init_cfg.images_per_step} faces "
            f"outside the hold-out, got {len(learn_idx)}"
        )
    small = [resize_for_inr(images[i], inr.resolution) for i in learn_idx]
    held = [resize_for_inr(img, inr.resolution) for img in hold_images]
    # The faces themselves (not just their count) key the job: a checkpoint from another manifest
    # must not be resumed.
    # The hold-out faces count too: a finished file reports their check, which must be theirs.
    faces = config_hash([image_key(img) for img in small])
    held_faces = config_hash([image_key(img) for img in held])
    job = config_hash({"inr": inr.model_dump(mode="json"), "init": init_cfg.model_dump(mode="json"),
                       "seed": seed, "faces": faces, "holdout_faces": held_faces})  # fmt: skip
    meta = init_metadata(inr, init_cfg, len(small))
    meta["job"] = job

    if out.is_file():
        with safe_open(str(out), framework="pt") as fh:
            done_meta = fh.metadata() or {}
        if done_meta.get("job") == job:  # already learned with these settings: nothing to redo
            return LearnedInitSummary(init_cfg.outer_steps, init_cfg.outer_steps, 0.0, len(small),
                                      json.loads(done_meta.get("holdout", "{}")))  # fmt: skip

    theta = init_params(inr)
    rng = np.random.default_rng(seed)
    start_step = 0
    state = _state_path(out)
    if state.is_file():
        loaded, smeta = _load_theta(state, theta)
        if smeta.get("job") == job:
            theta, start_step = loaded, int(smeta["outer_step"])
            rng.bit_generator.state = json.loads(smeta["rng"])
    coords = coordinate_grid(inr.resolution, device)
    theta = theta.to(device)
    inner = inr.model_copy(
        update={"lr": init_cfg.inner_lr, "max_steps": init_cfg.inner_steps, "target_psnr": float("inf"),
                "bf16_warmup_margin_db": 0.0}
    )  # fmt: skip

    t0 = time.perf_counter()
    bar = tqdm(total=init_cfg.outer_steps, initial=start_step, desc=f"learn-inr-init {inr.resolution}px",
               unit="meta-step", disable=not progress)  # fmt: skip
    with bar:
        for step in range(start_step, init_cfg.outer_steps):
            pick = rng.choice(len(small), size=init_cfg.images_per_step, replace=False)
            tgt, _ = _targets([small[i] for i in pick], inr, device)
            fitted, records = fit_batch(tgt, theta, inner, coords)
            with torch.no_grad():
                for w, f in zip(theta.tensors(), fitted.tensors(), strict=True):
                    w.add_(init_cfg.outer_lr * (f.mean(dim=0, keepdim=True) - w))
            bar.update(1)
            bar.set_postfix(inner_psnr=f"{np.mean([r.final_psnr for r in records]):.2f}", refresh=False)
            done = step + 1
            if done % init_cfg.checkpoint_every == 0 or done == init_cfg.outer_steps:
                smeta = {**meta, "outer_step": str(done), "rng": json.dumps(rng.bit_generator.state)}
                save_init(theta.to("cpu"), state, smeta)
    wall = time.perf_counter() - t0
    theta = theta.to("cpu")
    holdout = _holdout_check(held, inr, theta, init_cfg.inner_lr, device)
    meta["holdout"] = json.dumps(holdout)
    save_init(theta, out, meta)
    state.unlink(missing_ok=True)
    return LearnedInitSummary(init_cfg.outer_steps, start_step, wall, len(small), holdout)
