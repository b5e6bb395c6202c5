"""The project's knowledge lives in docs/: the code cites its pages, and the citations hold.

A reader has the repository and nothing else: code and tests cite pages of ``docs/``
(``docs/algorithms.md#heatmaps``), never a specification outside the repository nor an
issue number. The site itself is built strictly by ``make docs`` (in CI, by ``make test``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# "SPEC §5", "DESIGN.md", "DESIGN \"One store\"": documents a reader of the repository lacks
OUTSIDE = re.compile(
    r"SPEC\s*§|\bSPEC\.md\b|\bDESIGN\.md\b|\bDESIGN\s+\"|\.\./shared\b|/work/shared"
)
# "issue 20", "issue #18 item 5", "issues 7, 21.4", "(#16 item 3)"
ISSUE = re.compile(r"\bissues?\s+#?\d+|(?<![\w&#/])#\d{1,3}\b(?![\w-])", re.IGNORECASE)
DOC_LINK = re.compile(r"\bdocs/([\w.-]+\.md)(?:#([\w-]+))?")


def _tracked(*patterns: str) -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", *patterns], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / p for p in out.split("\0") if p and (ROOT / p).is_file()]


def _sources() -> list[Path]:
    return [p for p in _tracked("*.py") if not p.name.startswith("test_docs")]


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (MkDocs) gives a heading."""
    from markdown.extensions.toc import slugify

    return slugify(heading, "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {_slug(m.group(1).strip()) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def test_no_code_cites_a_document_outside_the_repository():
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in _sources()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "cite a docs/ page instead:\n" + "\n".join(hits[:40])


def test_no_code_cites_an_issue_number():
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in _sources()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if ISSUE.search(line)
    ]
    assert not hits, "say what the issue asked for, or cite a docs/ page:\n" + "\n".join(hits[:40])


def test_docs_pages_cited_from_code_exist_with_their_sections():
    cited = 0
    missing = []
    for p in [*_sources(), ROOT / "README.md", ROOT / "CONTRIBUTING.md"]:
        for m in DOC_LINK.finditer(p.read_text(encoding="utf-8")):
            cited += 1
            page, anchor = DOCS / m.group(1), m.group(2)
            if not page.is_file():
                missing.append(f"{p.relative_to(ROOT)}: docs/{m.group(1)} does not exist")
            elif anchor and anchor not in _anchors(page):
                missing.append(f"{p.relative_to(ROOT)}: docs/{m.group(1)} has no section #{anchor}")
    assert not missing, "\n".join(missing)
    assert cited >= 10, "the code should say which docs page explains it"


def test_every_docs_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*([\w.-]+\.md)\s*$", nav, re.M))
    pages = {p.name for p in DOCS.glob("*.md")}
    assert pages - listed == set(), "add these pages to mkdocs.yml's nav"
    assert listed - pages == set(), "mkdocs.yml lists pages that do not exist"


def test_the_docs_and_readme_cite_no_document_outside_the_repository():
    for p in [*DOCS.glob("*.md"), ROOT / "README.md", ROOT / "CONTRIBUTING.md"]:
        text = p.read_text(encoding="utf-8")
        assert not OUTSIDE.search(text), p.name


def test_readme_stays_an_entry_point():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 260
    head = "\n".join(text.splitlines()[:8])
    assert "make demo" in head and "make test" in head
    for page in ("docs/algorithms.md", "docs/architecture.md", "docs/cli.md", "docs/install.md"):
        assert page in text


def test_slug_is_the_anchor_mkdocs_makes():
    assert _slug("The Eye Tribe protocol") == "the-eye-tribe-protocol"
    assert _slug("Settings, data and the Python API") == "settings-data-and-the-python-api"
