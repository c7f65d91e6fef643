"""Synthetic fakes (``train.synthetic_fakes``): a split's real faces, each blended with a transformed
copy of itself, train (and with ``train.synthetic_val`` select) a detector without any real fake."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fakescope.config import ExperimentConfig
from fakescope.data.manifest import ManifestRow
from fakescope.data.synthetic import SyntheticFakes
from fakescope.errors import InputError
from fakescope.rows.landmarks import Landmarks, synthetic_landmarks
from fakescope.rows.rowset import RowSet

__all__ = ["SyntheticPlan", "plan_synthetic_fakes", "reals"]


def reals(rows: list[ManifestRow]) -> list[ManifestRow]:
    return [r for r in rows if r.label == 0]


@dataclass
class SyntheticPlan:
    """The fakes each split makes from its real faces (``None``: that split has none) and the landmarks
    their blend masks follow."""

    train: SyntheticFakes | None = None
    val: SyntheticFakes | None = None
    landmarks: Landmarks = field(default_factory=lambda: Landmarks({}))


def plan_synthetic_fakes(cfg: ExperimentConfig, run: Path, rows: RowSet, progress: bool) -> SyntheticPlan:
    """The train split's real faces as fakes (another seed for the val split's, with
    ``train.synthetic_val``); an empty plan when ``train.synthetic_fakes`` is null."""
    tc = cfg.train
    if tc.synthetic_fakes is None:
        return SyntheticPlan()
    train_rows, val_rows = rows.splits["train"], rows.splits["val"]
    marks = synthetic_landmarks(
        cfg, run, reals(train_rows) + (reals(val_rows) if tc.synthetic_val else []), progress
    )

    def fakes(split_rows: list[ManifestRow], seed: int) -> SyntheticFakes:
        real = reals(split_rows)
        if len(real) < 2:
            raise InputError(f"train.synthetic_fakes needs real faces in every split (got {len(real)})")
        return SyntheticFakes(
            tc.synthetic_fakes, [r.path for r in real], [r.group for r in real], landmarks=marks.by_path,
            face_layout=tc.synthetic_face_layout, seed=seed, sbi_augment=tc.sbi_augment,
        )  # fmt: skip

    train = fakes(train_rows, cfg.seed)
    return SyntheticPlan(train, fakes(val_rows, cfg.seed + 1) if tc.synthetic_val else None, marks)
