"""The page's assets are files of the package (found as resources, shipped
as package data) and every page inlines them: one file, nothing fetched."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from leaklab._compat import tomllib
from leaklab.report import story
from leaklab.report.browser import dump_dom, find_chromium
from leaklab.report.page import external_assets, offline_page
from leaklab.report.style import TEMPLATES, template

ASSETS = ("page.html", "report.css", "walkthrough.css", "walkthrough.js", "walkthrough_bar.html",
          "walkthrough_start.html", "first_screen.css")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ASSETS)
def test_each_template_is_a_package_resource(name):
    # GIVEN the package, however it is installed WHEN its templates are looked up as resources
    found = resources.files("leaklab.report").joinpath(TEMPLATES).joinpath(name)
    # THEN each is there, and template() reads the same text
    assert found.is_file()
    assert template(name) == found.read_text(encoding="utf-8") != ""


def test_the_templates_are_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert f"{TEMPLATES}/*" in config["package-data"]["leaklab.report"]
    shipped = {p.name for p in (ROOT / "leaklab" / "report" / TEMPLATES).iterdir()}
    assert set(ASSETS) <= shipped


def test_a_missing_template_is_an_error():
    with pytest.raises(FileNotFoundError):
        template("no-such-template.css")


def test_the_page_inlines_its_styles_and_the_walkthrough_script():
    # WHEN a page is made with the walkthrough
    page = offline_page("a <title>", "<p>body</p>", subtitle="sub", nav=[("#x", "x")], walkthrough=True)
    # THEN every asset is in it, verbatim, and nothing is referenced
    for name in ("report.css", "walkthrough.css", "walkthrough.js"):
        assert template(name) in page, name
    assert template("walkthrough_bar.html").strip() in page and template("walkthrough_start.html").strip() in page
    assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</body></html>\n")
    assert "<title>a &lt;title&gt;</title>" in page and "<h1>a &lt;title&gt;</h1><p>sub</p>" in page
    assert page.count("<script") == 1 and "<link" not in page and external_assets(page) == []
    assert "$" not in page.replace(template("walkthrough.js"), "")  # every slot of the skeleton filled


def test_a_page_without_the_walkthrough_has_no_script():
    page = offline_page("t", "<p>body</p>")
    assert template("report.css") in page
    assert "<script" not in page and template("walkthrough.css") not in page and "ll-walk-bar" not in page
    assert "<nav>" not in page  # no link, no nav


def test_the_first_screen_carries_its_own_style():
    # a notebook cell shows the first screen alone: its style goes with it
    html = story.first_screen({"items": []}, target="t").html
    assert html.startswith(f"<style>\n{template('first_screen.css')}</style>")


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_inlined_assets_work_offline_in_a_browser(tmp_path):
    # GIVEN a page with two walkthrough pages, opened at the second
    body = "<section class='ll-page' data-title='one'>1</section><section class='ll-page' data-title='two'>2</section>"
    page = offline_page("t", body, walkthrough=True).replace("</body>", (
        "<script>document.body.setAttribute('data-header', "
        "getComputedStyle(document.querySelector('header')).display);</script></body>"))
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    dom = dump_dom(path, fragment="page-2")
    # THEN the inline script ran (walkthrough mode, at page 2) and the inline
    # walkthrough style applied (the header hidden)
    assert re.search(r'<body class="ll-walk"', dom)
    assert ">2 / 2 \u2014 two<" in dom
    assert 'data-header="none"' in dom
