"""The site's structure: every page in the nav, every public name in the reference."""

from __future__ import annotations

import re
from pathlib import Path

import fastapi_cachekit
from tests.docs.markdown_blocks import REPO

DOCS = REPO / "docs"


def nav_pages() -> list[str]:
    """The pages named in mkdocs.yml's `nav` section, in order."""
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    nav = re.search(r"^nav:\n(?P<body>(?:[ \t].*\n|\n)*)", config, re.MULTILINE)
    assert nav is not None, "mkdocs.yml has no nav"
    return re.findall(r"([\w./-]+\.md)\s*$", nav["body"], re.MULTILINE)


def test_every_page_is_in_the_nav_once() -> None:
    pages = nav_pages()
    on_disk = sorted(path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md"))
    assert sorted(pages) == on_disk
    assert len(pages) == len(set(pages))


def test_every_public_name_is_in_the_reference() -> None:
    rendered: set[str] = set()
    for path in (DOCS / "reference").glob("*.md"):
        text = path.read_text(encoding="utf-8")
        rendered |= set(re.findall(r"^::: fastapi_cachekit\.(\w+)\s*$", text, re.MULTILINE))
    assert rendered == set(fastapi_cachekit.__all__)


def test_the_rfc_page_is_linked_from_the_reference() -> None:
    assert "../http-rfc9111.md" in (DOCS / "reference" / "index.md").read_text(encoding="utf-8")
    assert Path(DOCS / "http-rfc9111.md").is_file()
