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
- ``mahalanobis_layers``: the same distance at every stage of the network, not only the penultimate
  features, then combined: Lee et al.'s "feature ensemble" (§2.2). Each stage's output is averaged over
  its spatial positions, its Gaussian fitted as above, and its distances standardised by their mean and
  standard deviation on the **validation** faces; the score is the mean of the standardised distances.
  Lee et al. weight the layers by a logistic regression fitted on out-of-distribution examples; with no
  such examples to fit on, every layer here weighs the same (the rule was fixed before it was measured).
  The penultimate features of a detector trained on photographs find video frames *more* typical than
  its own test faces (their detail is low); the early stages, which see texture and sharpness, do not.
  The stages are found by :func:`familiarity_layers` and read by :class:`PooledOutputs` (forward hooks);
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

import json
import os
import re
import threading
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
    "POOLED",
    "PooledOutputs",
    "energy_score",
    "familiarity_layers",
    "fit_familiarity",
    "mahalanobis_distances",
]

FAMILIARITY_FILE = "familiarity.safetensors"
FORMAT = "fakescope-familiarity/1"
METHODS = ("mahalanobis", "mahalanobis_layers", "energy")
#: the prefix of a stage's pooled output in a detector's output dict (see :class:`PooledOutputs`)
POOLED = "pooled:"
#: submodule names whose children are a network's stages: timm's CNNs (``blocks``, ``stages``) and
#: fakescope's own shallow CNNs (``convs``)
_STAGE_LISTS = ("blocks", "stages", "convs")
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
class Gaussian:
    """One layer's class-conditional Gaussian with a shared covariance (Lee et al., NeurIPS 2018, §2):
    the PCA ``mean`` and ``components`` (``None`` when the features are used as they are), the class
    means and the shared precision matrix in the projected space, and ``loc``/``scale``, the mean and
    standard deviation of the validation faces' distances (0 and 1 until :meth:`standardise`)."""

    class_means: np.ndarray
    precision: np.ndarray
    mean: np.ndarray | None = None
    components: np.ndarray | None = None
    loc: float = 0.0
    scale: float = 1.0

    def project(self, features: Any) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise InputError(f"familiarity: features must be N x D, got shape {x.shape}")
        if self.components is None:
            return x
        assert self.mean is not None
        if x.shape[1] != self.mean.shape[0]:
            raise InputError(
                f"familiarity: features have {x.shape[1]} dimensions, the model {self.mean.shape[0]}; "
                "it was fitted for another detector"
            )
        return (x - self.mean) @ self.components.T.astype(np.float64)

    def distance(self, features: Any) -> np.ndarray:
        x = self.project(features)
        if x.shape[1] != self.class_means.shape[1]:
            raise InputError(
                f"familiarity: features have {x.shape[1]} dimensions after projection, the model "
                f"{self.class_means.shape[1]}; it was fitted for another detector"
            )
        return mahalanobis_distances(
            x, self.class_means.astype(np.float64), self.precision.astype(np.float64)
        )

    def standardised(self, features: Any) -> np.ndarray:
        return (self.distance(features) - self.loc) / self.scale

    def standardise(self, val_features: Any) -> None:
        d = self.distance(val_features)
        d = d[np.isfinite(d)]
        if d.size < 2:
            raise InputError("familiarity: need at least 2 validation faces to standardise a layer")
        self.loc, self.scale = float(d.mean()), float(max(d.std(), 1e-12))

    @classmethod
    def fit(cls, features: Any, labels: Any, max_dims: int) -> Gaussian:
        from sklearn.covariance import LedoitWolf

        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels)
        if x.ndim != 2 or len(x) != len(y) or len(x) < 3:
            raise InputError(f"familiarity: need at least 3 training faces with features (got {x.shape})")
        mean = components = None
        if x.shape[1] > max_dims:
            k = min(max_dims, len(x) - 1)
            mean = x.mean(axis=0)
            # PCA by SVD of the centred features: the top-k right singular vectors
            _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
            components = vt[:k]
            x = (x - mean) @ components.T
        classes = sorted({int(c) for c in y})
        class_means = np.stack([x[y == c].mean(axis=0) for c in classes])
        resid = np.concatenate([x[y == c] - m for c, m in zip(classes, class_means, strict=True)])
        precision = LedoitWolf(assume_centered=True).fit(resid).precision_
        return cls(class_means, precision, mean, components)

    def tensors(self, prefix: str = "") -> dict[str, np.ndarray]:
        arrays = {"class_means": self.class_means, "precision": self.precision}
        if self.mean is not None and self.components is not None:
            arrays.update({"mean": self.mean, "components": self.components})
        out = {prefix + k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
        if prefix:  # the single-layer file (the ``mahalanobis`` method) has no standardisation
            out[prefix + "standardise"] = np.asarray([self.loc, self.scale], dtype=np.float64)
        return out

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, np.ndarray], prefix: str = "") -> Gaussian:
        t = {k[len(prefix) :]: v.astype(np.float64) for k, v in tensors.items() if k.startswith(prefix)}
        if "class_means" not in t or "precision" not in t:
            raise ValueError(f"{prefix or 'the model'}: class_means or precision missing")
        g = cls(t["class_means"], t["precision"], t.get("mean"), t.get("components"))
        if "standardise" in t:
            g.loc, g.scale = float(t["standardise"][0]), float(t["standardise"][1])
        return g


