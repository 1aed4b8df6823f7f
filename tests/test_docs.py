"""The README and docs/ point only at what exists: every markdown link's file
and anchor, and every prose pointer ``docs/NAME.md, "Section"`` in the code,
the tests and the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
POINTER = re.compile(r"docs/([a-z-]+\.md)(?:,|\s)+(?:#:\s*)?[\"'“]([^\"'”]+)[\"'”]", re.S)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(page: Path) -> list[str]:
    return [m.group(1) for m in re.finditer(r"(?m)^#+ (.+)$", page.read_text())]


def _links() -> list[tuple[Path, str]]:
    return [
        (page, target)
        for page in PAGES
        for target in LINK.findall(page.read_text())
        if not target.startswith(("http://", "https://", "mailto:"))
    ]


@pytest.mark.parametrize(("page", "target"), _links(), ids=lambda x: str(x)[-40:])
def test_every_link_names_a_file_and_a_heading_that_exist(page, target):
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.name} links to {target}, which does not exist"
    if anchor:
        assert anchor in {_slug(h) for h in _headings(file)}, f"{page.name}: no #{anchor}"


def _pointers() -> list[tuple[str, str, str]]:
    found = []
    for folder in ("src", "tests", "benchmarks", "examples", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md"):
                text = path.read_text()
                for name, section in POINTER.findall(text):
                    found.append((path.name, name, " ".join(section.replace("#:", " ").split())))
    return found


def test_the_pointers_were_found():
    # The kit's comments cite the docs by section; a regex that found none
    # would make the test below pass on nothing.
    assert len(_pointers()) >= 10


@pytest.mark.parametrize(("where", "name", "section"), _pointers())
def test_every_pointer_into_the_docs_names_a_section_that_exists(where, name, section):
    page = ROOT / "docs" / name
    assert page.exists(), f"{where} points to docs/{name}, which does not exist"
    headings = [" ".join(h.split()) for h in _headings(page)]
    assert any(h.startswith(section) or section in h for h in headings), (
        f"{where} points to docs/{name}, {section!r}; its headings: {headings}"
    )


def test_the_readme_is_a_front_door():
    """What a newcomer needs, with the long material in docs/ (the README was
    659 lines)."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for example in ("cellverify check", "CellInvariants", "cellverify diagnose", "Monitor("):
        assert example in readme
