"""Importing optional packages without turning Ctrl-C into "package missing".

A compiled extension that is interrupted while it initialises (onnxruntime takes about 80 ms) does not
raise ``KeyboardInterrupt``: pybind11 turns any exception raised in a module's init into
``ImportError("initialization failed")`` whose cause is the original exception. Code that reports a
failed optional import as a missing package calls :func:`reraise_interrupt` first, so an interrupted
start-up stays an interruption (exit 130), never an install hint.
"""

from __future__ import annotations

__all__ = ["interrupt_behind", "reraise_interrupt"]


def interrupt_behind(err: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` that ``err`` is, or that caused it (through ``__cause__`` /
    ``__context__``), else ``None``."""
    seen: set[int] = set()
    exc: BaseException | None = err
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def reraise_interrupt(err: ImportError) -> None:
    """Raise the ``KeyboardInterrupt`` behind a failed import, if there is one; else return."""
    interrupt = interrupt_behind(err)
    if interrupt is not None:
        raise KeyboardInterrupt from err
