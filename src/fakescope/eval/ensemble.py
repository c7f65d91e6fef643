"""Ensembles of detectors: the mean of their calibrated log-odds, with the members chosen on validation.

Detectors built on different evidence (RGB appearance, the block-DCT spectrum, SRM noise residuals,
NPR's up-sampling traces) may fail on different images, so their mean can rank better than any one
of them. Their raw scores are not on one scale: one detector's P(fake) = 0.9 may mean what another's
0.6 means. Each member's log-odds are therefore first divided by its own temperature, fitted on the
validation split (Guo et al., ICML 2017, §4.2), and only then averaged; ``sigmoid`` of the mean is the
ensemble's P(fake). The mean of calibrated log-odds is a product of experts' odds, the simplest
combination that needs no second-stage training.

Which members to keep is chosen on validation only: every subset's AUC on the validation images; a
larger subset replaces a smaller one only when its paired bootstrap interval against it lies above
zero, so a member that adds only noise stays out. Nothing here reads a test image.

:func:`build_ensemble_run` turns trained runs into one run of the ``ensemble`` detector
(:class:`fakescope.models.ensemble.LogitEnsemble`, the same combination as a module), with the
temperatures fitted on the members' validation split, so ``detect``, ``serve``, ``calibrate`` and
``evaluate`` use it as they use any run.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.errors import InputError
from fakescope.eval.calibration import fit_temperature
from fakescope.eval.metrics import auc, paired_bootstrap_auc_difference
from fakescope.inference.calibration import score_logit

__all__ = ["EnsembleChoice", "build_ensemble_run", "choose_members", "combine", "fit_temperatures"]

#: What :func:`build_ensemble_run` writes beside the checkpoint: the members, their temperatures and
#: the validation evidence.
ENSEMBLE_FILE = "ensemble.json"


def _aligned(scores: Mapping[str, Sequence[float] | np.ndarray], labels: Sequence[int] | np.ndarray):
    y = np.asarray(labels, dtype=np.int64).ravel()
    if not scores:
        raise InputError("an ensemble needs at least one member")
    out = {name: np.asarray(s, dtype=np.float64).ravel() for name, s in scores.items()}
    for name, s in out.items():
        if s.shape != y.shape:
            raise InputError(f"ensemble member {name!r} scores {s.size} images, the labels {y.size}")
    return out, y


def fit_temperatures(
    scores: Mapping[str, Sequence[float] | np.ndarray], labels: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """Each member's temperature, fitted on the same validation images (``scores``: P(fake) per member)."""
    s, y = _aligned(scores, labels)
    return {name: fit_temperature(v, y) for name, v in s.items()}


def combine(
    scores: Mapping[str, Sequence[float] | np.ndarray], temperatures: Mapping[str, float]
) -> np.ndarray:
    """The ensemble's P(fake): ``sigmoid(mean_m logit(p_m) / T_m)`` over the members in ``scores``."""
    missing = [m for m in scores if m not in temperatures]
    if missing:
        raise InputError(f"ensemble member {missing[0]!r} has no fitted temperature")
    z = np.mean([score_logit(v) / float(temperatures[m]) for m, v in scores.items()], axis=0)
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class EnsembleChoice:
    """What :func:`choose_members` chose, and the validation evidence for it."""

    members: tuple[str, ...]
    temperatures: dict[str, float]
    val_auc: dict[str, float] = field(default_factory=dict)  # "a+b" -> val AUC, every subset tried
    best_single: str = ""
    vs_best_single: dict[str, float] = field(default_factory=dict)  # paired val difference, chosen - single

    @property
    def name(self) -> str:
        return "+".join(self.members)

    def predict(self, scores: Mapping[str, Sequence[float] | np.ndarray]) -> np.ndarray:
        """The chosen ensemble's P(fake) on new images (``scores`` must hold every chosen member)."""
        missing = [m for m in self.members if m not in scores]
        if missing:
            raise InputError(f"the ensemble {self.name} needs scores from {missing[0]!r}")
        return combine({m: scores[m] for m in self.members}, self.temperatures)

    def as_dict(self) -> dict:
        return {"members": list(self.members), "temperatures": self.temperatures, "val_auc": self.val_auc,
                "best_single": self.best_single, "vs_best_single": self.vs_best_single}  # fmt: skip


def choose_members(
    scores: Mapping[str, Sequence[float] | np.ndarray],
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[str] | None = None,
    *,
    bootstrap: int = 2000,
    seed: int = 0,
) -> EnsembleChoice:
    """Fit each member's temperature on these validation images and score every non-empty subset of the
    members by validation AUC. Start from the best single member; then, size by size, the best subset
    of the next size replaces the current choice only when its paired bootstrap interval over ``groups``
    (e.g. source videos) lies above zero against it. A member that merely adds noise can raise a
    validation AUC by chance; it does not get in this way. With ``bootstrap=0`` the point estimate
    decides. ``vs_best_single``: the chosen subset minus the best single member, paired."""
    s, y = _aligned(scores, labels)
    temps = fit_temperatures(s, y)
    names = list(s)
    val_auc: dict[str, float] = {}
    best_of_size: list[tuple[str, ...]] = []
    for k in range(1, len(names) + 1):
        top: tuple[str, ...] = ()
        for subset in itertools.combinations(names, k):
            val_auc["+".join(subset)] = auc(y, combine({m: s[m] for m in subset}, temps))
            if not top or val_auc["+".join(subset)] > val_auc["+".join(top)]:
                top = subset
        best_of_size.append(top)

    def paired(a: tuple[str, ...], b: tuple[str, ...]) -> dict[str, float]:
        sa, sb = (combine({m: s[m] for m in x}, temps) for x in (a, b))
        d = paired_bootstrap_auc_difference(y, sa, sb, groups=groups, n=bootstrap, seed=seed)
        return {k: float(v) for k, v in d.items()}

    single = best_of_size[0]
    chosen = single
    for candidate in best_of_size[1:]:
        d = paired(candidate, chosen)
        if (d["ci_low"] > 0) if bootstrap > 0 else (d["difference"] > 0):
            chosen = candidate
    return EnsembleChoice(members=chosen, temperatures=temps, val_auc=val_auc, best_single=single[0],
                          vs_best_single=paired(chosen, single))  # fmt: skip


