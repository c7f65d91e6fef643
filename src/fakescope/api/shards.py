"""``fakescope merge``: build the one output of a sharded job from its finished shards (docs/scale.md).

Each shard's marker (``OUT/shards/K-of-N/shard.json``, :mod:`fakescope.utils.sharding`) names the
command that wrote it; the merge of that command builds the same files a one-process run writes:
``prepare`` the crop manifest and its tables, ``fit-inr`` records.csv and summary.json, ``evaluate``
the predictions, the metrics (computed once on the merged predictions) and the plots.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fakescope.errors import InputError
from fakescope.utils.sharding import read_shards

__all__ = ["merge_shards", "MERGERS"]

#: command named in a shard marker -> "module:function" that merges it
MERGERS = {
    "prepare": "fakescope.preprocess.pipeline:merge_prepare",
    "fit-inr": "fakescope.inr.run:merge_fit",
    "evaluate": "fakescope.eval.evaluate:merge_evaluate",
}


def merge_shards(out_dir: str | os.PathLike[str], count: int | None = None) -> tuple[str, Any]:
    """Merge the shards under ``out_dir``; returns (command, what that command's merge returned)."""
    import importlib

    markers = read_shards(out_dir, count)
    command = markers[0]["command"]
    if command not in MERGERS:
        raise InputError(f"{Path(out_dir) / 'shards'}: shards of an unknown command {command!r}")
    module, func = MERGERS[command].split(":")
    return command, getattr(importlib.import_module(module), func)(out_dir, markers[0]["count"])
