"""How many threads a ``fakescope`` command gives PyTorch, and how idle threads wait.

PyTorch's CPU kernels run on an OpenMP thread pool (libgomp on Linux). By default its idle threads
spin-wait at every barrier before sleeping, so on a machine shared with other programs a thread that is
not scheduled holds up its siblings, which burn the cores they do get: on a 2-core CPU a command ran
several times slower beside one other busy program (benchmarks/contention.py measures it).
``OMP_WAIT_POLICY=PASSIVE`` makes idle threads sleep at once, and a thread count no larger than the cores this process may use (its CPU affinity, which
``taskset``, cgroups and Slurm set) keeps the pool from oversubscribing them.

The policy of the command line (docs/benchmarks.md, Threads):

- threads: ``--threads N``, else ``FAKESCOPE_THREADS``, else ``OMP_NUM_THREADS``, else the cores
  available to this process;
- wait policy: ``OMP_WAIT_POLICY=PASSIVE`` unless the user set ``OMP_WAIT_POLICY`` or
  ``FAKESCOPE_THREADS_WAIT=active``. libgomp reads the variable once, when torch loads, so
  :func:`prefer_passive_wait` must run before anything imports torch.

torch is imported only inside :func:`apply_threads`.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

from fakescope.errors import ConfigError

#: thread count for every command when --threads is not given
THREADS_ENV = "FAKESCOPE_THREADS"
#: ``active`` keeps the OpenMP runtime's own wait policy; ``passive`` (the default) sets PASSIVE
WAIT_ENV = "FAKESCOPE_THREADS_WAIT"
#: print the thread line on stderr when set to 1
VERBOSE_ENV = "FAKESCOPE_VERBOSE"

FROM_FLAG = "--threads"
FROM_CORES = "cores available to this process"
FROM_HOST = "kept: torch was loaded before the command"


class ThreadChoice(NamedTuple):
    threads: int
    source: str  # where the number came from, said in the verbose line


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's count."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is not None:
        try:
            return max(1, len(getaffinity(0)))
        except OSError:
            pass
    return os.cpu_count() or 1


def prefer_passive_wait() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for the torch this process will load. True when set; False
    when the user chose a policy (``OMP_WAIT_POLICY``, or ``FAKESCOPE_THREADS_WAIT=active``) or torch
    is already loaded (too late to take effect). A value of ``FAKESCOPE_THREADS_WAIT`` other than
    ``active`` or ``passive`` is a :class:`ConfigError`."""
    wait = os.environ.get(WAIT_ENV, "").strip().lower()
    if wait not in ("", "active", "passive"):
        raise ConfigError(f"{WAIT_ENV}={os.environ[WAIT_ENV]}: expected active or passive")
    if wait == "active" or os.environ.get("OMP_WAIT_POLICY") or "torch" in sys.modules:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def _positive(value: int | str, name: str) -> int:
    text = str(value).strip()
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if threads < 1:
        said = f"{name} {text}" if name.startswith("-") else f"{name}={text}"
        raise ConfigError(f"{said}: not a positive whole number of threads")
    return threads


def resolve_threads(cli_value: int | str | None) -> ThreadChoice:
    """``--threads`` (``cli_value``), else ``FAKESCOPE_THREADS``, else the thread count torch already
    has when a program loaded it before calling ``fakescope.cli.main()``, else ``OMP_NUM_THREADS`` (the
    standard variable, honoured as torch would), else :func:`usable_cores`. A ``--threads`` or
    ``FAKESCOPE_THREADS`` that is not a positive whole number is a one-line :class:`ConfigError`."""
    if cli_value is not None:
        return ThreadChoice(_positive(cli_value, FROM_FLAG), FROM_FLAG)
    raw = os.environ.get(THREADS_ENV, "")
    if raw.strip():
        return ThreadChoice(_positive(raw, THREADS_ENV), THREADS_ENV)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return ThreadChoice(torch.get_num_threads(), FROM_HOST)
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if omp.isdigit() and int(omp) > 0:  # what torch itself would use; a value it ignores is ignored here
        return ThreadChoice(int(omp), "OMP_NUM_THREADS")
    return ThreadChoice(usable_cores(), FROM_CORES)


def apply_threads(choice: ThreadChoice) -> int:
    """``torch.set_num_threads``; returns the count torch reports afterwards."""
    import torch

    torch.set_num_threads(choice.threads)
    return torch.get_num_threads()


def thread_line(choice: ThreadChoice, threads: int) -> str:
    """The line ``FAKESCOPE_VERBOSE=1`` prints: the count torch reports (``threads``), where it came
    from, and the wait policy this process's OpenMP runtime was given."""
    policy = os.environ.get("OMP_WAIT_POLICY") or "runtime default"
    return f"threads: {threads} ({choice.source}); OpenMP wait policy: {policy}"
