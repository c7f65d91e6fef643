"""A run's calibration, as inference applies it: ``RUN/calibration.json`` read back and applied to the
detector's raw P(fake).

The file is written by :mod:`fakescope.eval.calibration` (fitting, selection, ECE and the reliability
diagram live there); this module only reads and applies it, so ``detect`` and ``serve`` need no
evaluation code. Two calibrators are possible:

- ``temperature``: temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML
  2017, §4.2). For two classes ``softmax(z / T)[fake] = sigmoid((z_fake - z_real) / T)`` and
  ``z_fake - z_real`` is the logit of P(fake), so one scalar ``T`` divides the logit of the score;
- ``isotonic``: isotonic regression (Guo et al., ICML 2017, §4.1; Zadrozny & Elkan, KDD 2002), stored as
  its breakpoints and applied by linear interpolation between them, clipped at the ends (what
  scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` does).

The verdict's operating point is a threshold on the **raw** score (``threshold``, ``video_threshold``),
chosen on the validation reals at a stated false-positive rate; ``threshold_probability`` is the same
point on the calibrated scale. Both calibrators are monotone, so comparing the raw score with
``threshold`` decides exactly as comparing the calibrated probability with the calibrated threshold
would, without ties that an isotonic step could create.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fakescope.errors import ModelLoadError

if TYPE_CHECKING:
    from fakescope.inference.familiarity import Familiarity

__all__ = [
    "CALIBRATION_FILE",
    "FORMAT",
    "Calibration",
    "RunExtras",
    "apply_temperature",
    "load_run_extras",
    "score_logit",
]

log = logging.getLogger(__name__)

#: the file name inside a run directory
CALIBRATION_FILE = "calibration.json"
FORMAT = "fakescope-calibration/1"
#: the raw score is clipped to [EPS, 1 - EPS] before its logit is taken (a float32 P(fake) saturates at 1)
EPS = 1e-7


def score_logit(scores: Any) -> np.ndarray:
    """The logit of P(fake), ``log p - log(1 - p)``, with ``p`` clipped to ``[EPS, 1 - EPS]``."""
    p = np.clip(np.asarray(scores, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def apply_temperature(scores: Any, temperature: float) -> np.ndarray:
    """``sigmoid(logit(p) / T)``: temperature scaling of a two-class detector's P(fake)."""
    z = score_logit(scores) / float(temperature)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow warnings


@dataclass
class Calibration:
    """A fitted calibration: the calibrator (``method`` with ``temperature`` or the isotonic
    breakpoints ``x`` → ``y``) and the operating point (raw-score thresholds at ``target_fpr``)."""

    method: str
    threshold: float
    video_threshold: float
    target_fpr: float
    temperature: float | None = None
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    #: everything else the file records (ECE before and after, the selection's figures, counts)
    info: dict[str, Any] = field(default_factory=dict)

    def apply(self, scores: Any) -> np.ndarray:
        """Calibrated P(fake) of raw scores (any shape), as float64 in [0, 1]."""
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "temperature":
            assert self.temperature is not None
            return apply_temperature(s, self.temperature)
        return np.interp(s, np.asarray(self.x), np.asarray(self.y))

    @property
    def threshold_probability(self) -> float:
        return float(self.apply(min(self.threshold, 1.0)))

    def to_json(self) -> dict[str, Any]:
        calibrator: dict[str, Any] = {"method": self.method}
        if self.method == "temperature":
            calibrator["temperature"] = self.temperature
        else:
            calibrator.update(x=list(self.x), y=list(self.y))
        return {
            "format": FORMAT,
            "calibrator": calibrator,
            "operating_point": {
                "target_fpr": self.target_fpr,
                "threshold": self.threshold,
                "video_threshold": self.video_threshold,
                "threshold_probability": self.threshold_probability,
            },
            **self.info,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any], source: str = "calibration") -> Calibration:
        """Read :meth:`to_json`'s form back; one-line :class:`ModelLoadError` for anything else."""
        try:
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT!r}")
            cal, op = doc["calibrator"], doc["operating_point"]
            method = cal["method"]
            out = cls(method, float(op["threshold"]), float(op["video_threshold"]), float(op["target_fpr"]))
            if method == "temperature":
                out.temperature = float(cal["temperature"])
                ok = np.isfinite(out.temperature) and out.temperature > 0
            elif method == "isotonic":
                out.x, out.y = [float(v) for v in cal["x"]], [float(v) for v in cal["y"]]
                ok = len(out.x) == len(out.y) >= 1 and bool(np.all(np.diff(out.x) >= 0))
            else:
                raise ValueError(f"unknown method {method!r}")
            if not ok:
                raise ValueError(f"invalid {method} parameters")
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ModelLoadError(f"{source}: not a usable calibration ({err})") from None
        out.info = {k: v for k, v in doc.items() if k not in ("format", "calibrator", "operating_point")}
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ModelLoadError(f"{path}: unreadable calibration ({err})") from None
        if not isinstance(doc, dict):
            raise ModelLoadError(f"{path}: not a usable calibration (not a JSON object)")
        return cls.from_json(doc, str(path))


