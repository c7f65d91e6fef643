"""What the API answers, as pydantic models: the OpenAPI description (``/openapi.json``) is built from
them, so the job's JSON, the error answers and the bearer token are declared where clients read them."""

from __future__ import annotations

from typing import Any

from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

__all__ = ["BEARER", "Created", "Job", "JobList", "errors"]

#: The optional token, declared for OpenAPI clients; the check itself is the app's middleware (it also
#: covers the page), so this never refuses a request on its own.
BEARER = HTTPBearer(
    auto_error=False,
    description="required on every endpoint but /healthz when the server was started with --token",
)


class Error(BaseModel):
    detail: str = Field(description="one line saying what was wrong")


_WHEN = {
    400: "this server takes no server paths (it was started without --allow-dir)",
    401: "the server has a token and the request lacks it or carries a wrong one",
    404: "no such job, report file, model card or allowed path",
    409: "the job has not ended, so its result is not ready",
    413: "the upload is larger than the server's --max-upload-mb",
    415: "the upload's content is neither an image nor a video fakescope decodes",
    503: "the queue is full; retry after the Retry-After header's seconds",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that may answer these error statuses (each ``{"detail": ...}``)."""
    return {code: {"model": Error, "description": _WHEN[code]} for code in codes}


class Progress(BaseModel):
    frames_done: int = Field(description="video frames searched for faces so far")
    frames_total: int = Field(description="video frames that will be sampled (0 for an image)")


class Job(BaseModel):
    """A job as ``GET /v1/jobs/{id}`` shows it."""

    id: str = Field(description="32 hex digits")
    status: str = Field(description="queued, running, done or failed")
    model: str = Field(description="the name of the run that scores it (GET /v1/models)")
    filename: str = Field(description="the uploaded file's name")
    kind: str = Field(description="image or video, judged by the upload's content")
    aligned: bool = Field(description="scored as an already aligned face crop")
    created: float = Field(description="Unix time the job was submitted")
    updated: float = Field(description="Unix time of its last change")
    progress: Progress
    error: str | None = Field(description="a failed job's one-line reason, as fakescope detect words it")
    result: dict[str, Any] | None = Field(
        description="the fakescope detect --json document for this one input (docs/detect.md)"
    )
    report: str | None = Field(description="the URL of the job's HTML report, once written")
    standin: bool | None = Field(
        description="the model was trained on fakescope demo's stand-in set: its verdicts mean nothing "
        "(null when that model is no longer loaded)"
    )
    card: bool = Field(description="the model has a model card (GET /v1/models/{name}/card)")


class JobList(BaseModel):
    jobs: list[Job] = Field(description="newest first")


class Created(BaseModel):
    id: str
    status: str = Field(description="queued")
    kind: str = Field(description="image or video")
    url: str = Field(description="where to poll the job")
