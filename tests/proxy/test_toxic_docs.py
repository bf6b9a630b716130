"""The docs' toxic tables are generated from the declarations and cannot drift."""

from __future__ import annotations

import shutil
from pathlib import Path

from chaosnet.proxy.toxics import REGISTRY
from chaosnet.proxy.toxics.docs import REPOSITORY, TABLE_TRANSPORTS, TABLES, main, markers, stale


def copy_docs(target: Path) -> Path:
    for path, _, _ in TABLES:
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPOSITORY / path, target / path)
    return target


def test_the_checked_in_tables_are_the_generated_ones() -> None:
    assert stale() == []


def test_every_toxic_has_a_row_in_each_table() -> None:
    for path, name, _ in TABLES:
        text = (REPOSITORY / path).read_text(encoding="utf-8")
        begin, end = markers(name)
        table = text[text.index(begin) : text.index(end)]
        for type_name, toxic in REGISTRY.items():
            listed = f"`{type_name}`" in table
            assert listed == (TABLE_TRANSPORTS[name] in toxic.transports), (path, name, type_name)
            if not listed:
                continue
            texts = (toxic.summary, toxic.effect, toxic.datagram_summary, toxic.datagram_effect)
            assert any(text and text in table for text in texts), (path, type_name)


def test_an_edited_table_is_reported_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    root = copy_docs(tmp_path)
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("| latency ± jitter |", "| lag |"))
    assert stale(root) == [
        "README.md: the overview toxic table is stale: run python -m chaosnet.proxy.toxics.docs"
    ]
    assert main([str(root)]) == 0
    assert stale(root) == []
    assert readme.read_text() == (REPOSITORY / "README.md").read_text()


def test_a_doc_without_markers_is_reported(tmp_path: Path) -> None:
    root = copy_docs(tmp_path)
    reference = root / "docs" / "proxy.md"
    begin, _ = markers("reference")
    reference.write_text(reference.read_text().replace(begin + "\n", ""))
    assert stale(root) == [
        "docs/proxy.md: no <!-- toxics:reference begin --> ... <!-- toxics:reference end --> "
        "lines around the reference toxic table"
    ]
    assert main([str(root)]) == 1
