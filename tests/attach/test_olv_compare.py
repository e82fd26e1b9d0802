"""Prove a fix on the upstream-shaped app: a copy whose ``handle_disconnect``
looks the context up before popping it (so ``close()`` runs) against the
original (its planted C9: popped first, the lookup finds nothing). Slow (two
apps start their MCP servers on every connection): marked ``extended``, run
by .ci/run after the suite."""

from __future__ import annotations

import shutil

import pytest

from leaklab.compare import compare

pytestmark = pytest.mark.extended

FIXED = '''        context: ServiceContext | None = None
        context = self.client_contexts.pop(client_uid, None)  # the fix: looked up as it is popped
'''


def test_the_fix_shows_close_running_for_every_context_and_nothing_else_claimed(olv_app, tmp_path, monkeypatch):
    # GIVEN the original with C9 on, and a copy with the fix written in its code
    monkeypatch.setenv("OLV_APP_FAULTS", "C9")
    fixed = tmp_path / "fixed"
    shutil.copytree(olv_app, fixed)
    handler = fixed / "src" / "open_llm_vtuber" / "websocket_handler.py"
    code = handler.read_text()
    start = code.index("        context: ServiceContext | None = None\n")
    end = code.index("        if fault_on(\"C7\"):", start)
    code = code[:start] + FIXED + code[end:]
    code = code.replace('        if fault_on("C9"):\n            context = self.client_contexts.get(client_uid)\n', "")
    handler.write_text(code)
    # WHEN the fixed copy is compared against the original
    result = compare("olv", app_dir=fixed, against=olv_app, items="C9,C2", scenarios=["open-close"], hunt=None, runs_dir=tmp_path,
                     cycles=3)
    rows = {(r.unit, r.metric): r for r in result.rows}
    # THEN close() ran for 0 of N contexts before, N of N after
    close = rows[("open-close", "lifecycle:ServiceContext.close")]
    assert (close.before, close.after, close.change) == ("ran for 0 of 3", "ran for 3 of 3", "fixed"), close
    assert rows[("C9", "verdict")].change == "fixed", rows[("C9", "verdict")]
    # and nothing else is claimed: no new leak, nothing still leaking, an
    # item the fix does not touch unchanged
    assert rows[("C2", "verdict")].change == "unchanged", rows[("C2", "verdict")]
    assert not [r for r in result.rows if r.change in ("new leak", "still leaks", "worse", "can't tell")], result.rows
    # the user's folders are untouched
    assert "fault_on(\"C9\")" in (olv_app / "src" / "open_llm_vtuber" / "websocket_handler.py").read_text()
