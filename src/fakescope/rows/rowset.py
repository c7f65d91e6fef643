"""The rows a job reads, by split, and every row it left out with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from fakescope.data.manifest import ManifestRow

__all__ = ["SEEN", "TOO_SMALL", "UNREADABLE", "Exclusion", "RowSet"]

#: The image does not decode (``detail`` holds the error).
UNREADABLE = "unreadable"
#: The crop decodes but its short side is below the minimum face size (``detail`` names both).
TOO_SMALL = "too_small"
#: The image's bytes equal one the run trained or selected on (``split`` names the run's split).
SEEN = "seen"


class Exclusion(NamedTuple):
    """Why a row was left out: ``reason`` (:data:`UNREADABLE`, :data:`TOO_SMALL` or :data:`SEEN`), the
    split it was counted under, and the detail a user reads (the decode error, the crop's size)."""

    split: str
    reason: str
    detail: str = ""


@dataclass
class RowSet:
    """Rows by split (``train``/``val`` for training; the scored part for evaluation) and the rows left
    out, by path."""

    splits: dict[str, list[ManifestRow]]
    excluded: dict[str, Exclusion] = field(default_factory=dict)

    def count(self, reason: str, split: str | None = None) -> int:
        """How many rows were left out for ``reason`` (in ``split``, when given)."""
        return sum(1 for e in self.excluded.values() if e.reason == reason and split in (None, e.split))

    def without(self, dropped: dict[str, Exclusion]) -> RowSet:
        """This set less the rows whose path is in ``dropped``, which join the exclusions."""
        return RowSet(
            {s: [r for r in rows if r.path not in dropped] for s, rows in self.splits.items()},
            {**self.excluded, **dropped},
        )

    def replace(self, **splits: list[ManifestRow]) -> RowSet:
        """The same exclusions with some splits' rows replaced."""
        return RowSet({**self.splits, **splits}, dict(self.excluded))
