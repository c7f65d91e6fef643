"""The package's dependencies point one way (docs/architecture.md):

    cli → api / train / eval → rows → inference → models / inr / preprocess → data → utils

(``config`` and ``errors`` are used throughout). Imports are read from the source, function-level ones
included, so a lazy import cannot hide a wrong-way dependency; so are import strings (a module named in
a string, as ``importlib.import_module("fakescope.x")``, the ``name -> module`` tables of
:mod:`fakescope.utils.lazy`, ``"fakescope.x.y:function"`` or the constant start of an f-string), which
follow the same rules.
"""

from __future__ import annotations

import ast
import re
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
    "rows": 3,  # beside inference: the rows train and evaluate use; it imports inference and below
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
# metrics; the detector object renders reports with explain; bench (eval.speed) times the detector object;
# rows reads inference's cached model inputs.
ALLOWED_SAME_LAYER = {("train", "eval"), ("api", "explain"), ("eval", "api"), ("rows", "inference")}

# A string that names a module: "fakescope.a.b", optionally ":attribute" ("module:function" tables).
_MODULE_STRING = re.compile(r"(fakescope(?:\.[A-Za-z_]\w*)+)(?::[A-Za-z_]\w*)?")


def _string_import(node: ast.AST) -> str | None:
    """The module an import string names (its constant start, for an f-string), or None. Strings that
    merely look like one ("fakescope.format", an ONNX metadata key) name no package and are left out."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        text = str(node.values[0].value).rstrip(".")  # f"fakescope.cli.{name}" depends on fakescope.cli
    else:
        return None
    match = _MODULE_STRING.fullmatch(text)
    if match is None:
        return None
    module = match.group(1)
    return module if _target(module) in LAYERS or _target(module) in SHARED else None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif (module := _string_import(node)) is not None:
            found.append((node.lineno, module))
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


def test_the_checker_sees_import_strings(tmp_path, monkeypatch):
    """Modules named in strings are dependencies too: importlib, lazy-export tables, "module:function"
    tables (the way api/shards.py once reached eval from api), f-strings; look-alikes are not."""
    fake = tmp_path / "fakescope"
    for package in ("models", "data", "api", "inference"):
        (fake / package).mkdir(parents=True)
    (fake / "models" / "bad.py").write_text(
        "import importlib\n"
        "def f(name):\n"
        "    importlib.import_module('fakescope.train.trainer')\n"
        "    return importlib.import_module(f'fakescope.eval.{name}')\n"
    )
    (fake / "data" / "__init__.py").write_text('_EXPORTS = {"evaluate": "fakescope.eval.evaluate"}\n')
    (fake / "api" / "shards.py").write_text(
        "MERGERS = {\n"
        '    "prepare": "fakescope.preprocess.pipeline:merge_prepare",\n'
        '    "evaluate": "fakescope.eval.evaluate:merge_evaluate",\n'
        "}\n"
    )
    (fake / "inference" / "meta.py").write_text('KEYS = ("fakescope.format", "fakescope.version")\n')
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert _violations() == [
        "fakescope/api/shards.py:3: api imports fakescope.eval.evaluate",
        "fakescope/data/__init__.py:1: data imports fakescope.eval.evaluate",
        "fakescope/models/bad.py:3: models imports fakescope.train.trainer",
        "fakescope/models/bad.py:4: models imports fakescope.eval",
    ]


def test_rows_sits_beside_inference(tmp_path, monkeypatch):
    """rows may import inference and below, train and eval may import rows; inference may not import rows."""
    fake = tmp_path / "fakescope"
    for package in ("rows", "train", "inference"):
        (fake / package).mkdir(parents=True)
    (fake / "rows" / "ok.py").write_text("from fakescope.inference.inputs import compute_inputs\n")
    (fake / "train" / "ok.py").write_text("from fakescope.rows.rowset import RowSet\n")
    (fake / "inference" / "bad.py").write_text("from fakescope.rows.rowset import RowSet\n")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert _violations() == ["fakescope/inference/bad.py:1: inference imports fakescope.rows.rowset"]
