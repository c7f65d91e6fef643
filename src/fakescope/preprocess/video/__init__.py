"""Video decoding and frame sampling with PyAV (docs/design.md, "Preprocessing"; INFER §3.1,
AIRL §IV-B).

Frame indices always mean *presentation order* (0 = first displayed frame), whatever the frame rate:
for a variable-frame-rate video "evenly spaced" is evenly spaced in frame count. The sampler finds a
frame by seeking to the keyframe before it and decoding forward until the frame's exact timestamp
(taken from the demuxed packets, which costs no decoding). When the container gives no timestamps,
or a seek lands somewhere unexpected, it falls back to decoding the whole video and counting frames,
so both paths return the same frames (the tests check this on the real DFDC videos).

That seek-and-decode-forward path is kept as ``decode="legacy"``. The default (``"auto"``)
plans the work per video from the probe: it feeds the decoder packet by packet and leaves out the
packets no sampled frame can depend on. A stretch with no sampled frame up to the next needed keyframe is
skipped (read past, or seeked over when it is long), and H.264 non-reference pictures that are not
sampled are not decoded at all: nothing is predicted from them, so every sampled frame is
bit-identical to the one full decoding returns (tested), for about two thirds of the decoding CPU
time on the DFDC files. ``prefetch`` overlaps decoding with the caller's face detection in a background thread
(PyAV and onnxruntime both release the GIL).

Rotation metadata (the display matrix, or the legacy ``rotate`` tag) is applied, so frames come out
the way a player shows them. Empty, truncated and non-video files raise :class:`InputError` naming
the file; a caller processing many files catches it and goes on with the others.

The parts: :mod:`.probe` (opening, timestamps, frame count), :mod:`.sampling` (which frames),
:mod:`.plan` (which packets planned decoding feeds the decoder), :mod:`.decode` (the frames themselves)
and :mod:`.prefetch` (decoding ahead in a background thread).
"""

from fakescope.data.images import IMAGE_EXTENSIONS
from fakescope.preprocess.video.decode import (
    DECODE_STRATEGIES,
    DecodedFrame,
    iter_frames,
    read_frames,
    video_frames,
)
from fakescope.preprocess.video.prefetch import Prefetch, prefetch
from fakescope.preprocess.video.probe import (
    VIDEO_EXTENSIONS,
    VideoProbe,
    count_frames_by_decoding,
    is_video_path,
    probe_video,
)
from fakescope.preprocess.video.sampling import FrameSelection, select_frame_indices

__all__ = [
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "DecodedFrame",
    "VideoProbe",
    "FrameSelection",
    "is_video_path",
    "probe_video",
    "select_frame_indices",
    "iter_frames",
    "read_frames",
    "count_frames_by_decoding",
    "prefetch",
    "Prefetch",
    "video_frames",
    "DECODE_STRATEGIES",
]
