"""Why a path is not a file that can be read: the one cause a user needs, instead of "not found" for
a FIFO, a directory or a symbolic-link loop."""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["not_a_file_reason"]


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
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    return "not a regular file"
