"""The Python API: load a trained run and score images and videos.

>>> import fakescope
>>> det = fakescope.load("runs/airl_dfdc", device="cpu")
>>> pred = det.predict("photo.jpg")          # or a PIL image, a numpy array, a video path
>>> pred.score, pred.label, [f.box for f in pred.faces]

A face goes through the same path as the training crops (DESIGN.md "Preprocessing"; INFER §3.1,
AIRL §IV-B): the run's face detector (RetinaFace or MTCNN), 5-landmark similarity alignment with the
run's margin and size, resizing to the detector's input size, then the features the detector needs
(INR heatmaps fitted on the crop for the INFER family, §3.3-3.4) and the classifier. The label uses
the threshold chosen on the run's **validation** split (saved in the checkpoint), never 0.5 silently.

A video is sampled at ``eval.frames_per_video`` evenly spaced frames; in each frame one face is kept
(``preprocess.face_select``); the video score is the mean of the frame scores (DESIGN.md), and frames
with no face follow ``preprocess.no_face_policy`` (dropped, or scored 0.5) and are counted.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from fakescope.errors import FakescopeError, InputError, NoFaceError
from fakescope.utils.schema import StrictModel

__all__ = ["DetectOptions", "FaceForgeryDetector", "FaceResult", "FrameScore", "Prediction", "load"]

ImageInput = Any  # str | os.PathLike | bytes | PIL.Image.Image | np.ndarray


class DetectOptions(StrictModel):
    """Choices of ``detect`` that the papers leave open (README "Detecting on your own files")."""

    aligned: bool = Field(
        False, description="inputs are already aligned face crops: skip detection and alignment"
    )
    image_score: Literal["max", "mean"] = Field(
        "max", description="an image's score from its faces' scores: max (one fake face makes the image fake)"
    )
    max_faces: int | None = Field(
        None, ge=1, description="score at most this many faces per image (largest first)"
    )
    frames_per_video: int | None = Field(None, ge=1, description="None = the run's eval.frames_per_video")
    explain_frames: int = Field(
        3, ge=1, description="a video report explains its this-many highest-scoring frames"
    )


@dataclass
class FaceResult:
    """One scored face. ``box`` (x1, y1, x2, y2) and ``landmarks`` (5 × (x, y)) are in the input's
    pixels; both are ``None`` for an input given as an aligned crop."""

    score: float
    label: str
    box: list[float] | None = None
    landmarks: list[list[float]] | None = None
    detection_score: float | None = None
    frame: int | None = None
    time_s: float | None = None
    inr: dict[str, Any] | None = None
    crop: np.ndarray | None = field(default=None, repr=False)
    heatmaps: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "score": round(self.score, 6),
            "label": self.label,
            "box": self.box,
            "landmarks": self.landmarks,
            "detection_score": self.detection_score,
        }
        if self.frame is not None:
            d["frame"] = self.frame
            d["time_s"] = self.time_s
        if self.inr is not None:
            d["inr"] = self.inr
        return d


@dataclass
class FrameScore:
    """One sampled video frame: its score (``None`` when it had no face and the policy drops it)."""

    frame: int
    time_s: float | None
    score: float | None
    faces: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "time_s": self.time_s,
            "score": None if self.score is None else round(self.score, 6),
            "faces": self.faces,
        }


@dataclass
class Prediction:
    """The result for one input: per-face results, and an overall score and label.

    ``score`` is the image score (``DetectOptions.image_score`` over its faces) or the video score (the
    mean of the frame scores). ``explained`` lists the indices of ``faces`` a report explains.
    """

    source: str
    kind: Literal["image", "video"]
    model: str
    model_source: str
    threshold: float
    threshold_source: Literal["validation", "default"]
    faces: list[FaceResult]
    score: float | None
    label: str | None
    frames: list[FrameScore] = field(default_factory=list)
    frames_sampled: int = 0
    frames_no_face: int = 0
    no_face_policy: str = ""
    explained: list[int] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "model": self.model,
            "model_source": self.model_source,
            "score": None if self.score is None else round(self.score, 6),
            "label": self.label,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "faces": [f.to_dict() for f in self.faces],
        }
        if self.kind == "video":
            d.update(
                frames_sampled=self.frames_sampled,
                frames_no_face=self.frames_no_face,
                no_face_policy=self.no_face_policy,
                frames=[f.to_dict() for f in self.frames],
            )
        return d


def _source_name(src: ImageInput) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, np.ndarray):
        return f"<array {'x'.join(map(str, src.shape))}>"
    return f"<{type(src).__name__}>"


def _is_video(src: ImageInput) -> bool:
    from fakescope.preprocess.video import is_video_path

    return isinstance(src, (str, os.PathLike)) and is_video_path(src)


@dataclass
class _Face:
    crop: np.ndarray  # aligned crop at preprocess.align.size
    box: list[float] | None
    landmarks: list[list[float]] | None
    detection_score: float | None


class FaceForgeryDetector:
    """A trained detector ready for inference: face detection, alignment, features, classifier.

    Build it with :func:`load`. ``timings`` accumulates seconds per stage (``detect_align``,
    ``features``, ``classifier``) and ``counts['faces']`` the faces scored, for ``fakescope bench``.
    """

    def __init__(
        self,
        detector: torch.nn.Module,
        cfg: Any,
        meta: dict[str, Any],
        device: torch.device,
        source: str,
        options: DetectOptions | None = None,
    ) -> None:
        self.detector = detector.eval()
        self.cfg = cfg
        self.meta = meta
        self.device = device
        self.source = source
        self.options = options or DetectOptions()
        self.name: str = str(meta.get("detector") or getattr(detector, "name", cfg.model.name))
        self.inputs: frozenset[str] = frozenset(getattr(detector, "inputs", {"image"}))
        # Checkpoints store {"frame": t, "video": t} (thresholds chosen on validation at each level);
        # a bare number is read as both.
        thr = meta.get("val_threshold")
        if isinstance(thr, dict):
            frame_thr, video_thr = thr.get("frame"), thr.get("video", thr.get("frame"))
        else:
            frame_thr = video_thr = thr
        self.threshold_source: Literal["validation", "default"] = (
            "validation" if frame_thr is not None else "default"
        )
        self.threshold: float = float(frame_thr) if frame_thr is not None else 0.5
        self.video_threshold: float = float(video_thr) if video_thr is not None else self.threshold
        self._face_detector: Any = None
        self.timings: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    # -- families ---------------------------------------------------------------------------------
    @property
    def family(self) -> Literal["infer", "airl", "other"]:
        """INFER family: detectors fed INR heatmaps or CLIP embeddings; AIRL family: ``airl*``."""
        if self.name.startswith("airl"):
            return "airl"
        if self.inputs & {"heatmaps", "clip"}:
            return "infer"
        return "other"

    @property
    def face_detector(self) -> Any:
        if self._face_detector is None:
            from fakescope.preprocess.detectors import build_face_detector

            self._face_detector = build_face_detector(self.cfg.preprocess, device=str(self.device))
        return self._face_detector

    def label_of(self, score: float, video: bool = False) -> str:
        return "fake" if score >= (self.video_threshold if video else self.threshold) else "real"

    # -- stages -----------------------------------------------------------------------------------
    def find_faces(self, image: np.ndarray, max_faces: int | None = None) -> list[_Face]:
        """Detect and align every face of an RGB uint8 image, largest first."""
        from fakescope.preprocess.align import align_face

        t0 = time.perf_counter()
        dets = sorted(self.face_detector.detect(image), key=lambda d: d.area, reverse=True)
        if max_faces is not None:
            dets = dets[:max_faces]
        faces = []
        for d in dets:
            aligned = align_face(image, d.landmarks, self.cfg.preprocess.align, box=d.box)
            faces.append(
                _Face(
                    aligned.image,
                    [round(float(v), 1) for v in d.box],
                    np.asarray(d.landmarks, np.float64).round(2).tolist(),
                    float(d.score),
                )
            )
        self.timings["detect_align"] += time.perf_counter() - t0
        return faces

    def model_input(self, crop: np.ndarray) -> np.ndarray:
        """The crop at the detector's input size, resized as the training data loader does."""
        from fakescope.data.dataset import resize_square

        return resize_square(crop, self.cfg.data.image_size)

    def build_batch(
        self, crops: Sequence[np.ndarray]
    ) -> tuple[dict[str, Any], list[dict[str, Any] | None], list[np.ndarray | None]]:
        """The batch dict of docs/CONTRACTS.md for aligned crops, with the features the detector needs.

        INR heatmaps are fitted on the crop at ``data.image_size`` (what the trainer's feature stores are
        computed from, ``FaceDataset.load_crop``), resized inside the INR engine to ``inr.resolution``.
        """
        t0 = time.perf_counter()
        images = np.stack([self.model_input(c) for c in crops])
        batch: dict[str, Any] = {
            "image": torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).to(self.device)
        }
        records: list[dict[str, Any] | None] = [None] * len(crops)
        maps: list[np.ndarray | None] = [None] * len(crops)
        if "heatmaps" in self.inputs:
            from fakescope.inr import heatmaps_for_images

            hm, recs = heatmaps_for_images(list(images), self.cfg.inr, self.device)
            maps = list(hm)
            records = [
                {"steps": int(r.steps), "psnr": round(float(r.final_psnr), 2), "reached": bool(r.reached)}
                for r in recs
            ]
            batch["heatmaps"] = torch.from_numpy(np.stack(hm)).float().to(self.device)
        if getattr(self.detector, "uses_image_embedding", False) and self.detector.backbone is not None:
            batch["clip"] = self._image_embeddings(batch["image"])
        self.timings["features"] += time.perf_counter() - t0
        return batch, records, maps

    def _image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen image embedding (CLIP, or its stand-in backbone) that the INFER family caches at
        training time, computed here once per face so ``bench`` can time it as a feature stage."""
        with torch.inference_mode():
            return self.detector.backbone(images).float()

    @torch.inference_mode()
    def classify(self, batch: dict[str, Any]) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.detector(batch)
        prob = out["prob"].float().cpu().numpy()
        self.timings["classifier"] += time.perf_counter() - t0
        return prob

    def score_crops(
        self, crops: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[dict[str, Any] | None], list[np.ndarray | None]]:
        """P(fake) for aligned crops, in batches of ``eval.batch_size``; also INR fit records and maps."""
        scores: list[np.ndarray] = []
        records: list[dict[str, Any] | None] = []
        maps: list[np.ndarray | None] = []
        bs = self.cfg.eval.batch_size
        for i in range(0, len(crops), bs):
            batch, recs, hm = self.build_batch(crops[i : i + bs])
            scores.append(self.classify(batch))
            records += recs
            maps += hm
        self.counts["faces"] += len(crops)
        return (np.concatenate(scores) if scores else np.zeros(0, np.float32)), records, maps

    # -- public -----------------------------------------------------------------------------------
    def predict(self, source: ImageInput, aligned: bool | None = None, progress: bool = False) -> Prediction:
        """Score an image (path, bytes, PIL image, array) or a video (path with a video suffix).

        Raises :class:`InputError` for an unreadable or unsupported file and :class:`NoFaceError` when
        no face is found (in an image, or in every sampled frame of a video under the ``drop`` policy).
        """
        aligned = self.options.aligned if aligned is None else aligned
        if _is_video(source):
            return self._predict_video(Path(source), aligned, progress)
        return self._predict_image(source, aligned)

    def _prediction(
        self, source: str, kind: Literal["image", "video"], faces: list[FaceResult], score: float | None
    ) -> Prediction:
        video = kind == "video"
        return Prediction(
            source=source,
            kind=kind,
            model=self.name,
            model_source=self.source,
            threshold=self.video_threshold if video else self.threshold,
            threshold_source=self.threshold_source,
            faces=faces,
            score=score,
            label=None if score is None else self.label_of(score, video),
        )

    def _predict_image(self, source: ImageInput, aligned: bool) -> Prediction:
        from fakescope.data.images import load_image_rgb

        name = _source_name(source)
        image = load_image_rgb(
            source, max_pixels=self.cfg.data.max_image_pixels, background=self.cfg.data.rgba_background
        )
        if aligned:
            faces = [_Face(image, None, None, None)]
        else:
            faces = self.find_faces(image, self.options.max_faces)
            if not faces:
                raise NoFaceError(
                    f"{name}: no face found (detector {self.cfg.preprocess.detector}); "
                    "pass --aligned if the image is already a face crop"
                )
        scores, records, maps = self.score_crops([f.crop for f in faces])
        results = [
            FaceResult(
                float(s),
                self.label_of(float(s)),
                f.box,
                f.landmarks,
                f.detection_score,
                inr=r,
                crop=self.model_input(f.crop),
                heatmaps=m,
            )
            for f, s, r, m in zip(faces, scores, records, maps, strict=True)
        ]
        agg = float(scores.max() if self.options.image_score == "max" else scores.mean())
        pred = self._prediction(name, "image", results, agg)
        pred.explained = list(range(len(results)))
        return pred

    def _predict_video(self, path: Path, aligned: bool, progress: bool) -> Prediction:
        from tqdm import tqdm

        from fakescope.preprocess.config import FrameSamplingConfig
        from fakescope.preprocess.detectors import select_faces
        from fakescope.preprocess.video import iter_frames, probe_video, select_frame_indices

        probe = probe_video(path)
        count = self.options.frames_per_video or self.cfg.eval.frames_per_video
        sel = select_frame_indices(probe.n_frames, FrameSamplingConfig(policy="even", count=count))
        if not sel.indices:
            raise InputError(f"{path}: the video has no frames")
        frames: list[tuple[int, float | None, np.ndarray]] = []
        per_frame: list[list[Any]] = []
        it = iter_frames(path, sel.indices, probe=probe, seek=self.cfg.preprocess.frames.seek)
        for fr in tqdm(
            it,
            total=len(sel.indices),
            desc=f"{path.name}: frames",
            unit="frame",
            disable=not progress,
            leave=False,
            dynamic_ncols=True,
        ):
            frames.append((fr.index, fr.time, fr.image))
            if aligned:
                per_frame.append([_Face(fr.image, None, None, None)])
            else:
                per_frame.append(self.find_faces(fr.image))
        if aligned:
            chosen: list[Any] = [faces[0] for faces in per_frame]
        else:
            # select_faces needs detections; keep the aligned crop alongside each detection.
            from fakescope.preprocess.detectors import FaceDetection

            dets = [
                [
                    FaceDetection(tuple(f.box), f.detection_score, np.asarray(f.landmarks, np.float32))
                    for f in faces
                ]
                for faces in per_frame
            ]
            picks = select_faces(dets, self.cfg.preprocess.face_select)
            chosen = [None if p is None else per_frame[i][dets[i].index(p)] for i, p in enumerate(picks)]
        scored = [i for i, c in enumerate(chosen) if c is not None]
        scores, records, maps = self.score_crops([chosen[i].crop for i in scored])
        policy = self.cfg.preprocess.no_face_policy
        frame_scores: list[float | None] = [None] * len(frames)
        faces: list[FaceResult] = []
        for k, i in enumerate(scored):
            s = float(scores[k])
            frame_scores[i] = s
            c = chosen[i]
            faces.append(
                FaceResult(
                    s,
                    self.label_of(s),
                    c.box,
                    c.landmarks,
                    c.detection_score,
                    frame=frames[i][0],
                    time_s=frames[i][1],
                    inr=records[k],
                    crop=self.model_input(c.crop),
                    heatmaps=maps[k],
                )
            )
        n_missing = len(frames) - len(scored)
        if policy == "score_half":
            frame_scores = [0.5 if s is None else s for s in frame_scores]
        kept = [s for s in frame_scores if s is not None]
        if not kept:
            raise NoFaceError(f"{path}: no face found in any of the {len(frames)} sampled frames")
        pred = self._prediction(str(path), "video", faces, float(np.mean(kept)))
        pred.frames = [
            FrameScore(frames[i][0], frames[i][1], frame_scores[i], len(per_frame[i]))
            for i in range(len(frames))
        ]
        pred.frames_sampled, pred.frames_no_face, pred.no_face_policy = len(frames), n_missing, policy
        if sel.short:
            pred.error = f"the video has only {probe.n_frames} frames; all were used"
        top = np.argsort(-np.array([f.score for f in faces]), kind="stable")[: self.options.explain_frames]
        pred.explained = sorted(int(i) for i in top)
        return pred

    def explain(self, prediction: Prediction, cfg: Any = None) -> list[Any]:
        """Explanations for the faces ``prediction.explained``: Grad-CAM on the RGB/CLIP branch, the
        DCT residual (AIRL family), the INR heatmaps (INFER family). See :mod:`fakescope.explain`."""
        from fakescope.explain.config import ExplainConfig
        from fakescope.explain.figures import dct_residual_map
        from fakescope.explain.gradcam import GradCamError, gradcam
        from fakescope.explain.report import FaceExplanation

        cfg = cfg or ExplainConfig()
        out = []
        for idx in prediction.explained:
            face = prediction.faces[idx]
            assert face.crop is not None
            ex = FaceExplanation(crop=face.crop, heatmaps=face.heatmaps)
            if cfg.gradcam:
                try:
                    batch, _, _ = (
                        self.build_batch([face.crop]) if face.heatmaps is None else self._batch_with(face)
                    )
                    # Without the cached embedding the detector runs its image backbone, which is what
                    # Grad-CAM hooks (INFER A.8: Grad-CAM on the CLIP branch).
                    batch.pop("clip", None)
                    ex.cam = gradcam(self.detector, batch)[0]
                except GradCamError as err:
                    ex.cam_note = str(err)
            if self.family == "airl":
                cutoff = cfg.dct_cutoff or self.cfg.model.dct_cutoff
                ex.dct_residual = dct_residual_map(face.crop, cutoff, cfg.dct_kind, self.cfg.model.dct_block)
            out.append(ex)
        return out

    def _batch_with(self, face: FaceResult) -> tuple[dict[str, Any], None, None]:
        # Reuse the heatmaps already fitted for this face instead of fitting the INR again.
        assert face.crop is not None and face.heatmaps is not None
        img = torch.from_numpy(np.array(face.crop)).permute(2, 0, 1)[None].float().div(255.0).to(self.device)
        batch: dict[str, Any] = {
            "image": img,
            "heatmaps": torch.from_numpy(face.heatmaps)[None].float().to(self.device),
        }
        return batch, None, None


def load(
    run_dir_or_checkpoint: str | os.PathLike[str],
    device: str = "cpu",
    options: DetectOptions | None = None,
    prefer: str = "best",
) -> FaceForgeryDetector:
    """Load a trained run (its ``best`` checkpoint) or a checkpoint file for inference.

    Raises :class:`fakescope.errors.ModelLoadError` with one line for a missing run directory,
    unreadable files, or weights that belong to another detector.
    """
    from fakescope.train.checkpoint import load_detector
    from fakescope.utils.runtime import resolve_device

    dev = resolve_device(device)
    detector, cfg, meta = load_detector(run_dir_or_checkpoint, dev, prefer=prefer)
    return FaceForgeryDetector(detector, cfg, meta, dev, str(run_dir_or_checkpoint), options)


def expand_inputs(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to score from command-line paths: files as given, folders searched recursively for images
    and videos (sorted). Returns ``(files, [(path, error line)])`` for paths that do not exist."""
    from fakescope.preprocess.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
            )
            if not found:
                missing.append((str(p), f"{p}: folder holds no image or video files"))
            files += found
        elif p.is_file():
            files.append(p)
        else:
            missing.append((str(p), f"{p}: no such file or folder"))
    return files, missing


