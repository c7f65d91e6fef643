"""The job store: one SQLite database (``jobs.sqlite3``) for jobs and their results, and a folder per
job for the upload and the report.

Every change is one SQLite transaction (WAL journal, so a reader never sees half a write); an upload
is written with :func:`fakescope.utils.atomic.atomic_write_bytes` and a report is built in a temporary
folder renamed into place, so a server killed at any moment leaves a job whole or absent, never torn.
A job is ``queued``, ``running``, ``done`` or ``failed``; :meth:`JobStore.recover` decides, at start,
what happens to jobs a killed server left ``queued`` or ``running``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JOB_ID", "Job", "JobStore", "MAX_ATTEMPTS"]

#: A job id: 32 lower-case hex digits. Anything else is not a job (HTTP 404), so no id reaches a path.
JOB_ID = re.compile(r"[0-9a-f]{32}")
#: A job that was running when the server died this many times is failed, not tried again.
MAX_ATTEMPTS = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    filename TEXT NOT NULL,
    stored TEXT NOT NULL,
    kind TEXT NOT NULL,
    aligned INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    report INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created);
"""


@dataclass
class Job:
    id: str
    created: float
    updated: float
    status: str
    model: str
    filename: str
    stored: str
    kind: str
    aligned: bool
    attempts: int
    frames_done: int
    frames_total: int
    result: dict[str, Any] | None
    error: str | None
    report: bool

    def to_dict(self) -> dict[str, Any]:
        """The job as ``GET /v1/jobs/{id}`` shows it (no server paths)."""
        return {
            "id": self.id,
            "status": self.status,
            "model": self.model,
            "filename": self.filename,
            "kind": self.kind,
            "aligned": self.aligned,
            "created": self.created,
            "updated": self.updated,
            "progress": {"frames_done": self.frames_done, "frames_total": self.frames_total},
            "error": self.error,
            "result": self.result,
            "report": f"/v1/jobs/{self.id}/report/" if self.report else None,
        }


class JobStore:
    """Jobs in ``data_dir/jobs.sqlite3``, files in ``data_dir/jobs/<id>/``. Thread-safe."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir)
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.root / "jobs.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    # -- paths ------------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        if not JOB_ID.fullmatch(job_id):
            raise KeyError(job_id)
        return self.root / "jobs" / job_id

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    # -- writes (each one transaction) ------------------------------------------------------------
    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, job_id: str, model: str, filename: str, stored: str, kind: str, aligned: bool) -> None:
        now = time.time()
        self._write(
            "INSERT INTO jobs (id, created, updated, status, model, filename, stored, kind, aligned) "
            "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
            (job_id, now, now, model, filename, stored, kind, int(aligned)),
        )

    def start(self, job_id: str, frames_total: int = 0) -> None:
        self._write(
            "UPDATE jobs SET status='running', attempts=attempts+1, frames_done=0, frames_total=?, "
            "updated=? WHERE id=?",
            (frames_total, time.time(), job_id),
        )

    def progress(self, job_id: str, done: int, total: int) -> None:
        self._write(
            "UPDATE jobs SET frames_done=?, frames_total=?, updated=? WHERE id=?",
            (done, total, time.time(), job_id),
        )

    def finish(self, job_id: str, result: dict[str, Any], error: str | None, report: bool) -> None:
        self._write(
            "UPDATE jobs SET status=?, result=?, error=?, report=?, updated=? WHERE id=?",
            ("failed" if error else "done", json.dumps(result), error, int(report), time.time(), job_id),
        )

    def fail(self, job_id: str, error: str) -> None:
        self._write(
            "UPDATE jobs SET status='failed', error=?, updated=? WHERE id=?", (error, time.time(), job_id)
        )

    def recover(self) -> list[str]:
        """At start: jobs left ``running`` by a killed server go back to the queue (or fail after
        :data:`MAX_ATTEMPTS` starts, or when their upload is gone); returns the ids to queue, oldest first."""
        for job in self.list(status="running", limit=None, oldest_first=True):
            if job.attempts >= MAX_ATTEMPTS:
                self.fail(
                    job.id,
                    f"{job.filename}: the server stopped {job.attempts} times while scoring it; not tried again",
                )
            else:
                self._write("UPDATE jobs SET status='queued', updated=? WHERE id=?", (time.time(), job.id))
        ids = []
        for job in self.list(status="queued", limit=None, oldest_first=True):
            if Path(job.stored).is_file():
                ids.append(job.id)
            else:
                self.fail(
                    job.id, f"{job.filename}: the uploaded file is gone from the server; upload it again"
                )
        return ids

    # -- reads ------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        if not JOB_ID.fullmatch(job_id):
            return None
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def list(
        self, status: str | None = None, limit: int | None = 50, oldest_first: bool = False
    ) -> list[Job]:
        sql = "SELECT * FROM jobs" + (" WHERE status=?" if status else "")
        sql += " ORDER BY created " + ("ASC" if oldest_first else "DESC")
        args: tuple[Any, ...] = (status,) if status else ()
        if limit is not None:
            sql += " LIMIT ?"
            args += (int(limit),)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_job(r) for r in rows]

    def count(self, status: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM jobs WHERE status=?", (status,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        created=row["created"],
        updated=row["updated"],
        status=row["status"],
        model=row["model"],
        filename=row["filename"],
        stored=row["stored"],
        kind=row["kind"],
        aligned=bool(row["aligned"]),
        attempts=row["attempts"],
        frames_done=row["frames_done"],
        frames_total=row["frames_total"],
        result=None if row["result"] is None else json.loads(row["result"]),
        error=row["error"],
        report=bool(row["report"]),
    )
