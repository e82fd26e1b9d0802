"""The backend's own page, before and while a browser opens it: a missing
page folder is named before anything starts; a page that loads but never
opens its WebSocket says so, with the page's console errors."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from leaklab.cli import main
from leaklab.driver.browser import BrowserClient, PageDidNotConnect, PageMissing, check_page
from tests.attach.conftest import OLV_APP
from tests.driver.browsers import needs_browser, why_no_browser
from tests.conftest import server_children




def test_a_missing_or_empty_page_folder_is_named_with_the_hint(tmp_path):
    check_page(None)  # a target that does not say: nothing to check
    with pytest.raises(PageMissing, match=r"page folder .*frontend does not exist.*\(run git submodule\)"):
        check_page(tmp_path / "frontend", "run git submodule")
    (tmp_path / "frontend").mkdir()
    with pytest.raises(PageMissing, match=r"frontend has no index.html"):
        check_page(tmp_path / "frontend")
    (tmp_path / "frontend" / "index.html").write_text("<html></html>")
    check_page(tmp_path / "frontend")


def test_browser_run_on_an_app_whose_frontend_submodule_is_empty_stops_before_anything_starts(tmp_path, capsys):
    if why_no_browser() is not None:
        pytest.skip(why_no_browser())
    # GIVEN a checkout of the upstream-shaped app cloned without its frontend submodule
    app = tmp_path / "my-backend"
    shutil.copytree(OLV_APP, app, ignore=shutil.ignore_patterns("__pycache__", "frontend"))
    (app / "frontend").mkdir()
    # WHEN a browser run is asked for
    code = main(["run", "--target", "olv", "--app-dir", str(app), "--client", "browser", "--cycles", "3"])
    # THEN a one-line error names the folder and how upstream ships it; nothing ran
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{app / 'frontend'} has no index.html" in err and "git submodule update --init" in err
    assert server_children() == []


@needs_browser
def test_a_page_that_loads_but_never_connects_says_so_with_its_console_errors():
    page = "data:text/html,<script>console.error('wsUrl is not set: no socket opened')</script><p>hi</p>"

    async def go():
        async with BrowserClient(timeout_s=1.5) as client:
            tab = client.new_tab("ws://127.0.0.1:9/client-ws", base_url="http://127.0.0.1:9", page_url=page)
            try:
                await tab.connect()
            finally:
                if tab.context is not None:
                    await tab.context.close()

    with pytest.raises(PageDidNotConnect) as info:
        asyncio.run(go())
    message = str(info.value)
    assert "loaded but did not connect to ws://127.0.0.1:9/client-ws within 1.5 s" in message
    assert "--step-timeout" in message and "wsUrl is not set: no socket opened" in message