def build_ensemble_run(
    runs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    manifest: str | os.PathLike[str] | None = None,
    split: str = "val",
    device: str = "auto",
    data_root: str | os.PathLike[str] | None = None,
    bootstrap: int = 1000,
    progress: bool = False,
) -> dict[str, Any]:
    """Write ``out`` as a run of the ``ensemble`` detector made of the trained ``runs`` (their best
    checkpoints), and return its summary (also written to ``out/ensemble.json``).

    Each member scores the ``split`` rows of ``manifest`` (default: the first run's training manifest,
    whose val split is every member's own when they trained on it); each member's temperature is fitted
    there, the ensemble's threshold is chosen there as training chooses it, and its val AUC is compared
    with every member's, paired over source videos. The members must crop faces alike (the same
    ``data.image_size`` and ``preprocess`` section) and read the face crop alone. Nothing is written
    when a check fails, and an existing run in ``out`` is never overwritten."""
    from fakescope.eval.calibrate import score_split
    from fakescope.eval.metrics import choose_thresholds
    from fakescope.inference.checkpoint import (
        load_model_state,
        load_run_config,
        load_state_into,
        save_checkpoint,
    )
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.config import ModelConfig
    from fakescope.models.registry import build_detector
    from fakescope.utils.atomic import atomic_write_json
    from fakescope.utils.schema import json_safe

    out = Path(out)
    if len(runs) < 2:
        raise InputError(f"an ensemble needs at least two runs, got {len(runs)}")
    if (out / "checkpoints").exists():
        raise InputError(f"{out}: already holds a run (checkpoints/); choose another --out")
    loaded = [load_run_config(r) for r in runs]
    base = loaded[0][1]
    for r, (_, cfg, _) in zip(runs[1:], loaded[1:], strict=True):
        if cfg.data.image_size != base.data.image_size:
            raise InputError(
                f"{r}: crops faces at {cfg.data.image_size} px, {runs[0]} at {base.data.image_size} px; "
                "an ensemble's members must read the same crop"
            )
        if cfg.preprocess != base.preprocess:
            raise InputError(f"{r}: aligns faces with other preprocess settings than {runs[0]}")
    # Build the ensemble first (temperatures set below): a member it cannot hold is refused before
    # any face is scored.
    model = ModelConfig(name="ensemble", pretrained=False, members=[cfg.model for _, cfg, _ in loaded],
                        member_temperatures=[1.0] * len(loaded))  # fmt: skip
    cfg = base.model_copy(
        update={"model": model, "name": "ensemble-" + "+".join(c.model.name for _, c, _ in loaded)}
    )
    detector = build_detector(model, input_spec_for(cfg))
    manifest = manifest if manifest is not None else base.data.manifest
    scored = [score_split(r, manifest, split, device=device, data_root=data_root, progress=progress)
              for r in runs]  # fmt: skip
    rows0 = scored[0][0]
    for r, (rows, _) in zip(runs[1:], scored[1:], strict=True):
        if [x.path for x in rows] != [x.path for x in rows0]:
            raise InputError(
                f"{r}: its {split} split of {manifest} holds other faces than {runs[0]}'s "
                "(another data.split seed or ratio?): the temperatures need the same faces"
            )
    names = [f"{i}:{cfg.model.name}" for i, (_, cfg, _) in enumerate(loaded)]
    labels = np.asarray(scored[0][1].labels, dtype=np.int64)
    videos = scored[0][1].videos
    member_scores = {
        n: np.asarray(s.scores, dtype=np.float64) for n, (_, s) in zip(names, scored, strict=True)
    }
    temps = fit_temperatures(member_scores, labels)
    ens_scores = combine(member_scores, temps)

    model.member_temperatures = [temps[n] for n in names]
    detector.temperatures = list(model.member_temperatures)
    state = {f"members.{i}.{k}": v for i, (j, _, meta) in enumerate(loaded)
             for k, v in load_model_state(j, meta).items()}  # fmt: skip
    load_state_into(detector, state, str(out))
    thresholds = choose_thresholds(labels, ens_scores, videos, cfg.train.threshold_rule)
    val_auc = auc(labels, ens_scores)
    summary: dict[str, Any] = {
        "members": [{"run": str(Path(r).resolve()), "detector": cfg_.model.name, "temperature": temps[n],
                     "val_auc": auc(labels, member_scores[n]),
                     "ensemble_minus_member": {k: float(v) for k, v in paired_bootstrap_auc_difference(
                         labels, ens_scores, member_scores[n], groups=videos, n=bootstrap).items()}}
                    for r, (_, cfg_, _), n in zip(runs, loaded, names, strict=True)],
        "manifest": str(manifest), "split": split, "n_val": int(labels.size), "val_auc": val_auc,
        "val_threshold": thresholds,
    }  # fmt: skip
    save_checkpoint(out / "checkpoints", "best", model=detector, cfg=cfg, detector_name="ensemble", epoch=0,
                    step=0, val_metrics={"auc": val_auc}, val_threshold=thresholds)  # fmt: skip
    atomic_write_json(out / ENSEMBLE_FILE, json_safe(summary))  # --bootstrap 0: no interval (null)
    return summary
