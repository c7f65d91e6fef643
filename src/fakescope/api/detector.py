"""The detector object: a trained run ready to score images (and, through :mod:`fakescope.api.video`,
videos).

A face goes through the same path as the training crops (docs/design.md, "Preprocessing"; INFER §3.1,
AIRL §IV-B): the run's face detector (RetinaFace or MTCNN), 5-landmark similarity alignment with the
run's margin, size and border fill (``preprocess.align``), then :mod:`fakescope.inference`, which
builds the model inputs exactly as training and ``evaluate`` do (resize to ``data.image_size``, INR
heatmaps for the INFER family, §3.3-3.4, frozen embeddings) and runs the classifier. The label uses
the threshold chosen on the run's **validation** split (saved in the checkpoint), never 0.5 silently.

Two engines run the classifier: ``torch`` (the run's checkpoint) and ``onnx`` (a file
written by ``fakescope export``, run by onnxruntime through
:class:`~fakescope.inference.onnx_engine.OnnxClassifier`). Everything before the classifier is the
same code for both, so they give the same scores (docs/onnx.md).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from fakescope.api.results import DetectOptions, FaceResult, ImageInput, Prediction, source_name
from fakescope.errors import InputError, ModelLoadError, NoFaceError
from fakescope.inference.calibration import RunExtras
from fakescope.inference.faces import FaceCrop
from fakescope.inference.inputs import batch_for_crops, detector_inputs, model_image
from fakescope.inference.predict import predict_batch

if TYPE_CHECKING:
    from fakescope.api.video import VideoSettings

__all__ = ["FaceForgeryDetector", "load"]


#: Above this share of the aligned crop filled from outside the image, the input is probably already a
#: face crop: re-aligning it zooms out (docs/detect.md "Borders"), so detect says so.
TIGHT_CROP_SHARE = 0.25


#: A face whose detector box covers more than this share of the image ("most of it") leaves no room for
#: the alignment's margin: the image is already a face crop and is scored as it is, as with --aligned.
#: For scale: a face covers a few percent of a video frame and about 40 % of fakescope's own 30 %-margin
#: crop (re-aligning that one changes little), while re-aligning a face that fills more than half the
#: image fills a quarter or more of the new crop from outside it.
FACE_FILLS_IMAGE = 0.5


def _tight_crop_note(faces: Sequence[FaceResult], border: str, crop: FaceCrop | None = None) -> str | None:
    """The note on an image: for ``crop`` (a face filling most of the image, scored as it is), which
    path was taken and why; else, when re-aligning took more than :data:`TIGHT_CROP_SHARE` of a crop
    from outside the image, that it did."""
    if crop is not None:
        return (
            f"the face fills most of the image: scored as an aligned face crop, as with --aligned "
            f"(re-aligning it would take {crop.outside_frame or 0.0:.0%} of the crop from outside the image)"
        )
    worst = max((f.outside_frame or 0.0 for f in faces), default=0.0)
    if worst <= TIGHT_CROP_SHARE:
        return None
    return (
        f"{worst:.0%} of the aligned face crop lies outside the image (filled: {border}); if the input is "
        "already a face crop, score it with --aligned (aligned=True) instead"
    )


def _box_share(box: Sequence[float] | None, shape: tuple[int, ...]) -> float:
    """The share of the image that a face box covers (the box clipped to the image)."""
    if box is None:
        return 0.0
    h, w = shape[:2]
    x1, y1, x2, y2 = box
    iw = max(0.0, min(x2, w) - max(x1, 0.0))
    ih = max(0.0, min(y2, h) - max(y1, 0.0))
    return iw * ih / float(w * h)


def _is_video(src: ImageInput) -> bool:
    from fakescope.preprocess.video.probe import is_video_path

    return isinstance(src, (str, os.PathLike)) and is_video_path(src)


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
        #: "onnx" when the classifier is an ONNX export run by onnxruntime, else "torch".
        self.engine: Literal["torch", "onnx"] = getattr(detector, "engine", "torch")
        self.cfg = cfg
        self.meta = meta
        self.device = device
        self.source = source
        self.options = options or DetectOptions()
        self.name: str = str(meta.get("detector") or getattr(detector, "name", cfg.model.name))
        self.inputs: frozenset[str] = detector_inputs(detector)
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
        #: the run's ``calibration.json`` and ``familiarity.safetensors``, when it has them: a calibrated
        #: P(fake) per face, the operating threshold chosen at a false-positive rate on validation reals,
        #: and how far each face lies from the training data
        self.extras = RunExtras.load(source, meta, self.engine)
        self.calibration, self.familiarity = self.extras.calibration, self.extras.familiarity
        if self.familiarity is not None and self.engine == "torch":
            # a familiarity model that reads the network's stages gets their pooled outputs in every
            # forward pass's output dict (forward hooks; a few hundred floats a face)
            self.familiarity.attach(self.detector)
        if self.calibration is not None:
            self.threshold = self.calibration.threshold
            self.video_threshold = self.calibration.video_threshold
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
        """The verdict for a raw score: the run's validation threshold, or with a calibration its
        operating threshold (on the raw score; the calibrators are monotone, so this is the same verdict
        as the calibrated probability against the calibrated threshold)."""
        return "fake" if score >= (self.video_threshold if video else self.threshold) else "real"

    # -- stages -----------------------------------------------------------------------------------
    def find_faces(self, image: np.ndarray, max_faces: int | None = None) -> list[FaceCrop]:
        """Detect and align every face of an RGB uint8 image, largest first."""
        from fakescope.preprocess.align import align_face, outside_share
        from fakescope.preprocess.detectors import detect_tiled

        t0 = time.perf_counter()
        # detect_tiled: a banner-shaped frame is searched in tiles, not shrunk whole to detect_max_side
        dets = sorted(detect_tiled(self.face_detector, image), key=lambda d: d.area, reverse=True)
        if max_faces is not None:
            dets = dets[:max_faces]
        faces = []
        for d in dets:
            align = self.cfg.preprocess.align
            aligned = align_face(image, d.landmarks, align, box=d.box)
            faces.append(
                FaceCrop(
                    aligned.image,
                    [round(float(v), 1) for v in d.box],
                    np.asarray(d.landmarks, np.float64).round(2).tolist(),
                    float(d.score),
                    outside_share(aligned.matrix, image.shape, align.size),
                )
            )
        self.timings["detect_align"] += time.perf_counter() - t0
        return faces

    def model_input(self, crop: np.ndarray) -> np.ndarray:
        """The crop at the detector's input size (:func:`fakescope.inference.model_image`)."""
        return model_image(crop, self.cfg)

    def build_batch(
        self, crops: Sequence[np.ndarray]
    ) -> tuple[dict[str, Any], list[dict[str, Any] | None], list[np.ndarray | None]]:
        """The batch for aligned crops (:func:`fakescope.inference.batch_for_crops`), with each crop's INR
        fit record and heatmaps (``None`` for detectors without heatmaps)."""
        t0 = time.perf_counter()
        batch, built = batch_for_crops(crops, self.cfg, self.device, self.detector)
        records: list[dict[str, Any] | None] = [None] * len(crops)
        maps: list[np.ndarray | None] = [None] * len(crops)
        if built.fit_records is not None:
            records = [
                {"steps": int(r.steps), "psnr": round(float(r.final_psnr), 2), "reached": bool(r.reached)}
                for r in built.fit_records
            ]
            maps = list(built.stores["heatmaps"])
        self.timings["features"] += time.perf_counter() - t0
        return batch, records, maps

    def classify(self, batch: dict[str, Any]) -> np.ndarray:
        t0 = time.perf_counter()
        out = predict_batch(self.detector, batch, self.device, self.cfg.train.amp, self.cfg.train.amp_dtype)
        self.extras.keep(out)  # the familiarity of these faces, for face_results
        self.timings["classifier"] += time.perf_counter() - t0
        return out["prob"].numpy()

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

    def check_scores(self, name: str, scores: np.ndarray) -> None:
        """A non-finite score is an error for the input, never a label (damaged weights, or an input
        the model cannot score): raise :class:`InputError` naming it."""
        if scores.size and not bool(np.isfinite(scores).all()):
            bad = int((~np.isfinite(scores)).sum())
            raise InputError(
                f"{name}: the model gave a non-finite score (NaN or infinity) for {bad} of {scores.size} "
                f"face(s); no verdict (are the weights of {self.source} damaged?)"
            )

    def face_results(
        self,
        faces: Sequence[FaceCrop],
        scores: np.ndarray,
        records: Sequence[dict[str, Any] | None],
        maps: Sequence[np.ndarray | None],
        frames: Sequence[tuple[int, float | None]] | None = None,
    ) -> list[FaceResult]:
        """One :class:`FaceResult` per scored face (``frames``: each face's frame index and time), with
        its calibrated probability and familiarity when the run has them."""
        extras = self.extras.per_face(scores)
        out = []
        for k, (f, s, r, m) in enumerate(zip(faces, scores, records, maps, strict=True)):
            frame, time_s = frames[k] if frames is not None else (None, None)
            out.append(
                FaceResult(
                    float(s),
                    self.label_of(float(s)),
                    f.box,
                    f.landmarks,
                    f.detection_score,
                    frame=frame,
                    time_s=time_s,
                    inr=r,
                    outside_frame=f.outside_frame,
                    crop=self.model_input(f.crop),
                    heatmaps=m,
                    probability=extras[k][0],
                    familiarity=extras[k][1],
                )  # fmt: skip
            )
        return out

    def score_faces(
        self, name: str, faces: Sequence[FaceCrop], frames: Sequence[tuple[int, float | None]] | None = None
    ) -> list[FaceResult]:
        """Score faces found in the input ``name``: :meth:`score_crops`, :meth:`check_scores`, then
        :meth:`face_results`."""
        self.extras.clear()
        scores, records, maps = self.score_crops([f.crop for f in faces])
        self.check_scores(name, scores)
        return self.face_results(faces, scores, records, maps, frames)

    def video_settings(self) -> VideoSettings:
        """How :func:`~fakescope.api.video.predict_video` samples and scores a video for this run."""
        from fakescope.api.video import VideoSettings

        return VideoSettings(
            frames_per_video=self.options.frames_per_video or self.cfg.eval.frames_per_video,
            seek=self.cfg.preprocess.frames.seek,
            face_select=self.cfg.preprocess.face_select,
            no_face_policy=self.cfg.preprocess.no_face_policy,
            explain_frames=self.options.explain_frames,
        )

    # -- public -----------------------------------------------------------------------------------
    def predict(self, source: ImageInput, aligned: bool | None = None, progress: bool = False) -> Prediction:
        """Score an image (path, bytes, PIL image, array) or a video (path with a video suffix).

        Raises :class:`InputError` for an unreadable or unsupported file and :class:`NoFaceError` when
        no face is found (in an image, or in every sampled frame of a video under the ``drop`` policy).
        """
        aligned = self.options.aligned if aligned is None else aligned
        if _is_video(source):
            from fakescope.api.video import predict_video

            return predict_video(self, Path(source), aligned, progress)
        return self._predict_image(source, aligned)

    def prediction(
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
            probability=None
            if video or score is None or self.calibration is None
            else float(self.calibration.apply([score])[0]),
        )

    def _predict_image(self, source: ImageInput, aligned: bool) -> Prediction:
        from fakescope.data.images import face_too_small, load_image_rgb

        name = source_name(source)
        image = load_image_rgb(
            source, max_pixels=self.cfg.data.max_image_pixels, background=self.cfg.data.rgba_background
        )
        whole: FaceCrop | None = None  # the largest face, when it fills most of the image
        if not aligned:
            faces = self.find_faces(image, self.options.max_faces)
            if not faces:
                raise NoFaceError(
                    f"{name}: no face found (detector {self.cfg.preprocess.detector}); "
                    "pass --aligned if the image is already a face crop"
                )
            # A face filling most of the image leaves no room for the alignment's margin: re-aligning
            # would fill that margin from outside the image (a quarter to three quarters of the crop on
            # tight crops) and score a different picture. The image is a face crop: score it as it is.
            if _box_share(faces[0].box, image.shape) > FACE_FILLS_IMAGE:
                whole = faces[0]
        if aligned or whole is not None:
            if (small := face_too_small(image, name)) is not None:  # no verdict on a 1-px "face"
                raise small
            # scored like --aligned; the box and landmarks still say where the face is
            found = (
                (None, None, None) if whole is None else (whole.box, whole.landmarks, whole.detection_score)
            )
            faces = [FaceCrop(image, *found)]
        results = self.score_faces(name, faces)
        scores = np.array([r.score for r in results])
        if whole is not None:
            results[0].path = "aligned-crop"
        agg = float(scores.max() if self.options.image_score == "max" else scores.mean())
        pred = self.prediction(name, "image", results, agg)
        pred.explained = list(range(len(results)))
        pred.error = _tight_crop_note(results, self.cfg.preprocess.align.border, whole)
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
            if cfg.gradcam and self.engine == "onnx":
                ex.cam_note = (
                    "Grad-CAM needs gradients, which an ONNX graph does not give: use --engine torch"
                )
            elif cfg.gradcam:
                try:
                    # Reuse the heatmaps already fitted for this face instead of fitting the INR again.
                    hm = None if face.heatmaps is None else [face.heatmaps]
                    # Without the cached embedding the detector runs its image backbone, which is what
                    # Grad-CAM hooks (INFER A.8: Grad-CAM on the CLIP branch).
                    batch, _ = batch_for_crops(
                        [face.crop], self.cfg, self.device, self.detector, heatmaps=hm, embeddings=False
                    )
                    ex.cam = gradcam(self.detector, batch)[0]
                except GradCamError as err:
                    ex.cam_note = str(err)
            if self.family == "airl":
                cutoff = cfg.dct_cutoff or self.cfg.model.dct_cutoff
                ex.dct_residual = dct_residual_map(face.crop, cutoff, cfg.dct_kind, self.cfg.model.dct_block)
            out.append(ex)
        return out


