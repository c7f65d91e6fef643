"""Decoding ahead: an iterator run in a background thread a few items ahead of its consumer, so video
decoding overlaps face detection (PyAV and onnxruntime both release the GIL)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["Prefetch", "prefetch"]


_END = object()


class Prefetch(Iterator[T]):
    """Run ``frames`` in a background thread, at most ``depth`` items ahead of the consumer; the
    thread starts at once, so decoding can begin before the consumer asks for the first frame.

    Decoding then overlaps whatever the caller does with each frame (face detection): PyAV's decoder,
    its pixel conversion and onnxruntime all release the GIL. ``on_exhausted`` runs in the thread
    once the last item has been produced (while the consumer still works on the last ones): the
    pipeline starts decoding the next video there. Errors are re-raised in the consumer's thread, in
    order; :meth:`close` (also on an early stop or an error) stops the thread and closes the video.
    """

    def __init__(
        self, frames: Iterator[T], depth: int, on_exhausted: Callable[[], None] | None = None
    ) -> None:
        self._frames = frames
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(
            target=self._work, args=(on_exhausted,), name="fakescope-decode", daemon=True
        )
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, on_exhausted: Callable[[], None] | None) -> None:
        try:
            for item in self._frames:
                if not self._put((item, None)):
                    return
            if on_exhausted is not None:
                on_exhausted()
            self._put((_END, None))
        except BaseException as err:  # handed to the consumer, raised there
            self._put((_END, err))
        finally:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item, err = self._queue.get()
        if item is _END:
            self.close()
            if err is not None:
                raise err
            raise StopIteration
        return item

    def close(self) -> None:
        self._finished = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


def prefetch(frames: Iterator[T], depth: int, on_exhausted: Callable[[], None] | None = None) -> Iterator[T]:
    """``frames`` decoded ``depth`` items ahead in a background thread (:class:`Prefetch`); with
    ``depth`` 0 the iterator itself (then ``on_exhausted`` is not called)."""
    if depth <= 0:
        return frames
    return Prefetch(frames, depth, on_exhausted)
