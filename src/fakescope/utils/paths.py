"""Why a path cannot be used, as the one cause a user needs: an input that is not a file that can be
read ("a FIFO", "a symbolic-link loop", not "not found"), a folder-scan entry that is not a file, and
an output folder or file that cannot be written (an existing file, a folder under a file, a place
where nothing can be created), checked before any work so a run never fails after its work."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from fakescope.errors import InputError

__all__ = [
    "not_a_file_reason",
    "output_dir_problem",
    "output_file_problem",
    "require_output_dir",
    "require_output_file",
    "scan_entry_reason",
]


def not_a_file_reason(path: str | os.PathLike[str]) -> str | None:
    """``None`` when ``path`` is a regular file (after following links); otherwise the cause, e.g.
    ``"no such file"``, ``"a directory, not a file"``, ``"a symbolic-link loop"``,
    ``"a FIFO (named pipe), not a regular file"``."""
    try:
        st = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic-link loop"
        if err.errno == errno.ENOENT:
            if os.path.islink(path):
                return f"a broken symbolic link (to {os.readlink(path)})"
            return "no such file"
        if err.errno == errno.EACCES:
            return "permission denied"
        return err.strerror or type(err).__name__
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        return "a directory, not a file"
    kind = _kind_of(st)
    return "not a regular file" if kind == "not a folder" else f"{kind}, not a regular file"


def scan_entry_reason(path: str | os.PathLike[str]) -> str | None:
    """For an entry met while scanning a folder: ``None`` for a regular file (after following links),
    ``""`` for a sub-folder (walked, not an input), otherwise why it cannot be read (a FIFO, a
    symbolic-link loop, a broken link, ...). ``detect`` and ``prepare`` name such entries instead of
    dropping them unseen."""
    if os.path.isdir(path) and not os.path.islink(path):
        return ""
    return not_a_file_reason(path)


def _kind_of(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a folder"


def _stat_problem(path: Path) -> tuple[os.stat_result | None, str | None]:
    """``(stat, None)``, ``(None, None)`` when nothing is there, or ``(None, cause)``."""
    try:
        return os.stat(path), None
    except OSError as err:
        if err.errno == errno.ELOOP:
            return None, "a symbolic-link loop"
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            if os.path.islink(path):
                return None, f"a broken symbolic link (to {os.readlink(path)})"
            return None, None
        return None, (err.strerror or type(err).__name__).lower()


def _creatable_in(folder: Path) -> str | None:
    """``None`` when a folder can be created in ``folder`` (tried: a uniquely named one, removed at
    once, so concurrent shards never meet), else the cause. Permission bits alone would not do: root
    passes them, yet cannot create anything under /proc or on a read-only mount."""
    try:
        probe = tempfile.mkdtemp(prefix=".fakescope-write-check-", dir=folder)
    except OSError as err:
        # /proc answers "no such file or directory" to a folder that cannot be made there
        cause = "the file system there refuses it" if err.errno == errno.ENOENT else err.strerror
        return f"cannot create anything in {folder} ({(cause or type(err).__name__).lower()})"
    os.rmdir(probe)
    return None


def _problem_above(above: Path) -> str | None:
    """For a path that does not exist yet: the nearest thing above it that exists must be a folder
    that can be created in."""
    while True:
        st, why = _stat_problem(above)
        if why is not None:
            return f"{above} is {why}"
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):
                return f"{above} is {_kind_of(st)}, not a folder"
            return _creatable_in(above)
        if above == above.parent:
            return "no existing folder above it"
        above = above.parent


def output_dir_problem(path: str | os.PathLike[str]) -> str | None:
    """``None`` when ``path`` is a folder that can be written in, or can be created (with its missing
    parents); otherwise the cause: ``"an existing file, not a folder"``, ``"/a/b is a file, not a
    folder"`` (the path sits under a file), ``"cannot create anything in /proc (...)"``."""
    p = Path(path)
    st, why = _stat_problem(p)
    if why is not None:
        return why
    if st is None:
        return _problem_above(p.parent)
    if not stat.S_ISDIR(st.st_mode):
        kind = _kind_of(st)
        return "an existing file, not a folder" if kind == "a file" else f"{kind}, not a folder"
    return _creatable_in(p)


def output_file_problem(path: str | os.PathLike[str]) -> str | None:
    """``None`` when a file can be written at ``path`` (replacing a file there), else the cause."""
    p = Path(path)
    st, why = _stat_problem(p)
    if why is not None:
        return why
    if st is None:
        return _problem_above(p.parent)
    if stat.S_ISDIR(st.st_mode):
        return "an existing folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return f"{_kind_of(st)}, not a regular file"
    return _creatable_in(p.parent)


def require_output_dir(path: str | os.PathLike[str], what: str) -> None:
    """Raise :class:`InputError` (``"WHAT PATH: cause"``, e.g. ``--out runs/x: an existing file, not a
    folder``) unless :func:`output_dir_problem` finds nothing: commands call it for each output folder
    before any work, so a bad path costs one line, not the run."""
    why = output_dir_problem(path)
    if why is not None:
        raise InputError(f"{what} {path}: {why}")


def require_output_file(path: str | os.PathLike[str], what: str) -> None:
    """:func:`require_output_dir` for an output file (:func:`output_file_problem`)."""
    why = output_file_problem(path)
    if why is not None:
        raise InputError(f"{what} {path}: {why}")
