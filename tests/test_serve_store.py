"""The job store, the upload sniffing and the command line of `fakescope serve`, without a server."""

from __future__ import annotations

import pytest

from fakescope.serve.sniff import safe_name, sniff
from fakescope.serve.store import MAX_ATTEMPTS, JobStore


def test_a_job_left_running_is_queued_again_then_failed_after_repeated_deaths(tmp_path):
    upload = tmp_path / "clip.mp4"
    upload.write_bytes(b"\0")
    store = JobStore(tmp_path / "data")
    job_id = store.new_id()
    store.add(job_id, "m", "clip.mp4", str(upload), "video", False)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        store.start(job_id, 10)  # the server dies here, every time
        store.close()
        store = JobStore(tmp_path / "data")
        pending = store.recover()
        job = store.get(job_id)
        if attempt < MAX_ATTEMPTS:
            assert pending == [job_id] and job.status == "queued"
    assert pending == [] and job.status == "failed"
    assert job.error == f"clip.mp4: the server stopped {MAX_ATTEMPTS} times while scoring it; not tried again"


def test_a_queued_job_whose_upload_is_gone_fails_with_a_reason(tmp_path):
    store = JobStore(tmp_path)
    job_id = store.new_id()
    store.add(job_id, "m", "a.jpg", str(tmp_path / "missing.jpg"), "image", False)
    assert store.recover() == []
    assert "upload it again" in store.get(job_id).error


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "video"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video"),
        (b"GIF89a\x01\x00\x01\x00", "image"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "image"),
        (b"P6\n2 2\n255\n", "image"),
        (b"<html><script>", None),
        (b"%PDF-1.7", None),
        (b"", None),
    ],
)
def test_sniffing_reads_the_bytes(head, kind):
    got = sniff(head)
    assert (got.kind if got else None) == kind


def test_stored_names_cannot_leave_the_job_folder():
    assert safe_name("../../etc/passwd", ".jpg") == "passwd.jpg"
    assert safe_name("..\\..\\win.ini", ".png") == "win.png"
    assert safe_name("..", ".jpg") == "upload.jpg"
    assert safe_name("<b>x</b>.mp4", ".mp4") == "b.mp4"  # the part after the last slash


def test_a_network_bind_needs_public_and_says_so_in_one_line(tmp_path, capsys):
    from fakescope.cli import main

    rc = main(["serve", "--run", str(tmp_path), "--host", "0.0.0.0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "--host 0.0.0.0" in err and "--public" in err


def test_with_no_run_and_no_shipped_detector_serve_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    import fakescope.inference.shipped as shipped
    from fakescope.cli import main

    monkeypatch.setattr(shipped, "_resource_dir", lambda: tmp_path / "no_detector_here")
    rc = main(["serve", "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "no shipped detector in this install" in err and "--run RUN" in err


def test_serve_takes_model_as_detect_does(tmp_path, capsys):
    from fakescope.cli import main

    rc = main(["serve", "--model", str(tmp_path), "-m", str(tmp_path), "--host", "0.0.0.0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--public" in err  # parsed: refused for the host only
