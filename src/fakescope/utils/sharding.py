"""Which share of a job's inputs this process does, and the shard folders a merge reads back
(docs/scale.md).

A job (``prepare``, ``fit-inr``, ``evaluate --run``) is split into ``N`` shards by the field's own
launchers: ``torchrun`` (``RANK``/``WORLD_SIZE``), or one process per array task with ``--shard K/N``
(Slurm job arrays, Kubernetes indexed jobs). ``K`` is **0-based** (``0 <= K < N``), like ``RANK``,
``$SLURM_ARRAY_TASK_ID`` of ``--array=0-(N-1)`` and ``$JOB_COMPLETION_INDEX``. ``--shard auto`` reads
``SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN`` and ``SLURM_ARRAY_TASK_COUNT``.

Items (videos, images, manifest rows) go to shards by their index in the job's full, ordered list,
modulo ``N``: every shard computes the same list, so the split is deterministic, and shard sizes differ
by at most one item. Each shard writes ``OUT/shards/K-of-N/`` and, last and atomically, its marker
``shard.json``: the command, the item indices it owns, a fingerprint of the whole item list and
config, and what the merge needs. A shard folder without a marker is a shard that did not finish;
the merge names it and refuses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fakescope.errors import ConfigError, InputError
from fakescope.utils.atomic import atomic_write_json

__all__ = [
    "Shard",
    "SINGLE",
    "MARKER",
    "resolve_shard",
    "parse_shard",
    "fingerprint",
    "begin_shard",
    "finish_shard",
    "read_shards",
    "check_coverage",
    "shard_group",
    "wait_for_all_shards",
]

MARKER = "shard.json"
MARKER_VERSION = 1
_DIR = re.compile(r"^(\d+)-of-(\d+)$")
# A rank waits at the barrier until the slowest shard is done, which on real data can be hours; the
# process-group default (30 min) would kill a healthy job.
_BARRIER_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based); ``launcher`` is how it was given: ``single``,
    ``--shard``, ``slurm`` or ``torchrun``."""

    index: int = 0
    count: int = 1
    launcher: str = "single"

    @property
    def enabled(self) -> bool:
        return self.count > 1

    @property
    def name(self) -> str:
        return f"{self.index}-of-{self.count}"

    @property
    def under_torchrun(self) -> bool:
        return self.launcher == "torchrun" and self.enabled

    def take(self, n_items: int) -> list[int]:
        """The indices of ``n_items`` that this shard owns: ``index, index + count, ...``."""
        return list(range(self.index, n_items, self.count))

    def folder(self, out: str | os.PathLike[str]) -> Path:
        return Path(out) / "shards" / self.name


SINGLE = Shard()


