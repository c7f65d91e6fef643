"""Familiarity: how far a face lies from the data a detector was trained on ("is this input like the
training data?"), so that a score on an input unlike anything in training is flagged, never hidden.

Two scores, both read from one forward pass (``output_dict``: ``features`` and ``logits``), both with
**higher = farther from the training data**:

- ``mahalanobis``: the class-conditional Mahalanobis distance with one covariance shared by the classes
  (Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial
  Attacks", NeurIPS 2018, §2, Eq. 2), the distance to the nearest class mean (their confidence score is
  its negative). It is fitted on the penultimate ``features`` of the **training** split (a seeded
  subsample keeps it cheap), optionally projected by PCA to at most 256 dimensions first, with the
  covariance shrunk by Ledoit & Wolf (J. Multivariate Analysis, 2004) so that it stays invertible
  with fewer faces than dimensions;
- ``energy``: the free energy ``E(x) = -logsumexp(logits)`` (Liu et al., "Energy-based
  Out-of-distribution Detection", NeurIPS 2020, §2-3, with T = 1): training lowers it on
  in-distribution inputs, so it is already "higher = farther". It needs nothing fitted but its
  threshold.

The threshold is the ``quantile`` (default 0.95) of the scores of the **validation** faces: 95 % of
them count as familiar, and a face scoring above it is ``unfamiliar``. The model is stored as
``RUN/familiarity.safetensors``: tensors plus metadata (method, threshold, quantile, dimensions); no
pickle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.errors import InputError, ModelLoadError
from fakescope.utils.atomic import atomic_write_bytes

__all__ = [
    "CAUTION",
    "FAMILIARITY_FILE",
    "FORMAT",
    "METHODS",
    "Familiarity",
    "energy_score",
    "fit_familiarity",
    "mahalanobis_distances",
]

FAMILIARITY_FILE = "familiarity.safetensors"
FORMAT = "fakescope-familiarity/1"
METHODS = ("mahalanobis", "energy")
#: the caution shown beside the score of an unfamiliar face (the score itself is still shown)
CAUTION = "unfamiliar input: images like this were not in training; treat the score with caution"


def energy_score(logits: Any) -> np.ndarray:
    """``-logsumexp(logits)`` per row (Liu et al., NeurIPS 2020, §2, T = 1), computed stably."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise InputError(f"energy: logits must be N x C, got shape {z.shape}")
    m = z.max(axis=1, keepdims=True)
    return -(m[:, 0] + np.log(np.exp(z - m).sum(axis=1)))


