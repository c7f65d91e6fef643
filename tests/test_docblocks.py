"""Generated Markdown blocks (fakescope.utils.docblocks): benchmarks rewrite their own tables in the docs
and leave the prose alone."""

from __future__ import annotations

import pytest

from fakescope.utils.docblocks import replace_block, write_blocks


def test_replace_block_rewrites_only_between_markers():
    text = "a\n<!-- HEADLINE -->\nold\n<!-- /HEADLINE -->\nb\n"
    assert replace_block(text, "HEADLINE", "new") == "a\n<!-- HEADLINE -->\nnew\n<!-- /HEADLINE -->\nb\n"
    with pytest.raises(SystemExit, match="SBI_PAIRED"):
        replace_block(text, "SBI_PAIRED", "x")


def test_write_blocks_writes_all_or_nothing(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text(
        "intro\n<!-- A -->\n1\n<!-- /A -->\nmiddle\n<!-- B -->\n2\n<!-- /B -->\n", encoding="utf-8"
    )
    write_blocks(doc, {"A": "one", "B": "two"})
    assert doc.read_text() == "intro\n<!-- A -->\none\n<!-- /A -->\nmiddle\n<!-- B -->\ntwo\n<!-- /B -->\n"
    before = doc.read_text()
    with pytest.raises(SystemExit, match="TABLE_IV"):
        write_blocks(doc, {"A": "changed", "TABLE_IV": "x"})
    assert doc.read_text() == before  # the missing marker stopped it before A was written
