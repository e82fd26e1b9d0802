"""The README is a front door; docs/ holds the rest, its command reference
generated from the parser, its links pointing at pages that exist."""

from __future__ import annotations

import re
import runpy

from .test_packaging import ROOT

DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def _pages() -> list:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def test_the_command_reference_matches_the_parser():
    render = runpy.run_path(str(DOCS / "make_cli_md.py"))["render"]
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == render(), \
        "docs/cli.md is stale: run `python docs/make_cli_md.py`"


def test_the_command_reference_has_every_command():
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in ("serve", "run", "why", "checklist", "hunt", "compare", "record", "report", "notebooks"):
        assert f"## leaklab {command}\n" in page, command
    assert "--notebooks DIR" in page and "--force" in page


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    # no dated figures: they live in docs/measurements.md, with their dates
    assert not DATE.findall(readme), DATE.findall(readme)
    assert DATE.findall((DOCS / "measurements.md").read_text(encoding="utf-8"))
    for what in ("leaklab report", "leaklab notebooks", "--target olv --app-dir", "--target mypkg.app:create_app",
                 "--target-file", "await LeakSession(", "docs/first-screen-reference.png", "@pytest.mark.leaklab"):
        assert what in readme, what


def test_every_link_between_the_pages_resolves():
    broken = []
    for page in _pages():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_every_page_is_in_the_index():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "index.md" and f"]({p.name})" not in index]
    assert not missing, missing