@dataclass
class Familiarity:
    """A fitted familiarity model: for ``mahalanobis`` one :class:`Gaussian` on the penultimate
    ``features``; for ``mahalanobis_layers`` one per entry of ``layers`` (``features`` or a stage's
    pooled output, ``pooled:NAME``); nothing for ``energy``. ``threshold`` is ``nan`` until
    :meth:`set_threshold`."""

    method: str
    threshold: float = float("nan")
    quantile: float = 0.95
    gaussians: dict[str, Gaussian] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)

    @property
    def needs(self) -> tuple[str, ...]:
        """The detector outputs this method reads: ``logits``, ``features``, or those and stages'
        pooled outputs (``pooled:NAME``, which an ONNX export does not give)."""
        if self.method == "energy":
            return ("logits",)
        return tuple(self.gaussians) or ("features",)

    @property
    def layers(self) -> list[str]:
        """The module names of the stages read through forward hooks (see :class:`PooledOutputs`)."""
        return [k[len(POOLED) :] for k in self.gaussians if k.startswith(POOLED)]

    def score(self, features: Any = None, logits: Any = None, **outputs: Any) -> np.ndarray:
        """Per face, higher = farther from the training data. ``outputs`` carries a stage's pooled
        output under its ``pooled:NAME`` key (pass them as ``**{"pooled:NAME": array}``)."""
        return self._score({"features": features, "logits": logits, **outputs}, strict=True)

    def score_outputs(self, outputs: Mapping[str, Any]) -> np.ndarray | None:
        """:meth:`score` of a forward pass's outputs (tensors or arrays); ``None`` when an output it
        needs is missing (an ONNX export carries logits but no features)."""
        return self._score(outputs, strict=False)

    def _score(self, outputs: Mapping[str, Any], strict: bool) -> np.ndarray | None:
        arrays = {}
        for name in self.needs:
            value = outputs.get(name)
            if value is None:
                if strict:
                    raise InputError(f"familiarity ({self.method}): needs the detector's {name}")
                return None
            arrays[name] = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        if self.method == "energy":
            return energy_score(arrays["logits"])
        if self.method == "mahalanobis":
            return self.gaussians["features"].distance(arrays["features"])
        return np.mean([g.standardised(arrays[k]) for k, g in self.gaussians.items()], axis=0)

    def standardise(self, val_outputs: Mapping[str, Any]) -> None:
        """``mahalanobis_layers``: set each layer's standardisation from the validation faces' outputs."""
        if self.method != "mahalanobis_layers":
            return
        for name, g in self.gaussians.items():
            if val_outputs.get(name) is None:
                raise InputError(f"familiarity: the validation faces have no {name} output to standardise on")
            g.standardise(np.asarray(val_outputs[name]))

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

    def attach(self, detector: Any) -> PooledOutputs | None:
        """Hooks on ``detector`` that add the pooled stage outputs this model reads to every forward
        pass's output dict (``None`` when it reads none)."""
        return PooledOutputs(detector, self.layers) if self.layers else None

    # -- file ----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model atomically as safetensors (float32 tensors, metadata strings)."""
        from safetensors.numpy import save

        if not np.isfinite(self.threshold):
            raise InputError("familiarity: set the threshold on validation scores before saving")
        tensors = {"threshold": np.asarray([self.threshold], dtype=np.float64)}
        meta = {**self.info, "format": FORMAT, "method": self.method, "threshold": repr(self.threshold),
                "quantile": repr(self.quantile)}  # fmt: skip
        if self.method == "mahalanobis":
            g = self.gaussians["features"]
            tensors.update(g.tensors())
            meta["dims"] = str(g.class_means.shape[1])
            meta["input_dims"] = str(g.components.shape[1] if g.components is not None else meta["dims"])
        elif self.method == "mahalanobis_layers":
            for i, g in enumerate(self.gaussians.values()):
                tensors.update(g.tensors(prefix=f"layer{i}."))
            meta["layers"] = json.dumps(list(self.gaussians))
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
            if fam.method == "mahalanobis":
                fam.gaussians = {"features": Gaussian.from_tensors(tensors)}
            elif fam.method == "mahalanobis_layers":
                names = json.loads(meta["layers"])
                fam.gaussians = {n: Gaussian.from_tensors(tensors, f"layer{i}.") for i, n in enumerate(names)}
        except (OSError, SafetensorError, ValueError, KeyError) as err:
            raise ModelLoadError(f"{path}: not a usable familiarity model ({err})") from None
        skip = ("format", "method", "threshold", "quantile", "layers", "dims", "input_dims")
        fam.info = {k: v for k, v in meta.items() if k not in skip}
        return fam


