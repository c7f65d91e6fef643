"""``fakescope serve``: a web page and a REST API that score uploads with runs kept warm.

One concept per module:

- :mod:`fakescope.serve.settings`: :class:`ServeSettings`, what the command line chooses;
- :mod:`fakescope.serve.sniff`: what an upload is (image, video or reject), from its bytes;
- :mod:`fakescope.serve.store`: the job store (SQLite; uploads and reports written atomically);
- :mod:`fakescope.serve.models`: the loaded runs and how one job is scored;
- :mod:`fakescope.serve.worker`: the bounded queue and its worker threads;
- :mod:`fakescope.serve.auth`: the optional bearer token;
- :mod:`fakescope.serve.page`: the web page (static HTML/JS);
- :mod:`fakescope.serve.app`: the FastAPI app and its routes (:func:`create_app`).

It sits beside the command line: ``cli → serve → api``; nothing in the library imports it.
"""

from fakescope.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def create_app(settings: ServeSettings):  # -> fastapi.FastAPI
    """The FastAPI app for ``settings`` (fastapi is imported only here, when serving)."""
    from fakescope.serve.app import create_app as _create

    return _create(settings)
