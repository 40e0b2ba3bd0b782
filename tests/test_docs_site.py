"""The documentation site builds with ``mkdocs build --strict`` and the README stays short (issue 30).

The build runs in-process (MkDocs' own API, no process started), so it is in the pure tier as well as
in ``make test``'s ``make docs``: a broken link, a missing anchor, a page left out of the nav or a
README snippet that moved fails here.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest
from mkdocs.commands.build import build
from mkdocs.config import load_config
from mkdocs.exceptions import Abort

REPO = Path(__file__).resolve().parent.parent


def build_site(site_dir: Path, docs_dir: Path | None = None) -> None:
    """``mkdocs build --strict`` of mkdocs.yml into site_dir (optionally from another docs folder)."""
    overrides: dict[str, object] = {"site_dir": str(site_dir), "strict": True}
    if docs_dir is not None:
        overrides["docs_dir"] = str(docs_dir)
    config = load_config(str(REPO / "mkdocs.yml"), **overrides)
    # MkDocs counts the warnings of its own loggers; a previous build in this process must not leak in
    logging.getLogger("mkdocs").setLevel(logging.INFO)
    build(config)


def test_the_site_builds_strict_and_has_every_page(tmp_path: Path) -> None:
    build_site(tmp_path / "site")
    pages = sorted(p.relative_to(REPO / "docs").with_suffix(".html") for p in (REPO / "docs").rglob("*.md"))
    assert pages, "docs/ has no page"
    for page in pages:
        assert (tmp_path / "site" / page).is_file(), f"{page} was not built"
    home = (tmp_path / "site" / "index.html").read_text()
    assert "commune-agent" in home, "the home page lost the README's intro (snippet README.md:intro)"
    layout = (tmp_path / "site" / "en" / "layout.html").read_text()
    assert "vocabulary.py" in layout, "the layout page lost the README's layout (snippet README.md:layout)"


def test_the_site_uses_no_font_or_script_from_the_network(tmp_path: Path) -> None:
    build_site(tmp_path / "site")
    for html in (tmp_path / "site").rglob("*.html"):
        text = html.read_text()
        assert "fonts.googleapis.com" not in text, f"{html.name} fetches Google Fonts"
        for url in re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', text):
            pytest.fail(f"{html.name} loads {url} from the network")


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs)
    page = docs / "en" / "agent.md"
    page.write_text(page.read_text() + "\nSee [nowhere](no-such-page.md).\n")
    with pytest.raises(Abort):
        build_site(tmp_path / "site", docs_dir=docs)


def test_a_missing_anchor_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs)
    page = docs / "en" / "agent.md"
    page.write_text(page.read_text() + "\nSee [the collector](collector.md#no-such-heading).\n")
    with pytest.raises(Abort):
        build_site(tmp_path / "site", docs_dir=docs)


def test_a_page_left_out_of_the_nav_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs)
    (docs / "en" / "orphan.md").write_text("# Orphan\n")
    with pytest.raises(Abort):
        build_site(tmp_path / "site", docs_dir=docs)


def test_the_readme_is_short_keeps_the_two_commands_and_links_to_the_site() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "make demo   # installs what is missing" in readme
    assert "make test   # installs what is missing" in readme
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", readme)
    assert any(link.startswith("docs/vi/") for link in links), "the README must link to the Vietnamese guide"
    assert len({link for link in links if link.startswith("docs/en/")}) >= 10
    for link in links:
        assert (REPO / link).is_file(), f"README links to {link}, which does not exist"
