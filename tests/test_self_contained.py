"""The repository stands on its own: a person who clones it can follow every reference it makes.

- No file refers to the design notes or the paper texts that live outside the repository (a
  ``DESIGN.md`` beside the checkout, ``papers/*.txt``): design decisions are in ``docs/design.md`` and
  papers are cited by authors, venue and section.
- The user documentation (``README.md``, ``docs/*.md``) and the package's own docstrings, messages and
  comments (``src/``, what ``help()`` and ``--help`` show) name no issue numbers, which a reader of a
  clone cannot look up; a changelog page, if there is one, may keep them.

The real data beside the checkout (``../shared/data``) is not a reference of this kind: tests read it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Where the repository's own text lives; generated or installed folders are not its text.
SCANNED = ("src", "docs", "benchmarks", "configs", "scripts", "tests", "requirements", ".ci")
SCANNED += ("README.md", "Makefile", "pyproject.toml", "mkdocs.yml")
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", "site"}
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".sh", ".json", ".cfg", ".ini", ".html"}

# This file itself is not scanned: it spells the patterns out. Case matters: docs/design.md is the
# repository's own page, the upper-case name is the notes outside it.
# A web address such as openaccess.thecvf.com/.../papers/X.pdf is a citation, not a file beside the checkout.
OUTSIDE_REFERENCE = re.compile(r"DESIGN\.md|(?<![/\w])papers/[A-Za-z]|shared/(?:DESIGN|papers)")
ISSUE_NUMBER = re.compile(r"\bissues?[\s#-]*\d+", re.IGNORECASE)
CHANGELOG = ROOT / "docs" / "changelog.md"


def _text_files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                parts = set(file.relative_to(ROOT).parts)
                if parts & SKIPPED_DIRS or any(p.endswith(".egg-info") for p in parts):
                    continue
                if file.is_file() and (file.suffix in TEXT_SUFFIXES or not file.suffix):
                    files.append(file)
    return files


def _hits(files: list[Path], pattern: re.Pattern[str]) -> list[str]:
    hits = []
    for file in files:
        if file == Path(__file__).resolve():
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{file.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    return hits


def test_scan_sees_the_repository():
    files = {f.relative_to(ROOT).as_posix() for f in _text_files()}
    for expected in ("README.md", "docs/design.md", "src/fakescope/__init__.py", "configs/airl.yaml"):
        assert expected in files, f"the scan misses {expected}"


def test_no_reference_to_files_outside_the_repository():
    hits = _hits(_text_files(), OUTSIDE_REFERENCE)
    assert not hits, (
        "these lines refer to design notes or paper texts outside the repository; cite docs/design.md "
        "or the paper by authors, venue and section instead:\n" + "\n".join(hits)
    )


def test_user_docs_and_package_name_no_issue_numbers():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    package = [f for f in _text_files() if f.is_relative_to(ROOT / "src")]
    hits = _hits([p for p in pages if p != CHANGELOG] + package, ISSUE_NUMBER)
    assert not hits, (
        "these lines name issue numbers a reader of a clone cannot look up; say what they mean:\n"
        + "\n".join(hits)
    )


def test_design_page_cites_both_papers():
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    assert "## References" in design
    assert "Artifact-Invariant Representation Learning" in design and "Parihar" in design
    assert "Implicit Neural Features for Exposing Realism" in design and "NeurIPS" in design


# docs/design.md, "Preprocessing" / docs/design.md ("Fitting") / ... "Training recipe" and "Model selection"
_DESIGN_CITATION = re.compile(r'docs/design\.md,?\s*\(?((?:"[^"]+"(?:\s*and\s*)?)+)')


def test_design_citations_name_sections_that_exist():
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    headings = {line.lstrip("#").strip() for line in design.splitlines() if line.startswith("#")}
    missing = []
    for file in _text_files():
        if file.suffix != ".py" or file == Path(__file__).resolve():
            continue
        text = re.sub(r"\s+", " ", file.read_text(encoding="utf-8"))  # a citation may wrap a line
        for names in _DESIGN_CITATION.findall(text):
            missing += [
                f"{file.relative_to(ROOT)}: {n}" for n in re.findall(r'"([^"]+)"', names) if n not in headings
            ]
    assert not missing, "citations of docs/design.md sections it does not have:\n" + "\n".join(missing)


def test_patterns_catch_what_they_are_for():
    assert OUTSIDE_REFERENCE.search("see papers/INFER.txt §3.4")
    assert OUTSIDE_REFERENCE.search('(DESIGN.md "Preprocessing")')
    assert not OUTSIDE_REFERENCE.search("reads ../shared/data/dfdc-faces/manifest.csv")
    assert not OUTSIDE_REFERENCE.search('docs/design.md, "Preprocessing"')
    assert OUTSIDE_REFERENCE.search("/work/shared/papers/AIRL.txt")
    assert not OUTSIDE_REFERENCE.search("https://openaccess.thecvf.com/content/CVPR2022/papers/Shiohara.pdf")
    assert ISSUE_NUMBER.search("## Baselines (issue 14)")
    assert ISSUE_NUMBER.search("the pre-issue-15 decode path")
    assert ISSUE_NUMBER.search("[why](results.md#every-detector-issue-14)")
    assert not ISSUE_NUMBER.search("the issues a user meets")
    cited = _DESIGN_CITATION.findall('(docs/design.md, "Training recipe" and "Model selection"; x)')
    assert re.findall(r'"([^"]+)"', cited[0]) == ["Training recipe", "Model selection"]
    assert _DESIGN_CITATION.findall('see docs/design.md ("Fitting")') == ['"Fitting"']
