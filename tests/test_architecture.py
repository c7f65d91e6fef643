"""The package's dependencies point one way (docs/architecture.md):

    cli → api / train / eval → inference → models / inr / preprocess → data → utils

(``config`` and ``errors`` are used throughout). Imports are read from the source, function-level ones
included, so a lazy import cannot hide a wrong-way dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fakescope"

# Layer of each top-level subpackage; a module may import its own layer's packages only where listed
# below, and any lower layer. ``config``/``errors``/``config_reference`` are shared definitions.
LAYERS = {
    "utils": 0,
    "data": 1,
    "models": 2,
    "inr": 2,
    "preprocess": 2,
    "inference": 3,
    "explain": 4,
    "eval": 4,
    "train": 4,
    "api": 4,
    "cli": 6,
    "demo": 5,
    "serve": 5,  # cli → serve → api: the web server sits beside the command line
}
SHARED = {"config", "errors", "config_reference", "__init__", "__main__"}
# Same-layer imports that are part of the design: training reports validation metrics with eval's
# metrics; the detector object renders reports with explain; bench (eval.speed) times the detector object.
ALLOWED_SAME_LAYER = {("train", "eval"), ("api", "explain"), ("eval", "api")}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, mod) for line, mod in found if mod == "fakescope" or mod.startswith("fakescope.")]


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _target(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _violations() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        src_pkg = _package(path)
        if src_pkg in SHARED:
            continue
        for line, module in _imports(path):
            dst = _target(module)
            if dst in SHARED or dst == src_pkg:
                continue
            if LAYERS[dst] > LAYERS[src_pkg] or (
                LAYERS[dst] == LAYERS[src_pkg] and (src_pkg, dst) not in ALLOWED_SAME_LAYER
            ):
                bad.append(f"{path.relative_to(SRC.parent)}:{line}: {src_pkg} imports {module}")
    return bad


def test_dependencies_point_one_way():
    assert _violations() == []


@pytest.mark.parametrize("package", ["data", "models", "inr", "preprocess", "eval", "explain", "inference"])
def test_lower_layers_never_import_train(package):
    offenders = [
        f"{p.relative_to(SRC.parent)}:{line}"
        for p in sorted((SRC / package).rglob("*.py"))
        for line, module in _imports(p)
        if module.startswith("fakescope.train")
    ]
    assert offenders == []


def test_api_and_explain_do_not_import_each_other_both_ways():
    explain_imports_api = [
        (p.name, m)
        for p in (SRC / "explain").rglob("*.py")
        for _, m in _imports(p)
        if m.startswith("fakescope.api")
    ]
    assert explain_imports_api == [], "explain takes plain data, not api objects"


def test_no_complexity_waivers_in_src():
    waived = [
        f"{p.relative_to(SRC.parent)}:{i}"
        for p in sorted(SRC.rglob("*.py"))
        for i, text in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "noqa: C901" in text or "noqa:C901" in text
    ]
    assert waived == []


def test_the_checker_sees_a_wrong_way_import(tmp_path, monkeypatch):
    """The checker itself can fail: a models module importing the trainer is reported."""
    fake = tmp_path / "fakescope"
    (fake / "models").mkdir(parents=True)
    (fake / "models" / "bad.py").write_text("def f():\n    from fakescope.train.trainer import train\n")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert _violations() == ["fakescope/models/bad.py:2: models imports fakescope.train.trainer"]
