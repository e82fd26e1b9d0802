"""Scenarios, without a backend: step lists are checked before anything
runs, and a cycle's tabs are open at once and all ended at its end."""

from __future__ import annotations

import asyncio

import pytest

from leaklab.driver.scenarios import CycleState, Scenario, UnknownScenarioError, get_scenario, tab


def test_step_lists_with_a_bad_step_are_clear_errors():
    with pytest.raises(UnknownScenarioError, match="unknown step 'jump'.*valid: connect"):
        get_scenario("connect,jump")
    with pytest.raises(UnknownScenarioError, match="needs an open tab: put 'connect' before it"):
        get_scenario("switch,close")
    with pytest.raises(UnknownScenarioError, match="wait needs seconds"):
        get_scenario("connect,wait:soon")
    # two tabs: a second connect needs another tab, and each tab is checked on its own
    with pytest.raises(UnknownScenarioError, match="tab 1 is already open"):
        get_scenario("connect,connect")
    with pytest.raises(UnknownScenarioError, match="tab:N with N a tab number"):
        get_scenario("connect,tab:0")
    with pytest.raises(UnknownScenarioError, match="needs an open tab"):
        get_scenario("connect,tab:2,text")
    assert get_scenario("connect,tab:2,connect,text,close,tab:1,close").name == "connect,tab:2,connect,text,close,tab:1,close"


def test_tabs_are_open_at_once_and_a_cycle_ends_every_one_left_open():
    class FakeClient:
        def __init__(self) -> None:
            self.aborted = False

        async def abort(self) -> None:
            self.aborted = True

    async def open_tab(state: CycleState) -> None:
        state.client = FakeClient()  # type: ignore[assignment]

    state = CycleState("127.0.0.1", 0, "/ws", None, (), 1, 1.0)
    seen: list[int] = []

    async def count(state: CycleState) -> None:
        seen.append(len(state.tabs))

    asyncio.run(Scenario("two", [open_tab, tab(2), open_tab, count]).run_cycle(state))
    assert seen == [2]  # both open at once
    assert state.tabs == {} and state.sessions_ended == 2 and state.active_tab == 1
