"""A fork as users run it: a renamed package found without options, proxy
mode dialing the address its config gives, the user's stored chats copied
into the working folder (never written)."""

from __future__ import annotations

import asyncio
import shutil
import sys

import pytest

from leaklab.session import LeakSession
from leaklab.targets import AttachError, resolve_target
from leaklab.targets.olv.discovery import find_olv_packages, olv_layout
from tests.attach.conftest import tree_digest
from tests.conftest import run_async

FORK_PACKAGE = "ai_chat"
QUICK = dict(settle_s=0.1, timeline_s=0.5, progress=False, runs_dir=False)


def quick_target(fork):
    """The fork's target with its MCP servers off (their start-up is slow; the MCP paths are tested elsewhere)."""
    conf = fork / "conf.yaml"
    conf.write_text(conf.read_text().replace("use_mcpp: true", "use_mcpp: false"))
    return resolve_target("olv", app_dir=fork)


@pytest.fixture
def fork(olv_app):
    """The test app as a fork has it: ``src/open_llm_vtuber`` renamed to
    ``src/ai_chat``, proxy mode on (its conf.yaml is conf.proxy.yaml)."""
    shutil.move(olv_app / "src" / "open_llm_vtuber", olv_app / "src" / FORK_PACKAGE)
    shutil.copyfile(olv_app / "conf.proxy.yaml", olv_app / "conf.yaml")
    yield olv_app
    for name in [n for n in sys.modules if n == FORK_PACKAGE or n.startswith(FORK_PACKAGE + ".")]:
        del sys.modules[name]


def test_a_renamed_package_is_found_and_said(fork):
    # GIVEN a fork whose package is renamed, WHEN its layout is found with no option
    entry, package, note = olv_layout(fork, None)
    # THEN the one server package is used, and the setup notes say which
    assert (entry, package) == (fork / "src", FORK_PACKAGE)
    assert note is not None and FORK_PACKAGE in note


def test_several_packages_or_none_is_a_clear_error(fork):
    # GIVEN a second server package beside the fork's
    shutil.copytree(fork / "src" / FORK_PACKAGE, fork / "src" / "ai_chat_old")
    assert [name for _, name in find_olv_packages(fork)] == [FORK_PACKAGE, "ai_chat_old"]
    # THEN the error lists both and names the flag that picks one
    with pytest.raises(AttachError, match=r"ai_chat, ai_chat_old.*--option package=NAME"):
        olv_layout(fork, None)
    assert olv_layout(fork, "ai_chat_old")[1] == "ai_chat_old"
    # and with no server package at all, it says what was looked for
    shutil.rmtree(fork / "src")
    with pytest.raises(AttachError, match=r"server\.py .*websocket_handler\.py .*/client-ws"):
        olv_layout(fork, None)


def test_bad_data_option_is_refused(fork):
    with pytest.raises(AttachError, match="option data must be 'copy'"):
        resolve_target("olv", app_dir=fork, options={"data": "all"})


@pytest.mark.timeout(300)
def test_the_fork_runs_proxied_with_its_own_data_and_nothing_written(fork, monkeypatch):
    # GIVEN the fork (renamed, proxy on, MCP off for speed) with months of
    # stored chats, its tree recorded
    monkeypatch.setenv("OLV_APP_FAULTS", "none")
    target = quick_target(fork)
    stored = sorted((fork / "chat_history").rglob("*.json"))
    assert len(stored) >= 5
    before = tree_digest(fork)
    seen = {}

    async def main():
        session = LeakSession(target, **QUICK)
        await session.start()
        try:
            attachment = session.app.state.leaklab_olv
            seen["port"], seen["bound"] = attachment.port, session.server.port
            seen["copied"] = sorted(p.name for p in (attachment.workdir / "chat_history").rglob("*.json"))
            result = await session.run("proxy-chat", cycles=2)
            seen["notes"] = session.target_notes()
        finally:
            await session.stop()
        return result

    # WHEN proxied chats run through its /proxy-ws
    result = run_async(main(), allow_loop_errors=True)
    # THEN the app's own idea of its address was true: the proxy reached /client-ws
    assert seen["port"] == seen["bound"]
    assert result.errors == [] and result.failed_cycles == [], result.errors
    assert result.records[-1].get("type:ServiceContext", 0) >= 2  # the proxy's upstream session
    # the user's chats were there from the start, and the notes say so
    assert seen["copied"] == [p.name for p in stored]
    assert any(n.startswith("data: your chat_history/") and f"{len(stored)} files" in n for n in seen["notes"]), seen["notes"]
    assert any(FORK_PACKAGE in n for n in seen["notes"])
    assert any(f"127.0.0.1:{seen['port']}" in n for n in seen["notes"])
    # and not one of the user's files was written
    assert tree_digest(fork) == before


def test_data_empty_starts_clean(fork, monkeypatch):
    monkeypatch.setenv("OLV_APP_FAULTS", "none")
    target = resolve_target("olv", app_dir=fork, options={"data": "empty"})
    app = target.make_app()
    attachment = app.state.leaklab_olv
    try:
        assert list((attachment.workdir / "chat_history").iterdir()) == []
        assert any(n.startswith("data: none copied") for n in attachment.notes)
    finally:
        attachment.close()


@pytest.mark.timeout(300)
def test_nothing_of_the_app_runs_after_stop(fork, monkeypatch, capfd):
    # GIVEN the fork whose switch starts a background init that runs 30 s
    monkeypatch.setenv("OLV_APP_FAULTS", "none")
    monkeypatch.setenv("OLV_APP_HEAVY_INIT_S", "30")
    target = quick_target(fork)
    seen = {}

    async def main():
        session = LeakSession(target, **QUICK)
        await session.start()
        try:
            await session.run("switch-then-close", cycles=1)
        finally:
            await session.stop()
        seen["reaped"] = list(session.reaped)
        capfd.readouterr()  # what the run printed is not the question
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        seen["pending"] = [t.get_coro().__qualname__ for t in pending]
        await asyncio.sleep(0.5)  # were anything of the app still running, it would fail or print now

    # WHEN the session stops while the init task is pending
    run_async(main(), allow_loop_errors=True)
    # THEN the task was cancelled at stop, and said so, with the line that created it
    assert any("_finish_heavy_init" in line and "service_context.py:" in line and "cancelled" in line
               for line in seen["reaped"]), seen["reaped"]
    # nothing of the app is pending, and nothing was printed after stop()
    assert not [p for p in seen["pending"] if "heavy" in p], seen["pending"]
    out, err = capfd.readouterr()
    assert out == "" and err == ""