def run_dir_of(source: str | os.PathLike[str]) -> Path | None:
    """The run directory of a detector loaded from ``source`` (a run folder or a checkpoint file in its
    ``checkpoints/``); ``None`` for anything else (an ONNX export)."""
    p = Path(source)
    if p.is_dir():
        return p
    if p.is_file() and p.parent.name == "checkpoints":
        return p.parent.parent
    return None


def _fitted_for(meta: dict[str, Any], cal: Calibration | None, fam: Familiarity | None) -> bool:
    """Whether the calibration and familiarity model were fitted for the checkpoint ``meta``: the same
    weights hash, or the same training step (the same weights stored at another precision, as a packaged
    float16 copy). Files that record neither are accepted."""
    fitted = [(cal.info.get("fitted_on") or {}) if cal else {}, fam.info if fam else {}]
    for rec in fitted:
        sha, step = rec.get("weights_sha256") or None, rec.get("step")
        if sha is None or meta.get("weights_sha256") in (None, sha):
            continue
        if step in (None, "") or str(step) != str(meta.get("step")):
            return False
    return True


def load_run_extras(
    source: str | os.PathLike[str], meta: dict[str, Any], engine: str = "torch"
) -> tuple[Calibration | None, Familiarity | None]:
    """The calibration and familiarity model of the run a detector was loaded from, when its folder
    holds them and they were fitted for these weights (``meta["weights_sha256"]``): a mismatch (a run
    loaded with ``prefer="last"``, weights replaced after calibrating) is one warning, and neither is
    used. An ONNX engine gives no features, so a Mahalanobis model is dropped for it (one warning)."""
    from fakescope.inference.familiarity import FAMILIARITY_FILE, Familiarity

    run = run_dir_of(source)
    if run is None:
        return None, None
    cal = Calibration.load(run / CALIBRATION_FILE) if (run / CALIBRATION_FILE).is_file() else None
    fam = Familiarity.load(run / FAMILIARITY_FILE) if (run / FAMILIARITY_FILE).is_file() else None
    if not _fitted_for(meta, cal, fam):
        log.warning("%s: its calibration/familiarity were fitted for other weights than this checkpoint's; "
                    "not used (re-run fakescope calibrate)", run)  # fmt: skip
        return None, None
    if fam is not None and engine == "onnx" and fam.needs != ("logits",):
        log.warning("%s: the %s familiarity model needs features, which an ONNX export does not give; "
                    "no familiarity", run, fam.method)  # fmt: skip
        fam = None
    return cal, fam


class RunExtras:
    """A detector's calibration and familiarity model at inference (either may be ``None``), and the
    familiarity scores of the faces it has classified but not yet reported: :meth:`keep` sees each
    classified batch's outputs, :meth:`per_face` gives each reported face its calibrated probability and
    its familiarity. At most ``keep_max`` scores are kept, so classifying without reporting (a benchmark)
    cannot grow them."""

    def __init__(
        self, calibration: Calibration | None, familiarity: Familiarity | None, keep_max: int = 100_000
    ):
        self.calibration, self.familiarity, self.keep_max = calibration, familiarity, keep_max
        # per thread: `serve` scores several jobs through one detector at once, and each job's faces
        # must get their own familiarity, not another job's
        self._local = threading.local()

    @property
    def _kept(self) -> list[np.ndarray]:
        if not hasattr(self._local, "kept"):
            self._local.kept = []
        return self._local.kept

    @classmethod
    def load(cls, source: str | os.PathLike[str], meta: dict[str, Any], engine: str = "torch") -> RunExtras:
        return cls(*load_run_extras(source, meta, engine))

    def clear(self) -> None:
        self._kept.clear()

    def keep(self, outputs: dict[str, Any]) -> None:
        """Keep the familiarity scores of one classified batch (``outputs``: the forward pass's)."""
        if self.familiarity is None or (scores := self.familiarity.score_outputs(outputs)) is None:
            return
        self._kept.append(np.asarray(scores, dtype=np.float64))
        while sum(len(a) for a in self._kept) > self.keep_max:
            self._kept.pop(0)

    def per_face(self, scores: Any) -> list[tuple[float | None, dict[str, Any] | None]]:
        """Per raw score: the calibrated probability and the familiarity (``{score, threshold,
        unfamiliar}``) of the last ``len(scores)`` classified faces, the ones being reported; ``None``
        where the run has none."""
        n = len(scores)
        probs: list[float | None] = [None] * n
        if self.calibration is not None:
            probs = self.calibration.apply(scores).tolist()
        fams: list[dict[str, Any] | None] = [None] * n
        kept = np.concatenate(self._kept) if self._kept else np.zeros(0)
        self._kept.clear()
        if self.familiarity is not None and len(kept) >= n:
            fams = [self.familiarity.result(float(v)) for v in kept[len(kept) - n :]]
        return list(zip(probs, fams, strict=True))