def _int(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ConfigError(f"{what}: expected a whole number, got {value!r}") from None


def parse_shard(text: str, env: Mapping[str, str] | None = None) -> Shard:
    """``K/N`` (0-based K) or ``auto`` (the Slurm array task of ``env``) -> :class:`Shard`."""
    env = os.environ if env is None else env
    if text.strip().lower() == "auto":
        if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
            raise ConfigError(
                "--shard auto: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set (not a Slurm "
                "array task); give --shard K/N"
            )
        task = _int(env["SLURM_ARRAY_TASK_ID"], "SLURM_ARRAY_TASK_ID")
        low = _int(env.get("SLURM_ARRAY_TASK_MIN", "0"), "SLURM_ARRAY_TASK_MIN")
        count = _int(env["SLURM_ARRAY_TASK_COUNT"], "SLURM_ARRAY_TASK_COUNT")
        index, launcher, shown = task - low, "slurm", f"auto (Slurm task {task} of {low}..)"
    else:
        parts = text.split("/")
        if len(parts) != 2:
            raise ConfigError(f"--shard {text}: expected K/N (e.g. 0/4, K counted from 0) or auto")
        index, count = _int(parts[0], f"--shard {text}"), _int(parts[1], f"--shard {text}")
        launcher, shown = "--shard", text
    if count < 1:
        raise ConfigError(f"--shard {shown}: N must be at least 1, got {count}")
    if not 0 <= index < count:
        raise ConfigError(
            f"--shard {shown}: K counts from 0 and must be below N, got K={index} for N={count}"
        )
    return Shard(index, count, launcher)


def resolve_shard(text: str | None, env: Mapping[str, str] | None = None) -> Shard:
    """The shard of this process: ``--shard`` when given, else torchrun's ``RANK``/``WORLD_SIZE``, else
    :data:`SINGLE`. Both at once is refused: each rank of a torchrun job is already one shard."""
    env = os.environ if env is None else env
    world = _int(env.get("WORLD_SIZE", "1"), "WORLD_SIZE")
    if text is not None:
        if world > 1:
            raise ConfigError(f"--shard {text} under torchrun (WORLD_SIZE={world}): give one or the other")
        return parse_shard(text, env)
    if world > 1:
        return Shard(_int(env.get("RANK", "0"), "RANK"), world, "torchrun")
    return SINGLE


def fingerprint(parts: Iterable[str]) -> str:
    """Hash of the full, ordered item list (and the config that shapes the outputs): two shards with
    different fingerprints were run on different inputs and cannot be merged."""
    h = hashlib.sha256()
    for p in parts:
        h.update(os.fsencode(p))
        h.update(b"\0")
    return h.hexdigest()[:16]


def begin_shard(out: str | os.PathLike[str], shard: Shard) -> Path:
    """Create this shard's folder and drop any marker of an earlier attempt, so a shard rerun that
    dies again reads as unfinished, not as the old finished one."""
    folder = shard.folder(out)
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (folder / MARKER).unlink()
    return folder


def finish_shard(
    out: str | os.PathLike[str],
    shard: Shard,
    command: str,
    *,
    total: int,
    items: Sequence[int],
    print_: str,
    payload: dict[str, Any],
) -> Path:
    """Write the marker last and atomically: it is what says the shard is complete."""
    path = shard.folder(out) / MARKER
    atomic_write_json(
        path,
        {
            "version": MARKER_VERSION,
            "command": command,
            "index": shard.index,
            "count": shard.count,
            "total": int(total),
            "items": [int(i) for i in items],
            "fingerprint": print_,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "payload": payload,
        },
        indent=None,
    )
    return path


def _counts_present(root: Path) -> set[int]:
    found = set()
    for d in root.iterdir() if root.is_dir() else []:
        m = _DIR.match(d.name)
        if m and d.is_dir():
            found.add(int(m.group(2)))
    return found


def read_shards(
    out: str | os.PathLike[str], count: int | None = None, command: str | None = None
) -> list[dict[str, Any]]:
    """Every shard's marker, in shard order; one clear :class:`InputError` naming each missing or
    unfinished shard, or shards made from different inputs."""
    out = Path(out)
    root = out / "shards"
    counts = _counts_present(root)
    if not counts:
        raise InputError(f"{out}: no shards/K-of-N folders to merge (run the command with --shard K/N first)")
    if count is None:
        if len(counts) > 1:
            listed = ", ".join(str(c) for c in sorted(counts))
            raise InputError(f"{root}: holds shards of several counts ({listed}); give --shards N")
        count = counts.pop()
    markers: list[dict[str, Any]] = []
    missing, unfinished = [], []
    for k in range(count):
        folder = root / f"{k}-of-{count}"
        if not folder.is_dir():
            missing.append(f"{k}-of-{count}")
            continue
        try:
            marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            unfinished.append(f"{k}-of-{count}")
            continue
        if marker.get("version") != MARKER_VERSION:
            unfinished.append(f"{k}-of-{count}")
            continue
        if command and marker.get("command") != command:
            raise InputError(
                f"{folder}: written by `fakescope {marker.get('command')}`, not `{command}`; use another --out"
            )
        markers.append(marker)
    if missing or unfinished:
        said = [f"shard {s} is missing" for s in missing] + [f"shard {s} did not finish" for s in unfinished]
        raise InputError(
            f"{out}: cannot merge: {'; '.join(said)} (rerun it alone with --shard K/N, K = the first number)"
        )
    commands = {m["command"] for m in markers}
    if len(commands) > 1:
        raise InputError(f"{root}: shards of different commands ({', '.join(sorted(commands))}); not merged")
    first = markers[0]
    for m in markers[1:]:
        if m["fingerprint"] != first["fingerprint"] or m["total"] != first["total"]:
            raise InputError(
                f"{root}: shard {m['index']}-of-{count} was run on other inputs or another config than "
                f"shard 0-of-{count} ({m['total']} items vs {first['total']}); rerun the stale one"
            )
    check_coverage(first["total"], [m["items"] for m in markers], root)
    return markers


def check_coverage(total: int, items: Sequence[Sequence[int]], where: str | os.PathLike[str]) -> None:
    """Every item index in ``range(total)`` owned by exactly one shard."""
    seen: dict[int, int] = {}
    for k, owned in enumerate(items):
        for i in owned:
            if i in seen or not 0 <= i < total:
                raise InputError(
                    f"{where}: item {i} is claimed twice or out of range (shards {seen.get(i)}, {k})"
                )
            seen[i] = k
    if len(seen) != total:
        missing = next(i for i in range(total) if i not in seen)
        raise InputError(f"{where}: {total - len(seen)} items belong to no shard (first: item {missing})")


@contextlib.contextmanager
def shard_group(shard: Shard, device: Any = None) -> Iterator[Any]:
    """Under torchrun, join the process group (gloo: the ranks only wait for each other and never
    exchange tensors, so it works beside any compute device) for the barrier before the merge; yields
    the rank's device (``cuda:LOCAL_RANK`` for a CUDA device). Elsewhere a no-op that yields ``device``."""
    if not shard.under_torchrun:
        yield device
        return
    import torch

    from fakescope.utils.distributed import cleanup_distributed, init_distributed

    info, dev = init_distributed(torch.device(device or "cpu"), backend="gloo", timeout=_BARRIER_TIMEOUT)
    try:
        yield dev
    finally:
        cleanup_distributed(info)


def wait_for_all_shards(shard: Shard) -> bool:
    """Under torchrun, block until every rank has finished its shard; True on the rank that merges
    (rank 0). Without torchrun: False (the user runs ``fakescope merge`` after the array job)."""
    if not shard.under_torchrun:
        return False
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
    return shard.index == 0