def load(
    run_dir_or_checkpoint: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    options: DetectOptions | None = None,
    prefer: str = "best",
    engine: Literal["torch", "onnx"] = "torch",
) -> FaceForgeryDetector:
    """Load a trained run (its ``best`` checkpoint) or a checkpoint file for inference; with
    ``engine="onnx"``, a ``.onnx`` file written by ``fakescope export`` (it carries the run's config and
    thresholds, so the run itself is not needed; docs/onnx.md).

    With no run, the detector shipped inside the package (:mod:`fakescope.inference.shipped`, its card
    in docs/model-card.md).

    Raises :class:`fakescope.errors.ModelLoadError` with one line for a missing run directory,
    unreadable files, weights that belong to another detector, or a file given to the wrong engine.
    """
    from fakescope.inference.shipped import shipped_model_dir
    from fakescope.utils.runtime import resolve_device

    if run_dir_or_checkpoint is None:
        if engine != "torch":
            raise ModelLoadError(
                "--engine onnx needs a .onnx file (--model FILE); the shipped detector runs on torch"
            )
        run_dir_or_checkpoint = shipped_model_dir()

    dev = resolve_device(device)
    is_onnx_file = str(run_dir_or_checkpoint).lower().endswith(".onnx")
    if engine == "onnx":
        from fakescope.inference.onnx_engine import load_onnx_detector

        if not is_onnx_file:
            raise ModelLoadError(
                f"{run_dir_or_checkpoint}: --engine onnx takes a .onnx file; write one with "
                f"fakescope export --run {run_dir_or_checkpoint} --onnx model.onnx"
            )
        onnx_detector, cfg, meta = load_onnx_detector(run_dir_or_checkpoint, dev)
        return FaceForgeryDetector(onnx_detector, cfg, meta, dev, str(run_dir_or_checkpoint), options)
    if engine != "torch":
        raise ModelLoadError(f"engine {engine!r}: choose torch or onnx")
    if is_onnx_file:
        raise ModelLoadError(f"{run_dir_or_checkpoint}: an ONNX export; score it with --engine onnx")
    from fakescope.inference.checkpoint import load_detector

    detector, cfg, meta = load_detector(run_dir_or_checkpoint, dev, prefer=prefer)
    return FaceForgeryDetector(detector, cfg, meta, dev, str(run_dir_or_checkpoint), options)
