"""The Python API: load a trained run and score images and videos.

>>> import fakescope
>>> det = fakescope.load("runs/airl_dfdc", device="cpu")
>>> pred = det.predict("photo.jpg")          # or a PIL image, a numpy array, a video path
>>> pred.score, pred.label, [f.box for f in pred.faces]

- :mod:`fakescope.api.detector`: :class:`FaceForgeryDetector` (detect, align, score, explain) and
  :func:`load`;
- :mod:`fakescope.api.video`: video sampling and the video score;
- :mod:`fakescope.api.results`: :class:`Prediction` and its parts, with their JSON form;
- :mod:`fakescope.api.batch`: many files at once, with reports (:func:`detect_paths`).
"""

from fakescope.api.batch import DetectOutcome, detect_paths, expand_inputs
from fakescope.api.detector import FaceForgeryDetector, load
from fakescope.api.results import DetectOptions, FaceResult, FrameScore, Prediction
from fakescope.inference.faces import FaceCrop

#: The name :class:`FaceCrop` had when it lived in :mod:`fakescope.api.detector`; kept so existing
#: imports keep working (:class:`fakescope.preprocess.align.AlignedFace` is the alignment result).
AlignedFace = FaceCrop

__all__ = [
    "AlignedFace",
    "DetectOptions",
    "DetectOutcome",
    "FaceCrop",
    "FaceForgeryDetector",
    "FaceResult",
    "FrameScore",
    "Prediction",
    "detect_paths",
    "expand_inputs",
    "load",
]
