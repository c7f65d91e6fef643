"""`fakescope serve` through a real HTTP client against a real server (a subprocess on localhost),
with a tiny AIRL run trained on the crops of ``face_set`` (DFDC, or the stand-in set without
../shared): the scores equal `fakescope detect` on the same files, hostile input gets the documented answer (413, 415, a failed job with the CLI's message, 401,
404), and a server killed mid-job never loses the job."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import requests

from fakescope.cli import main
from serve_support import copy_run, running, start_server, stop, tiny_run

pytestmark = [pytest.mark.slow]

TOKEN = "t0ken-for-tests"
CARD = "# A test model card\n\nTrained for the serve tests; its scores mean nothing.\n"


@pytest.fixture(scope="module")
def run(face_set, tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.getbasetemp(), face_set.manifest)


@pytest.fixture(scope="module")
def server(run, tmp_path_factory, face_set):
    tmp = tmp_path_factory.mktemp("serve")
    allowed = tmp / "allowed"
    allowed.mkdir()
    (allowed / "face.jpg").write_bytes(_face(face_set).read_bytes())
    carded = copy_run(run, tmp / "carded_run", card=CARD)  # a second model, named as detect names one
    with running(run, tmp / "data", "--max-upload-mb", "5", "--allow-dir", str(allowed), "--model", str(carded),
                 token=TOKEN) as srv:  # fmt: skip
        yield srv


def _face(face_set) -> Path:
    return face_set.fake[0]


def _video(face_set) -> Path:
    return face_set.videos[0]


def _submit(server, path: Path, name: str | None = None, **form) -> dict:
    with open(path, "rb") as fh:
        r = server.post("/v1/jobs", files={"file": (name or path.name, fh)}, data=form)
    assert r.status_code == 202, r.text
    return r.json()


def test_image_and_video_scores_equal_fakescope_detect(server, run, face_set, capsys):
    face, video = _face(face_set), _video(face_set)
    ids = [_submit(server, face)["id"], _submit(server, video)["id"]]
    jobs = [server.wait_job(i) for i in ids]
    assert [j["status"] for j in jobs] == ["done", "done"], jobs
    assert jobs[1]["progress"] == {"frames_done": 4, "frames_total": 4}

    assert main(["detect", str(face), str(video), "--model", str(run), "--json", "--device", "cpu"]) == 0
    cli = json.loads(capsys.readouterr().out)
    for job, expect in zip(jobs, cli["results"], strict=True):
        doc = job["result"]
        assert set(doc) == set(cli) - {"report"} and doc["errors"] == []
        (got,) = doc["results"]
        assert set(got) == set(expect)
        assert got["source"] == Path(expect["source"]).name
        assert got["score"] == pytest.approx(expect["score"], abs=1e-5)
        assert got["label"] == expect["label"] and got["threshold"] == expect["threshold"]
        for a, b in zip(got["faces"], expect["faces"], strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
    assert [f["score"] for f in jobs[1]["result"]["results"][0]["frames"]] == pytest.approx(
        [f["score"] for f in cli["results"][1]["frames"]], abs=1e-5
    )

    report = server.get(f"/v1/jobs/{ids[1]}/report")
    assert report.status_code == 200 and "Score over time" in report.text
    assert server.get(f"/v1/jobs/{ids[1]}/report/score_over_time.png").headers["content-type"] == "image/png"
    download = server.get(f"/v1/jobs/{ids[0]}/result.json")
    assert "attachment" in download.headers["content-disposition"] and download.json() == jobs[0]["result"]
    history = [j["id"] for j in server.get("/v1/jobs").json()["jobs"]]
    assert history[:2] == ids[::-1]
    models = server.get("/v1/models").json()["models"]
    assert models[0]["threshold"] == cli["threshold"] and models[0]["standin"] is face_set.standin


def test_oversize_upload_is_413_with_or_without_a_length(server):
    big = b"\xff\xd8\xff\xe0" + b"\0" * 6_000_000
    r = server.post("/v1/jobs", files={"file": ("big.jpg", big)})
    assert r.status_code == 413 and "5 MB" in r.json()["detail"]
    body, ctype = requests.models.RequestEncodingMixin._encode_files({"file": ("big.jpg", big)}, {})
    chunked = server.post("/v1/jobs", data=(body[i : i + 65536] for i in range(0, len(body), 65536)),
                          headers={"Content-Type": ctype})  # fmt: skip
    assert chunked.status_code == 413


def test_a_chunked_upload_past_the_limit_is_413_before_any_content_check(server):
    zeros = b"\0" * 6_000_000  # not an image: the size is what refuses it, not the content (415)
    body, ctype = requests.models.RequestEncodingMixin._encode_files({"file": ("zeros.jpg", zeros)}, {})
    chunked = server.post("/v1/jobs", data=(body[i : i + 65536] for i in range(0, len(body), 65536)),
                          headers={"Content-Type": ctype})  # fmt: skip
    assert chunked.status_code == 413, chunked.text
    assert chunked.json()["detail"] == "the upload is larger than this server's limit of 5 MB"
    sized = server.post("/v1/jobs", files={"file": ("zeros.jpg", zeros)})
    assert sized.status_code == 413
    small = server.post("/v1/jobs", files={"file": ("zeros.jpg", zeros[:1000])})
    assert small.status_code == 415  # under the limit, the content decides
    assert server.get("/healthz").json()["status"] == "ok"


def test_content_not_name_decides_the_type(server, face_set, tmp_path):
    text = tmp_path / "photo.jpg"
    text.write_text("this is not an image")
    r = server.post("/v1/jobs", files={"file": ("photo.jpg", text.read_bytes())})
    assert r.status_code == 415 and "photo.jpg" in r.json()["detail"]
    # A video named like an image is scored as the video it is.
    assert _submit(server, _video(face_set), name="holiday.png")["kind"] == "video"


def test_corrupt_file_is_a_failed_job_with_the_cli_message(server, run, face_set, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(_face(face_set).read_bytes()[:2000])
    job = server.wait_job(_submit(server, corrupt)["id"])
    assert job["status"] == "failed" and job["result"]["results"] == []
    assert job["error"].startswith("corrupt.jpg: ") and "truncated" in job["error"]
    main(["detect", str(corrupt), "--model", str(run), "--device", "cpu"])
    cli_line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("fakescope detect:"))
    assert cli_line == f"fakescope detect: {tmp_path}/{job['error']}"
    assert job["result"]["errors"] == [{"source": "corrupt.jpg", "error": job["error"]}]


def test_every_endpoint_but_healthz_needs_the_token(server):
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    for path in ("/v1/models", "/v1/jobs", "/", "/docs", "/openapi.json", "/static/app.js"):
        assert requests.get(server.url + path, timeout=10).status_code == 401, path
        wrong = requests.get(server.url + path, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401, path
    assert (
        requests.post(server.url + "/v1/jobs", files={"file": ("a.jpg", b"x")}, timeout=10).status_code == 401
    )
    assert requests.get(server.url + "/", cookies={"fakescope_token": TOKEN}, timeout=10).status_code == 200
    assert server.get("/openapi.json").json()["paths"]["/v1/jobs"]["post"]


def test_a_wrong_token_is_told_so(server):
    page = requests.get(server.url + "/", cookies={"fakescope_token": "not-it"}, timeout=10)
    assert page.status_code == 401 and "That token is wrong" in page.text and "<form" in page.text
    first = requests.get(server.url + "/", timeout=10)  # no token tried yet: the form, no reproach
    assert first.status_code == 401 and "<form" in first.text and "wrong" not in first.text
    api = requests.get(server.url + "/v1/jobs", headers={"Authorization": "Bearer not-it"}, timeout=10)
    assert api.json()["detail"] == "wrong token"
    bare = requests.get(server.url + "/v1/jobs", timeout=10).json()["detail"]
    assert "needs its token" in bare


def test_models_and_jobs_say_whether_the_model_is_a_standin_and_has_a_card(server, face_set):
    models = {m["name"]: m for m in server.get("/v1/models").json()["models"]}
    assert list(models) == ["serve_airl", "carded_run"]
    assert [m["standin"] for m in models.values()] == [face_set.standin] * 2
    assert models["serve_airl"]["card"] is False and models["carded_run"]["card"] is True
    card = server.get("/v1/models/carded_run/card")
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
    assert card.text == CARD
    assert server.get("/v1/models/serve_airl/card").status_code == 404
    assert server.get("/v1/models/nope/card").status_code == 404
    job = server.wait_job(_submit(server, _face(face_set), model="carded_run")["id"])
    assert job["status"] == "done" and job["standin"] is face_set.standin and job["card"] is True
    listed = next(j for j in server.get("/v1/jobs").json()["jobs"] if j["id"] == job["id"])
    assert listed["standin"] is face_set.standin and listed["card"] is True


def test_openapi_declares_every_status_the_job_schema_and_the_bearer_token(server):
    doc = server.get("/openapi.json").json()
    declared = {
        (path, method): {int(code) for code in op["responses"]}
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    expect = {
        ("/v1/jobs", "post"): {202, 400, 401, 404, 413, 415, 422, 503},
        ("/v1/jobs", "get"): {200, 401},
        ("/v1/jobs/{job_id}", "get"): {200, 401, 404},
        ("/v1/jobs/{job_id}/result.json", "get"): {200, 401, 404, 409},
        ("/v1/jobs/{job_id}/report", "get"): {200, 401, 404},
        ("/v1/jobs/{job_id}/report/{name}", "get"): {200, 401, 404},
        ("/v1/models", "get"): {200, 401},
        ("/v1/models/{name}/card", "get"): {200, 401, 404},
    }
    for route, codes in expect.items():
        assert codes <= declared[route], (route, declared[route])
    fields = set(doc["components"]["schemas"]["Job"]["properties"])
    assert {"id", "status", "progress", "error", "result", "report", "standin", "card"} <= fields
    ok = doc["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Job"}
    (scheme,) = doc["components"]["securitySchemes"].values()
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert doc["paths"]["/v1/jobs"]["post"]["security"] and doc["paths"]["/healthz"]["get"]["security"] == []


def test_traversal_through_ids_names_and_paths_is_404(server, face_set):
    job_id = server.wait_job(_submit(server, _face(face_set), name="../../../escape.jpg")["id"])["id"]
    for path in ("/v1/jobs/..%2F..%2Fjobs.sqlite3", "/v1/jobs/../../etc/passwd", "/v1/jobs/" + "0" * 31 + "g",
                 f"/v1/jobs/{job_id}/report/..%2F..%2F..%2Fjobs.sqlite3", f"/v1/jobs/{job_id}/report/.%2E",
                 f"/v1/jobs/{job_id}/report/%2Fetc%2Fpasswd", "/static/..%2F__init__.py"):  # fmt: skip
        assert server.get(path).status_code == 404, path
    job = server.get(f"/v1/jobs/{job_id}").json()
    assert job["filename"] == "escape.jpg" and job["status"] == "done"
    assert server.post("/v1/jobs", data={"path": "../data/jobs.sqlite3"}).status_code == 404
    assert server.post("/v1/jobs", data={"path": "/etc/passwd"}).status_code == 404
    ok = server.post("/v1/jobs", data={"path": "face.jpg"})
    assert ok.status_code == 202 and server.wait_job(ok.json()["id"])["status"] == "done"


def test_file_names_are_escaped_in_the_report(server, face_set):
    name = "<img src=x onerror=alert(1)>.jpg"
    job = server.wait_job(_submit(server, _face(face_set), name=name)["id"])
    assert job["filename"] == name and job["result"]["results"][0]["source"] == name
    html = server.get(f"/v1/jobs/{job['id']}/report").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html


def test_with_no_run_the_shipped_detector_is_served_never_as_a_standin(run, tmp_path):
    # A shipped folder whose training data sits beside a STANDIN.txt: being the shipped detector wins.
    shipped = copy_run(run, tmp_path / "detector", card=CARD, standin="STAND-IN DATA, NOT A BENCHMARK")
    with running(None, tmp_path / "data", shipped=shipped) as server:
        (model,) = server.get("/v1/models").json()["models"]
        assert model["name"] == "detector" and model["run"] == str(shipped)
        assert model["standin"] is False and model["notice"] is None and model["card"] is True
        assert server.get("/v1/models/detector/card").text == CARD


def test_a_job_killed_mid_video_ends_done_or_failed_after_a_restart(run, face_set, tmp_path):
    """Also: past the queue bound the API answers 503 with Retry-After, and a queued job survives."""
    data = tmp_path / "data"
    paused = tmp_path / "paused"  # written by the server's worker once it stops after the video's 2nd frame
    server = start_server(run, data, "--frames", "24", "--no-gradcam", "--queue", "1", pause=(2, paused))
    try:
        job_id = _submit(server, _video(face_set))["id"]
        t0 = time.monotonic()
        while not paused.exists():  # a state the job stays in until the kill: no race with its speed
            assert server.proc.poll() is None and time.monotonic() - t0 < 60, server.log.read_text()[-3000:]
            time.sleep(0.05)
        job = server.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "running" and 1 <= job["progress"]["frames_done"] < 24, job
        waiting = _submit(server, _face(face_set))["id"]  # the queue's one place
        with open(_face(face_set), "rb") as fh:
            full = server.post("/v1/jobs", files={"file": ("one_too_many.jpg", fh)})
        assert full.status_code == 503 and int(full.headers["Retry-After"]) > 0
        assert "queue is full" in full.json()["detail"]
    finally:
        stop(server, signal.SIGKILL)
    assert server.proc.returncode == -signal.SIGKILL
    with running(run, data, "--frames", "24", "--no-gradcam") as again:
        job = again.wait_job(job_id)
        assert job["status"] in ("done", "failed")
        assert again.wait_job(waiting)["status"] == "done"  # the queued job was kept, in order
        if job["status"] == "done":  # resumed: scored from the start again, whole
            assert job["result"]["results"][0]["frames_sampled"] == 24
            assert job["progress"] == {"frames_done": 24, "frames_total": 24}
        else:
            assert job["error"]
