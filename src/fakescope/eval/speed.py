"""Inference speed of ``detect``: faces per second per model family, split by stage.

AIRL (Parihar), §V-F (Table VI) reports 15.8 ms per face for AIRL (EfficientNet-B4 + DCT stream) on
an A100, i.e. about 63 faces/s; INFER (anonymous NeurIPS-format submission) reports no latency, but its cost is dominated
by fitting an INR to every face (§3.3; supplementary A.1-A.5).

Each face goes through the same path as :meth:`fakescope.api.FaceForgeryDetector.predict`, one input
at a time (what ``fakescope detect`` does), and the time of each stage is summed:

- ``detect_align``: face detection (RetinaFace / MTCNN) and 5-landmark alignment;
- ``features``: resizing to the model's input, the INR fit and PCA heatmaps (INFER family) and the
  frozen image embedding (CLIP or its stand-in);
- ``classifier``: the detector's forward pass.

Weights do not change speed, so a detector can be timed from a config alone (random weights, nothing
downloaded) as well as from a trained run. The machine may be shared: the 1-minute load average is
recorded before and after each measurement, next to the figures.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fakescope.api import DetectOptions, FaceForgeryDetector
from fakescope.errors import InputError

__all__ = [
    "SpeedResult",
    "detector_from_config",
    "onnx_detector_from_config",
    "machine_info",
    "measure_detect_speed",
]

STAGES = ("detect_align", "features", "classifier")


@dataclass
class SpeedResult:
    model: str
    backbone: str
    image_size: int
    inr_resolution: int | None
    device: str
    faces: int
    seconds: float
    faces_per_s: float
    ms_per_face: float
    ms_per_face_by_stage: dict[str, float]
    loadavg_before: float
    loadavg_after: float
    weights: str
    engine: str = "torch"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def detector_from_config(
    cfg: Any, device: torch.device, options: DetectOptions | None = None
) -> FaceForgeryDetector:
    """A :class:`FaceForgeryDetector` with randomly initialised weights (``model.pretrained`` is
    switched off so nothing is downloaded), for timing only; its threshold is the default 0.5."""
    from fakescope.inference.spec import input_spec_for
    from fakescope.models.registry import build_detector

    cfg = cfg.model_copy(deep=True)
    cfg.model.pretrained = False
    detector = build_detector(cfg.model, input_spec_for(cfg)).to(device).eval()
    meta = {"detector": cfg.model.name, "val_threshold": None}
    return FaceForgeryDetector(detector, cfg, meta, device, "<random weights, for timing>", options)


def onnx_detector_from_config(
    cfg: Any,
    device: torch.device,
    folder: str | os.PathLike[str],
    quantize: str | None = None,
    options: DetectOptions | None = None,
) -> FaceForgeryDetector:
    """:func:`detector_from_config`'s random detector exported to ONNX in ``folder`` and loaded for the
    ONNX engine (``--engine onnx`` without ``--run``). Raises
    :class:`~fakescope.inference.onnx_engine.OnnxExportError` for a detector that has no export."""
    from fakescope.api import load
    from fakescope.inference.onnx_engine import export_detector

    det = detector_from_config(cfg, torch.device("cpu"), options)
    path = Path(folder) / f"{cfg.model.name}{'-int8' if quantize else ''}.onnx"
    export_detector(det.detector, det.cfg, det.meta, path, quantize, det.source)
    return load(path, device=str(device), options=options, engine="onnx")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_detect_speed(
    det: FaceForgeryDetector,
    images: Sequence[np.ndarray | str | os.PathLike[str]],
    warmup: int = 2,
    aligned: bool = False,
    weights: str = "trained",
    progress: bool = False,
) -> SpeedResult:
    """Time ``det.predict`` on ``images[warmup:]`` (after ``warmup`` untimed calls on the first images)
    and split the time by stage."""
    from tqdm import tqdm

    if not images:
        raise InputError("bench: no images to time")
    for img in list(images)[:warmup]:
        det.predict(img, aligned=aligned)
    _sync(det.device)
    det.timings.clear()
    det.counts.clear()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    timed = list(images)[warmup:] or list(images)
    for img in tqdm(timed, desc=f"bench {det.name}", unit="img", disable=not progress, dynamic_ncols=True):
        det.predict(img, aligned=aligned)
    _sync(det.device)
    seconds = time.perf_counter() - start
    faces = int(det.counts["faces"])
    per = {s: 1000.0 * det.timings.get(s, 0.0) / max(faces, 1) for s in STAGES}
    cfg = det.cfg
    backbone = getattr(det.detector, "backbone_name", cfg.model.backbone)
    return SpeedResult(
        model=det.name,
        backbone=str(backbone),
        image_size=int(cfg.data.image_size),
        inr_resolution=int(cfg.inr.resolution) if "heatmaps" in det.inputs else None,
        device=str(det.device),
        faces=faces,
        seconds=round(seconds, 3),
        faces_per_s=round(faces / seconds, 3) if seconds > 0 else float("nan"),
        ms_per_face=round(1000.0 * seconds / max(faces, 1), 2),
        ms_per_face_by_stage={k: round(v, 2) for k, v in per.items()},
        loadavg_before=round(load_before, 2),
        loadavg_after=round(os.getloadavg()[0], 2),
        weights=weights,
        engine=det.engine,
    )


def load_bench_images(folder: str | os.PathLike[str], n: int) -> list[np.ndarray]:
    """The first ``n`` images (sorted) under ``folder``, decoded once so decoding is not timed."""
    from fakescope.data.images import IMAGE_EXTENSIONS, load_image_rgb

    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise InputError(f"{root}: no images to time")
    # Interleave real/ and fake/ when present so both classes are timed.
    # (each file's position in the sorted list, taken once: looking it up per key made a large folder
    # quadratic, 30 s for 6,000 files)
    stride = max(1, len(files) // max(n, 1))
    order = sorted(range(len(files)), key=lambda i: (i % stride, str(files[i])))
    return [load_image_rgb(files[i]) for i in order[:n]]


def bench_config(
    model: str,
    backbone: str = "auto",
    image_size: int = 224,
    inr_resolution: int | None = None,
    device: str = "cpu",
    overrides: Sequence[str] | None = None,
) -> Any:
    """The config of a detector to time: ``model`` with ``backbone`` at ``image_size`` (and the INR at
    ``inr_resolution``, default the image size), plus ``--set`` overrides."""
    from fakescope.config import load_config

    sets = [
        f"model.name={model}",
        f"model.backbone={backbone}",
        "model.pretrained=false",
        f"data.image_size={image_size}",
        f"inr.resolution={inr_resolution or image_size}",
        f"device={device}",
    ]
    return load_config(None, sets + list(overrides or []))


def default_bench_images(
    n: int, data_root: str | os.PathLike[str] | None = None
) -> tuple[list[np.ndarray], str]:
    """``n`` real DFDC face images from ``data_root/dfdc-faces`` (default ``../shared/data``), or, when
    that is absent, the photograph shipped with scikit-image, repeated (so ``bench`` runs anywhere)."""
    root = (
        Path(data_root)
        if data_root is not None
        else Path(__file__).resolve().parents[3].parent / "shared" / "data"
    )
    folder = root / "dfdc-faces"
    if folder.is_dir():
        return load_bench_images(folder, n), str(folder)
    from fakescope.data.images import standin_photo

    return [standin_photo()] * n, "skimage astronaut photograph (../shared/data absent)"