def mahalanobis_distances(x: np.ndarray, class_means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """``min_c sqrt((x - mu_c)^T P (x - mu_c))`` per row of ``x`` (Lee et al., NeurIPS 2018, Eq. 2)."""
    best = None
    for mu in class_means:
        d = x - mu
        sq = np.einsum("ij,jk,ik->i", d, precision, d)
        best = sq if best is None else np.minimum(best, sq)
    assert best is not None
    return np.sqrt(np.maximum(best, 0.0))


@dataclass
class Familiarity:
    """A fitted familiarity model. For ``mahalanobis``: the PCA ``mean`` and ``components`` (``None``
    when the features are used as they are), the class means and the shared precision matrix in the
    projected space. ``threshold`` is ``nan`` until :meth:`set_threshold`."""

    method: str
    threshold: float = float("nan")
    quantile: float = 0.95
    mean: np.ndarray | None = None
    components: np.ndarray | None = None
    class_means: np.ndarray | None = None
    precision: np.ndarray | None = None
    info: dict[str, str] = field(default_factory=dict)

    @property
    def needs(self) -> str:
        """The detector output this method reads: ``features`` or ``logits``."""
        return "features" if self.method == "mahalanobis" else "logits"

    def project(self, features: Any) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise InputError(f"familiarity: features must be N x D, got shape {x.shape}")
        if self.components is None:
            return x
        assert self.mean is not None
        return (x - self.mean) @ self.components.T.astype(np.float64)

    def score(self, features: Any = None, logits: Any = None) -> np.ndarray:
        """Per face, higher = farther from the training data."""
        if self.method == "energy":
            if logits is None:
                raise InputError("familiarity (energy): needs the detector's logits")
            return energy_score(logits)
        if features is None:
            raise InputError("familiarity (mahalanobis): needs the detector's features")
        assert self.class_means is not None and self.precision is not None
        x = self.project(features)
        if x.shape[1] != self.class_means.shape[1]:
            raise InputError(
                f"familiarity: features have {x.shape[1]} dimensions after projection, the model "
                f"{self.class_means.shape[1]}; it was fitted for another detector"
            )
        return mahalanobis_distances(
            x, self.class_means.astype(np.float64), self.precision.astype(np.float64)
        )

    def score_outputs(self, outputs: Mapping[str, Any]) -> np.ndarray | None:
        """:meth:`score` of a forward pass's outputs (tensors or arrays); ``None`` when the output it
        needs is missing (an ONNX export carries logits but no features)."""
        value = outputs.get(self.needs)
        if value is None:
            return None
        arr = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        return self.score(**{self.needs: arr})

    def set_threshold(self, val_scores: Any, quantile: float = 0.95) -> float:
        """The ``quantile`` of the validation faces' scores, the smallest score with at least that share
        of them at or below it (the inverted empirical CDF): at least that share count as familiar."""
        s = np.asarray(val_scores, dtype=np.float64)
        s = s[np.isfinite(s)]
        if s.size == 0:
            raise InputError("familiarity: no finite validation score to set the threshold on")
        if not 0.0 < quantile <= 1.0:
            raise InputError(f"familiarity: quantile must be in (0, 1], got {quantile}")
        self.quantile = float(quantile)
        self.threshold = float(np.quantile(s, quantile, method="inverted_cdf"))
        return self.threshold

    def unfamiliar(self, scores: Any) -> np.ndarray:
        return np.asarray(scores, dtype=np.float64) > self.threshold

    def result(self, score: float) -> dict[str, Any]:
        """One face's ``familiarity`` field: ``{score, threshold, unfamiliar}``."""
        return {"score": round(float(score), 6), "threshold": round(self.threshold, 6),
                "unfamiliar": bool(score > self.threshold)}  # fmt: skip

    # -- file ----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model atomically as safetensors (float32 tensors, metadata strings)."""
        from safetensors.numpy import save

        if not np.isfinite(self.threshold):
            raise InputError("familiarity: set the threshold on validation scores before saving")
        tensors = {"threshold": np.asarray([self.threshold], dtype=np.float64)}
        for name in ("mean", "components", "class_means", "precision"):
            value = getattr(self, name)
            if value is not None:
                tensors[name] = np.ascontiguousarray(value, dtype=np.float32)
        dims = self.class_means.shape[1] if self.class_means is not None else 0
        in_dims = self.components.shape[1] if self.components is not None else dims
        meta = {**self.info, "format": FORMAT, "method": self.method, "threshold": repr(self.threshold),
                "quantile": repr(self.quantile), "input_dims": str(in_dims), "dims": str(dims)}  # fmt: skip
        atomic_write_bytes(path, save(tensors, metadata=meta))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Familiarity:
        """Read :meth:`save`'s file; one-line :class:`ModelLoadError` for anything else."""
        from safetensors import SafetensorError
        from safetensors.numpy import load

        try:
            raw = Path(path).read_bytes()
            tensors = load(raw)
            meta = _metadata(raw)
            if meta.get("format") != FORMAT or meta.get("method") not in METHODS:
                raise ValueError(f"format {meta.get('format')!r}, method {meta.get('method')!r}")
            fam = cls(meta["method"], float(meta["threshold"]), float(meta["quantile"]))
            for name in ("mean", "components", "class_means", "precision"):
                if name in tensors:
                    setattr(fam, name, tensors[name].astype(np.float64))
            if fam.method == "mahalanobis" and (fam.class_means is None or fam.precision is None):
                raise ValueError("class_means or precision missing")
        except (OSError, SafetensorError, ValueError, KeyError) as err:
            raise ModelLoadError(f"{path}: not a usable familiarity model ({err})") from None
        fam.info = {k: v for k, v in meta.items() if k not in ("format", "method", "threshold", "quantile")}
        return fam


def _metadata(raw: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header."""
    import json
    import struct

    if len(raw) < 8:
        raise ValueError("file too short")
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    return dict(header.get("__metadata__") or {})


def fit_familiarity(
    method: str,
    features: Any = None,
    labels: Any = None,
    *,
    max_dims: int = 256,
) -> Familiarity:
    """A familiarity model of ``method`` from training faces' ``features`` (N x D) and ``labels``
    (mahalanobis only; energy needs nothing fitted). Set its threshold with
    :meth:`Familiarity.set_threshold` on validation scores before saving."""
    if method not in METHODS:
        raise InputError(f"familiarity: unknown method {method!r}; choose {' or '.join(METHODS)}")
    if method == "energy":
        return Familiarity("energy")
    from sklearn.covariance import LedoitWolf

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y) or len(x) < 3:
        raise InputError(f"familiarity: need at least 3 training faces with features (got {x.shape})")
    fam = Familiarity("mahalanobis")
    k = min(max_dims, x.shape[1], len(x) - 1)
    if x.shape[1] > max_dims:
        fam.mean = x.mean(axis=0)
        # PCA by SVD of the centred features: the top-k right singular vectors
        _, _, vt = np.linalg.svd(x - fam.mean, full_matrices=False)
        fam.components = vt[:k]
        x = fam.project(x)
    classes = sorted({int(c) for c in y})
    fam.class_means = np.stack([x[y == c].mean(axis=0) for c in classes])
    resid = np.concatenate([x[y == c] - m for c, m in zip(classes, fam.class_means, strict=True)])
    fam.precision = LedoitWolf(assume_centered=True).fit(resid).precision_
    fam.info = {"classes": ",".join(map(str, classes)), "n_train": str(len(x))}
    return fam