def _metadata(raw: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header."""
    import struct

    if len(raw) < 8:
        raise ValueError("file too short")
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    return dict(header.get("__metadata__") or {})


def familiarity_layers(detector: Any) -> list[str]:
    """The module names of a detector's stages, in forward order: the children of every submodule
    named ``blocks``, ``stages`` or ``convs`` (timm's EfficientNets and Xceptions, fakescope's shallow
    CNNs such as AIRL's DCT stream) and every ResNet stage (``layer1``, ``layer2``, ...: NPR). A stage that a forward pass does not run (a frozen
    backbone whose embeddings are cached) gives no output and is left out when fitting."""
    import torch.nn as nn

    names = []
    for name, module in detector.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in _STAGE_LISTS and isinstance(module, nn.Sequential | nn.ModuleList):
            names += [f"{name}.{child}" for child, _ in module.named_children()]
        elif re.fullmatch(r"layer\d+", leaf) and isinstance(module, nn.Sequential):
            names.append(name)  # a ResNet stage (torchvision and timm name them layer1, layer2, ...)
    return names


class PooledOutputs:
    """Forward hooks that put each named stage's output, averaged over its spatial positions (a
    ``[B, C]`` array), into the detector's output dict as ``pooled:NAME``. Outputs that are not
    ``[B, C, H, W]`` or ``[B, C]`` tensors are skipped. Each thread's forward passes keep their own
    outputs. :meth:`remove` takes the hooks off."""

    def __init__(self, detector: Any, names: list[str]) -> None:
        modules = dict(detector.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise ModelLoadError(
                f"familiarity: the detector has no layer(s) {missing}; it was fitted for another"
            )
        # per thread: `serve` runs several jobs through one detector at once, and a forward pass's stage
        # outputs must reach that pass's own output dict
        self._local = threading.local()
        self._handles = [modules[n].register_forward_hook(self._keeper(n)) for n in names]
        self._handles.append(detector.register_forward_hook(self._merge))

    def _keeper(self, name: str) -> Any:
        def keep(module: Any, inputs: Any, output: Any) -> None:
            if hasattr(output, "ndim") and output.ndim in (2, 4):
                out = output.detach().float()
                self._pending()[POOLED + name] = out.mean(dim=(2, 3)) if out.ndim == 4 else out

        return keep

    def _pending(self) -> dict[str, Any]:
        if not hasattr(self._local, "pooled"):
            self._local.pooled = {}
        return self._local.pooled

    def _merge(self, module: Any, inputs: Any, output: Any) -> Any:
        if isinstance(output, dict):
            output.update(self._pending())
        self._local.pooled = {}
        return output

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def fit_familiarity(
    method: str,
    features: Any = None,
    labels: Any = None,
    *,
    max_dims: int = 256,
    outputs: Mapping[str, Any] | None = None,
) -> Familiarity:
    """A familiarity model of ``method`` from training faces' ``features`` (N x D) and ``labels``.
    ``mahalanobis_layers`` reads ``outputs`` instead: ``features`` and every ``pooled:NAME`` stage
    output of the same faces (a layer given as ``None`` is left out). Energy needs nothing fitted.
    Then, for ``mahalanobis_layers``, :meth:`Familiarity.standardise` on validation outputs, and for
    every method :meth:`Familiarity.set_threshold` on validation scores, before saving."""
    if method not in METHODS:
        raise InputError(f"familiarity: unknown method {method!r}; choose {', '.join(METHODS)}")
    if method == "energy":
        return Familiarity("energy")
    y = np.asarray(labels)
    fam = Familiarity(method)
    if method == "mahalanobis":
        fam.gaussians = {"features": Gaussian.fit(features, y, max_dims)}
    else:
        given = {
            k: v
            for k, v in (outputs or {}).items()
            if v is not None and (k == "features" or k.startswith(POOLED))
        }
        if not given:
            raise InputError("familiarity (mahalanobis_layers): no features or stage outputs to fit on")
        # stages first, in forward order, then the penultimate features
        order = sorted(given, key=lambda k: k == "features")
        fam.gaussians = {k: Gaussian.fit(given[k], y, max_dims) for k in order}
    fam.info = {"classes": ",".join(map(str, sorted({int(c) for c in y}))), "n_train": str(len(y))}
    return fam
