"""File names as text. On POSIX a file name is bytes; Python holds bytes that are not UTF-8 as lone
surrogates (``os.fsdecode``), which no UTF-8 writer accepts. Keys and hashes use the bytes
(``os.fsencode``); tables, reports, JSON and error lines use :func:`display_name` / :func:`printable`,
which show such bytes as ``\\xNN`` escapes; CSVs that must give the path back (manifests, predictions)
are written and read with ``errors="surrogateescape"`` (:data:`PATH_CSV_ERRORS`), so the exact bytes
round-trip."""

from __future__ import annotations

import os

__all__ = ["PATH_CSV_ERRORS", "display_name", "one_line", "printable"]

#: ``open(..., errors=PATH_CSV_ERRORS)`` for CSV files that hold file paths.
PATH_CSV_ERRORS = "surrogateescape"


def printable(text: str) -> str:
    """``text`` that encodes as UTF-8: undecodable file-name bytes (lone surrogates) become ``\\xNN``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that did not come from a file name
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), *range(127, 160)]}


def display_name(path: str | os.PathLike[str] | bytes) -> str:
    """A path as one line of printable text: undecodable bytes (see :func:`printable`) and control
    characters (a newline, a terminal escape sequence in a file name) shown as ``\\xNN``."""
    text = path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else os.fspath(path)
    return one_line(text)


def one_line(text: str) -> str:
    """An error line as one line of printable text (:func:`printable`, control characters escaped)."""
    return printable(text).translate(_CONTROL)
