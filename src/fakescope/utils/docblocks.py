"""Generated blocks in Markdown documents: the text between ``<!-- NAME -->`` and ``<!-- /NAME -->``.

Benchmarks write their tables into README.md and docs/results.md this way, so a rerun replaces its own
table and leaves the prose around it alone."""

from __future__ import annotations

from pathlib import Path

__all__ = ["replace_block", "write_blocks"]


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with what lies between ``<!-- NAME -->`` and ``<!-- /NAME -->`` replaced by ``content``."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise SystemExit(f"error: the markers {start} ... {end} are not in the file")
    return text[: i + len(start)] + "\n" + content.strip("\n") + "\n" + text[j:]


def write_blocks(path: Path, blocks: dict[str, str]) -> None:
    """Replace each named block of the file at ``path`` and write it back atomically (all or none:
    a missing marker stops before anything is written)."""
    from fakescope.utils.atomic import atomic_write_text

    text = Path(path).read_text(encoding="utf-8")
    for name, content in blocks.items():
        text = replace_block(text, name, content)
    atomic_write_text(path, text)