@dataclass
class DetectOutcome:
    """What :func:`detect_paths` produced: predictions, per-input error lines, the report index."""

    predictions: list[Prediction]
    errors: list[tuple[str, str]]
    report_index: Path | None = None

    def table(self) -> str:
        """A plain-text table, one row per input (and one per face when an image has several)."""
        rows = [("input", "kind", "faces", "P(fake)", "label", "threshold")]
        for p in self.predictions:
            score = "—" if p.score is None else f"{p.score:.3f}"
            faces = str(len(p.faces)) + (f" ({p.frames_no_face} frames no face)" if p.frames_no_face else "")
            rows.append((p.source, p.kind, faces, score, p.label or "—", f"{p.threshold:.3f}"))
            if p.kind == "image" and len(p.faces) > 1:
                for i, f in enumerate(p.faces):
                    rows.append(
                        (
                            f"  face {i + 1} {f.box and [round(v) for v in f.box]}",
                            "",
                            "",
                            f"{f.score:.3f}",
                            f.label,
                            "",
                        )
                    )
        for src, _ in self.errors:
            rows.append((src, "error (see above)", "", "", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def detect_paths(
    detector: FaceForgeryDetector,
    paths: Sequence[str | os.PathLike[str]],
    report_dir: str | os.PathLike[str] | None = None,
    gradcam: bool = True,
    progress: bool = True,
    banner: str | None = None,
    aligned: Sequence[bool] | None = None,
) -> DetectOutcome:
    """Score every file; a bad file costs one error line and the others go on. With ``report_dir``,
    write a report folder per input (:func:`fakescope.explain.report.write_report`) and an index.
    ``aligned`` optionally says per path whether it is already an aligned crop."""
    from tqdm import tqdm

    preds: list[Prediction] = []
    errors: list[tuple[str, str]] = []
    entries: list[tuple[str, Path | None, Prediction | None, str | None]] = []
    if report_dir is not None:
        from fakescope.explain.config import ExplainConfig
        from fakescope.explain.report import report_name, write_index, write_report

        ecfg = ExplainConfig(gradcam=gradcam)
    bar = tqdm(
        list(paths), desc="detect", unit="file", disable=not progress or len(paths) < 2, dynamic_ncols=True
    )
    for i, path in enumerate(bar):
        try:
            pred = detector.predict(path, aligned=None if aligned is None else aligned[i], progress=progress)
        except FakescopeError as err:
            msg = str(err) if str(path) in str(err) else f"{path}: {err}"
            errors.append((str(path), msg))
            entries.append((str(path), None, None, msg))
            continue
        preds.append(pred)
        rep = None
        if report_dir is not None:
            rep = write_report(
                pred,
                detector.explain(pred, ecfg),
                Path(report_dir) / report_name(str(path), i),
                ecfg,
                banner=banner,
            )
        entries.append((str(path), rep, pred, None))
    index = write_index(entries, report_dir, banner=banner) if report_dir is not None else None
    return DetectOutcome(preds, errors, index)
