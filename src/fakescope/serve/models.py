"""The runs a server keeps warm, and how one job is scored with them.

A job is scored exactly as ``fakescope detect`` scores the same file (the same
:meth:`FaceForgeryDetector.predict` path, the same options), so its result is the ``detect --json``
document for that one input; the report is :func:`fakescope.explain.report.write_report`'s.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescope.api import DetectOptions, FaceForgeryDetector, Prediction, load
from fakescope.errors import FakescopeError
from fakescope.inference.shipped import is_shipped, model_card_path

__all__ = ["LoadedRun", "Outcome", "load_runs", "score_job"]


class _ReadWriteLock:
    """Many predictions at once, but an explanation alone: Grad-CAM hooks the shared model, and a
    concurrent forward pass would feed its activations to them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def read(self) -> _Held:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer)
            self._readers += 1
        return _Held(self, False)

    def write(self) -> _Held:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer)
            self._writer = True
            self._cond.wait_for(lambda: self._readers == 0)
        return _Held(self, True)

    def release(self, writer: bool) -> None:
        with self._cond:
            if writer:
                self._writer = False
            else:
                self._readers -= 1
            self._cond.notify_all()


class _Held:
    def __init__(self, lock: _ReadWriteLock, writer: bool) -> None:
        self.lock, self.writer = lock, writer

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.lock.release(self.writer)


@dataclass
class LoadedRun:
    """A run loaded once: its detector and what ``GET /v1/models`` says about it."""

    name: str
    detector: FaceForgeryDetector
    training_data: list[str]
    standin_notice: str | None
    lock: _ReadWriteLock
    card: Path | None = None  # RUN/MODEL_CARD.md, served at GET /v1/models/{name}/card

    @property
    def standin(self) -> bool:
        return self.standin_notice is not None

    def to_dict(self) -> dict[str, Any]:
        det = self.detector
        return {
            "name": self.name,
            "run": det.source,
            "detector": det.name,
            "family": det.family,
            "threshold": det.threshold,
            "video_threshold": det.video_threshold,
            "threshold_source": det.threshold_source,
            "training_data": self.training_data,
            "standin": self.standin,
            "notice": self.standin_notice,
            "card": self.card is not None,
        }


def _training_data(cfg: Any) -> list[str]:
    data = cfg.data
    if data.layout == "manifest" and data.manifest:
        return [str(data.manifest)]
    return [f"{data.layout}: {data.root}"]


def _run_dir(det: FaceForgeryDetector) -> Path:
    """The run folder of a loaded detector (its source is the folder or a checkpoint inside it)."""
    src = Path(det.source)
    return src if src.is_dir() else src.parent.parent


def _standin_notice(cfg: Any, run_dir: Path) -> str | None:
    """The stand-in notice when the run was trained on ``fakescope demo``'s stand-in set (its data
    folder holds ``STANDIN.txt``), else ``None``; never for the shipped detector, whichever folder its
    training data was read from."""
    if is_shipped(run_dir):
        return None
    src = cfg.data.manifest or cfg.data.root
    if not src:
        return None
    for folder in list(Path(src).parents)[:2]:
        notice = folder / "STANDIN.txt"
        if notice.is_file():
            return notice.read_text(encoding="utf-8").split("\n\n")[0].strip()
    return None


def _unique_names(runs: list[str]) -> list[str]:
    names: list[str] = []
    for run in runs:
        p = Path(run)
        base = p.name if p.is_dir() else f"{p.parent.parent.name}:{p.stem}"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def load_runs(runs: list[str], device: str, frames_per_video: int | None) -> dict[str, LoadedRun]:
    """Load each run once (and its face detector), keyed by a short unique name (the run folder's)."""
    out: dict[str, LoadedRun] = {}
    for name, run in zip(_unique_names(runs), runs, strict=True):
        det = load(run, device=device, options=DetectOptions(frames_per_video=frames_per_video))
        _ = det.face_detector  # warm: the face detector's weights load now, not on the first upload
        folder = _run_dir(det)
        out[name] = LoadedRun(
            name, det, _training_data(det.cfg), _standin_notice(det.cfg, folder), _ReadWriteLock(),
            model_card_path(folder),
        )  # fmt: skip
    return out


class _Counting:
    """The detector, seen through a counter of the frames a video job has decoded (each frame's face
    search calls ``find_faces`` once), so the page can show frames done / total."""

    def __init__(self, det: FaceForgeryDetector, on_frame: Callable[[], None]) -> None:
        self._det, self._on_frame = det, on_frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self._det, name)

    def find_faces(self, image: Any, max_faces: int | None = None) -> Any:
        faces = self._det.find_faces(image, max_faces)
        self._on_frame()
        return faces


def video_frames_total(det: FaceForgeryDetector, path: Path) -> int:
    """How many frames :func:`fakescope.api.video.predict_video` will sample from ``path``."""
    from fakescope.preprocess.config import FrameSamplingConfig
    from fakescope.preprocess.video.probe import probe_video
    from fakescope.preprocess.video.sampling import select_frame_indices

    count = det.options.frames_per_video or det.cfg.eval.frames_per_video
    probe = probe_video(path)
    return len(select_frame_indices(probe.n_frames, FrameSamplingConfig(policy="even", count=count)).indices)


@dataclass
class Outcome:
    """A scored job: the ``detect --json`` document, the error line (failed jobs) and the report."""

    result: dict[str, Any]
    error: str | None
    report: bool


def _predict(
    run: LoadedRun, path: Path, kind: str, aligned: bool, on_frame: Callable[[], None]
) -> Prediction:
    if kind == "video":
        from fakescope.api.video import predict_video

        return predict_video(_Counting(run.detector, on_frame), path, aligned, False)
    return run.detector.predict(path, aligned=aligned)


def _write_report(run: LoadedRun, pred: Prediction, name: str, out_dir: Path, gradcam: bool) -> bool:
    from fakescope.explain.config import ExplainConfig
    from fakescope.explain.report import write_report

    cfg = ExplainConfig(gradcam=gradcam)
    with run.lock.write():
        explanations = run.detector.explain(pred, cfg)
    data = {**pred.report_data(), "source": name}
    tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=out_dir.parent))
    try:
        write_report(data, explanations, tmp, cfg, banner=run.standin_notice)
        if out_dir.exists():  # a job resumed after a restart: its half-written report goes
            shutil.rmtree(out_dir)
        tmp.replace(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def score_job(
    run: LoadedRun, path: Path, name: str, kind: str, aligned: bool, report_dir: Path, gradcam: bool,
    on_frame: Callable[[], None],
) -> Outcome:  # fmt: skip
    """Score one stored upload; never raises for a bad input: a :class:`FakescopeError` becomes the
    failed job's one-line message, worded as ``fakescope detect`` words it but naming the upload."""
    det = run.detector
    doc: dict[str, Any] = {
        "model": det.source,
        "detector": det.name,
        "engine": det.engine,  # the detect --json schema; serve runs the torch engine
        "threshold": det.threshold,
        "threshold_source": det.threshold_source,
        "results": [],
        "errors": [],
    }
    try:
        with run.lock.read():
            pred = _predict(run, path, kind, aligned, on_frame)
    except FakescopeError as err:
        text = str(err).replace(str(path), name)
        msg = text if name in text else f"{name}: {text}"
        doc["errors"].append({"source": name, "error": msg})
        return Outcome(doc, msg, False)
    pred.source = name
    doc["results"].append(pred.to_dict())
    report = _write_report(run, pred, name, report_dir, gradcam)
    return Outcome(doc, None, report)
