"""The FastAPI app: the REST API (``/v1``), the page (``/``), ``/healthz`` and the OpenAPI docs
(``/docs``). Routes are thin: the store, the queue and the scoring live in their own modules."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, Security, UploadFile
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fakescope.serve import schema
from fakescope.serve.auth import COOKIE, OPEN_PATHS, authorized
from fakescope.serve.models import LoadedRun, load_runs
from fakescope.serve.page import load_assets, login_page
from fakescope.serve.settings import ServeSettings
from fakescope.serve.sniff import SNIFF_BYTES, Sniffed, safe_name, sniff
from fakescope.serve.store import Job, JobStore
from fakescope.serve.worker import WorkerPool
from fakescope.utils.atomic import atomic_open

__all__ = ["create_app"]

#: A report file name: no slash, no leading dot. Anything else is 404.
_REPORT_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,120}")
#: Reports are static pages: no script, images from this server only.
_REPORT_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
_MARKDOWN = "text/markdown; charset=utf-8"
_CARD = {"text/markdown": {"schema": {"type": "string"}}}
_CHUNK = 1 << 20
_MULTIPART_OVERHEAD = 64 * 1024
#: How much of an oversize upload is still read (and dropped) so that the client gets its 413.
_DRAIN_MAX = 1 << 30


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the upload is larger than this server's limit of {limit / 1e6:g} MB")


class _BodyLimit:
    """Counts the bytes of a job upload as they arrive, with or without a ``Content-Length``: past the
    limit (plus the multipart framing) the request is answered 413 before its content is looked at or
    spooled further; the rest of the body is read and dropped (up to :data:`_DRAIN_MAX`), not stored."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/v1/jobs":
            await self.app(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit + _MULTIPART_OVERHEAD:
                    dropped = 0
                    while message.get("more_body") and dropped < _DRAIN_MAX:
                        message = await receive()
                        dropped += len(message.get("body", b""))
                    raise _too_large(self.limit)
            return message

        await self.app(scope, counted, send)


def _display_name(filename: str | None) -> str:
    """The uploaded file's own name (last path part, no control characters) as shown to users."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in name if c.isprintable())[:200]
    return name or "upload"


class _Uploads:
    """Turns a request's file (or allowed server path) into a stored, sniffed upload."""

    def __init__(self, settings: ServeSettings, store: JobStore) -> None:
        self.settings, self.store = settings, store

    def _too_large(self) -> HTTPException:
        return _too_large(self.settings.max_upload_bytes)

    async def save_upload(self, job_id: str, file: UploadFile) -> tuple[Path, Sniffed, str]:
        name = _display_name(file.filename)
        if file.size is not None and file.size > self.settings.max_upload_bytes:
            raise self._too_large()  # the size first: an oversize upload is 413 whatever it holds
        head = await file.read(_CHUNK)
        kind = sniff(head[:SNIFF_BYTES])
        if kind is None:
            raise HTTPException(415, f"{name}: not a recognised image or video (judged by its content)")
        dest = self.store.job_dir(job_id) / safe_name(file.filename, kind.suffix)
        size = 0
        try:
            with atomic_open(dest, "wb") as fh:
                chunk = head
                while chunk:
                    size += len(chunk)
                    if size > self.settings.max_upload_bytes:
                        raise self._too_large()
                    fh.write(chunk)
                    chunk = await file.read(_CHUNK)
        except HTTPException:
            shutil.rmtree(dest.parent, ignore_errors=True)
            raise
        return dest, kind, name

    def copy_server_path(self, job_id: str, rel: str) -> tuple[Path, Sniffed, str]:
        root = self.settings.allow_dir
        if root is None:
            raise HTTPException(400, "this server takes no server paths (start it with --allow-dir DIR)")
        base = root.resolve()
        src = (base / rel).resolve()
        if not src.is_relative_to(base) or not src.is_file():
            raise HTTPException(404, f"{rel}: no such file in the allowed folder")
        if src.stat().st_size > self.settings.max_upload_bytes:
            raise self._too_large()
        with open(src, "rb") as fh:
            kind = sniff(fh.read(SNIFF_BYTES))
        if kind is None:
            raise HTTPException(415, f"{src.name}: not a recognised image or video (judged by its content)")
        dest = self.store.job_dir(job_id) / safe_name(src.name, kind.suffix)
        with atomic_open(dest, "wb") as out, open(src, "rb") as fh:
            shutil.copyfileobj(fh, out, _CHUNK)
        return dest, kind, src.name


def _job_or_404(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    if job is None:
        raise HTTPException(404, "no such job")
    return job


def _job_json(job: Job, runs: dict[str, LoadedRun]) -> dict[str, Any]:
    """The job with what its model is: a stand-in (``None`` once the model is no longer loaded) and
    whether it has a model card."""
    run = runs.get(job.model)
    return {**job.to_dict(), "standin": run.standin if run else None, "card": bool(run and run.card)}


def _add_page_routes(app: FastAPI) -> None:
    assets = load_assets()

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        body, ctype = assets["index.html"]
        return Response(body, media_type=ctype)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, "no such file")
        body, ctype = assets[name]
        return Response(body, media_type=ctype)


def _add_report_routes(app: FastAPI, store: JobStore) -> None:
    def report_index(job_id: str) -> Response:
        job = _job_or_404(store, job_id)
        index = store.job_dir(job.id) / "report" / "index.html"
        if not job.report or not index.is_file():
            raise HTTPException(404, "this job has no report (it is not done, or it failed)")
        html = index.read_text(encoding="utf-8")
        html = html.replace("<head>", f"<head><base href='/v1/jobs/{job.id}/report/'>", 1)
        return HTMLResponse(html, headers={"Content-Security-Policy": _REPORT_CSP})

    @app.get(
        "/v1/jobs/{job_id}/report", response_class=HTMLResponse, summary="The job's HTML report",
        responses=schema.errors(401, 404),
    )  # fmt: skip
    def report(job_id: str) -> Response:
        return report_index(job_id)

    @app.get("/v1/jobs/{job_id}/report/", include_in_schema=False)
    def report_slash(job_id: str) -> Response:
        return report_index(job_id)

    @app.get(
        "/v1/jobs/{job_id}/report/{name}", summary="A file of the job's report (its images)",
        responses=schema.errors(401, 404),
    )  # fmt: skip
    def report_file(job_id: str, name: str) -> Response:
        job = _job_or_404(store, job_id)
        folder = store.job_dir(job.id) / "report"
        if not _REPORT_FILE.fullmatch(name) or not (folder / name).is_file():
            raise HTTPException(404, "no such report file")
        if name == "index.html":
            return report_index(job_id)
        return FileResponse(folder / name, headers={"Content-Security-Policy": _REPORT_CSP})


def _add_job_routes(app: FastAPI, settings: ServeSettings, store: JobStore, state: dict[str, Any]) -> None:
    uploads = _Uploads(settings, store)

    def check_queue() -> None:
        if store.count("queued") >= settings.queue_size:
            raise HTTPException(
                503,
                f"the queue is full ({settings.queue_size} jobs waiting); retry later",
                headers={"Retry-After": str(settings.retry_after_s)},
            )

    @app.post(
        "/v1/jobs", status_code=202, summary="Submit an image or a video for scoring",
        response_model=schema.Created, responses=schema.errors(400, 401, 404, 413, 415, 503),
    )  # fmt: skip
    async def create_job(
        file: UploadFile | None = File(None, description="the image or video (multipart upload)"),
        path: str | None = Form(None, description="a file under the server's --allow-dir, instead of file"),
        model: str | None = Form(None, description="a name from GET /v1/models (default: the first)"),
        aligned: bool = Form(
            False, description="the input is already an aligned face crop (as detect --aligned)"
        ),
    ) -> dict[str, Any]:
        runs: dict[str, LoadedRun] = state["runs"]
        model = model or next(iter(runs))
        if model not in runs:
            raise HTTPException(422, f"unknown model {model!r}; loaded: {', '.join(runs)}")
        if (file is None) == (path is None):
            raise HTTPException(422, "send exactly one of: a file (multipart field 'file') or 'path'")
        check_queue()
        job_id = store.new_id()
        if file is not None:
            dest, kind, name = await uploads.save_upload(job_id, file)
        else:
            dest, kind, name = uploads.copy_server_path(job_id, path or "")
        check_queue()
        store.add(job_id, model, name, str(dest), kind.kind, aligned)
        state["pool"].submit(job_id)
        return {"id": job_id, "status": "queued", "kind": kind.kind, "url": f"/v1/jobs/{job_id}"}

    @app.get(
        "/v1/jobs", summary="Past jobs, newest first", response_model=schema.JobList,
        responses=schema.errors(401),
    )  # fmt: skip
    def list_jobs(limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        return {"jobs": [_job_json(j, state["runs"]) for j in store.list(limit=limit)]}

    @app.get(
        "/v1/jobs/{job_id}", summary="A job: status, progress and its fakescope detect --json result",
        response_model=schema.Job, responses=schema.errors(401, 404),
    )  # fmt: skip
    def get_job(job_id: str) -> dict[str, Any]:
        return _job_json(_job_or_404(store, job_id), state["runs"])

    @app.get(
        "/v1/jobs/{job_id}/result.json", summary="The result JSON as a download",
        responses=schema.errors(401, 404, 409),
    )  # fmt: skip
    def result_json(job_id: str) -> Response:
        job = _job_or_404(store, job_id)
        if job.result is None:
            raise HTTPException(409, f"the job is {job.status}; its result is not ready")
        headers = {"Content-Disposition": f'attachment; filename="fakescope-{job.id}.json"'}
        return JSONResponse(job.result, headers=headers)


def _add_model_routes(app: FastAPI, runs: dict[str, LoadedRun]) -> None:
    @app.get(
        "/v1/models", summary="The loaded runs, with their thresholds and training data",
        responses=schema.errors(401),
    )  # fmt: skip
    def models() -> dict[str, Any]:
        return {"models": [r.to_dict() for r in runs.values()]}

    @app.get(
        "/v1/models/{name}/card", summary="The model's card (Markdown) when its run carries MODEL_CARD.md",
        response_class=PlainTextResponse, responses={**schema.errors(401, 404), 200: {"content": _CARD}},
    )  # fmt: skip
    def card(name: str) -> Response:
        run = runs.get(name)
        if run is None or run.card is None:
            raise HTTPException(404, f"no model card for {name!r}")
        headers = {"X-Content-Type-Options": "nosniff"}
        return Response(run.card.read_bytes(), media_type=_MARKDOWN, headers=headers)


def create_app(settings: ServeSettings) -> FastAPI:
    """The app: loads every run once, recovers the jobs a previous server left, starts the workers."""
    store = JobStore(settings.data_dir)
    state: dict[str, Any] = {"runs": load_runs(settings.runs, settings.device, settings.frames_per_video)}
    state["pool"] = WorkerPool(store, state["runs"], settings.workers, settings.gradcam)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state["pool"].start(store.recover())
        yield
        state["pool"].stop()
        store.close()

    app = FastAPI(
        title="fakescope serve",
        description="Score images and videos for face forgery with trained fakescope runs (docs/serve.md).",
        version="1",
        lifespan=lifespan,
        dependencies=[Security(schema.BEARER)],
    )
    # Inside the guard below (added later, so outside this): an HTTPException raised while the body is
    # read must reach the route as itself, not wrapped by the guard's task group.
    app.add_middleware(_BodyLimit, limit=settings.max_upload_bytes)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path not in OPEN_PATHS:
            cookie = request.cookies.get(COOKIE)
            header = request.headers.get("authorization")
            if not authorized(settings.token, header, unquote(cookie) if cookie else None):
                given = bool(header or cookie)
                if path.startswith("/v1/") or path.startswith("/openapi"):
                    detail = "wrong token" if given else "this server needs its token (Authorization: Bearer)"
                    return JSONResponse({"detail": detail}, 401, headers={"WWW-Authenticate": "Bearer"})
                return HTMLResponse(login_page(wrong=given), 401, headers={"WWW-Authenticate": "Bearer"})
        if request.method == "POST" and path == "/v1/jobs":
            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > settings.max_upload_bytes + _MULTIPART_OVERHEAD:
                mb = settings.max_upload_bytes / 1e6
                return JSONResponse(
                    {"detail": f"the upload is larger than this server's limit of {mb:g} MB"}, 413
                )
        return await call_next(request)

    @app.get("/healthz", summary="Liveness (never needs the token)")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": list(state["runs"]), "queued": store.count("queued")}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # the token is declared app-wide; /healthz is open
            FastAPI.openapi(app)["paths"]["/healthz"]["get"]["security"] = []
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    _add_model_routes(app, state["runs"])
    _add_job_routes(app, settings, store, state)
    _add_report_routes(app, store)
    _add_page_routes(app)
    app.add_api_route("/v1", lambda: RedirectResponse("/docs"), include_in_schema=False)
    return app
