"""Headless Chromium renders a page to a PNG, offline, and leaves nothing behind."""

from __future__ import annotations

import pytest

from leaklab.report.browser import find_chromium, screenshot
from leaklab.report.build import offline_page
from tests.conftest import server_children


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_screenshot_of_an_offline_page(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(offline_page("a page", "<div style='background:#123456;width:400px;height:300px'></div>"))
    png = screenshot(page, tmp_path / "page.png", width=800, height=600)
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (800, 600)
        colors = dict((c, n) for n, c in im.convert("RGB").getcolors(maxcolors=1 << 20))
    assert colors.get((0x12, 0x34, 0x56), 0) >= 400 * 300 * 0.9
    assert server_children() == []


def test_a_missing_browser_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        screenshot(tmp_path / "page.html", tmp_path / "x.png", chromium=str(tmp_path / "no-such-chromium"))
