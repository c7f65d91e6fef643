"""Which frames of a video to take: the sampling policies of ``preprocess.frames``, as frame indices
in presentation order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fakescope.errors import ConfigError
from fakescope.preprocess.config import FrameSamplingConfig

__all__ = ["FrameSelection", "select_frame_indices"]


@dataclass(frozen=True)
class FrameSelection:
    """The frame indices a sampling policy picked. ``short`` is True when the video has fewer frames
    than asked for, in which case every frame is used and the shortfall is reported."""

    indices: tuple[int, ...]
    requested: int | None
    short: bool


def select_frame_indices(
    n_frames: int, sampling: FrameSamplingConfig, label: int | None = None
) -> FrameSelection:
    """Pick frame indices by ``sampling.policy`` (docs/design.md, "Preprocessing": INFER 10 fake / 40 real, AIRL 10 even).

    ``even`` takes the centre of each of ``count`` equal segments, which skips the first and last
    frames (often fades or black) and never repeats a frame.
    """
    if n_frames <= 0:
        return FrameSelection((), None, False)
    policy = sampling.policy
    if policy == "all":
        return FrameSelection(tuple(range(n_frames)), None, False)
    if policy == "every_k":
        return FrameSelection(tuple(range(0, n_frames, sampling.every_k)), None, False)
    if policy == "even":
        count = sampling.count
    elif policy == "per_label":
        if label not in (0, 1):
            raise ConfigError("preprocess.frames.policy=per_label needs a real/fake label for every input")
        count = sampling.real_count if label == 0 else sampling.fake_count
    else:  # pragma: no cover - pydantic restricts the literal
        raise ConfigError(f"preprocess.frames.policy: unknown policy {policy!r}")
    if count >= n_frames:
        return FrameSelection(tuple(range(n_frames)), count, count > n_frames)
    idx = np.floor((np.arange(count) + 0.5) * n_frames / count).astype(int)
    return FrameSelection(tuple(int(i) for i in idx), count, False)
