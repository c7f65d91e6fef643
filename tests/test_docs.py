"""The documentation: the MkDocs site builds under --strict, the README stays short and its links resolve."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_BYTES = 12 * 1024

# [text](target) and ![alt](target), the target up to whitespace or ')'; <a href=...> / <img src=...>.
_MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _relative_links(markdown: str) -> list[str]:
    text = _FENCE.sub("", markdown)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    targets = _MD_LINK.findall(text) + _HTML_LINK.findall(text)
    return [t for t in targets if not re.match(r"^([a-z][a-z0-9+.-]*:|#|//)", t, re.I)]


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="mkdocs / mkdocs-material not installed (pip install -e '.[dev]')",
)
def test_mkdocs_build_strict(tmp_path: Path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml")]
    proc = subprocess.run(
        [*cmd, "-d", str(tmp_path / "site")], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_is_short():
    size = README.stat().st_size
    assert size < README_MAX_BYTES, (
        f"README.md is {size} bytes; keep it under {README_MAX_BYTES} (move detail to docs/)"
    )


def test_readme_relative_links_exist():
    links = _relative_links(README.read_text(encoding="utf-8"))
    assert links, "README.md links no docs pages"
    missing = [t for t in links if not (ROOT / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_readme_links_every_docs_page():
    links = {Path(t.split("#", 1)[0]).as_posix() for t in _relative_links(README.read_text(encoding="utf-8"))}
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")}
    assert pages - links == set(), f"docs pages the README does not link: {sorted(pages - links)}"


def test_link_finder():
    text = "[a](docs/x.md#s) ![b](img.png) [c](https://e.org) [d](#top) `[e](no.md)`\n```\n[f](no.md)\n```\n"
    assert _relative_links(text) == ["docs/x.md#s", "img.png"]
