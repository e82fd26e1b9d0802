"""Driving one cycle: its steps under their timeouts (a failed step is the
cycle's error, in words), the progress bar, cancellation at a cycle's end."""

from __future__ import annotations

import asyncio
from typing import Any

from .._compat import task_cancelling
from ..driver.client import StepTimeout
from ..driver.scenarios import CycleState, Scenario
from .options import RunOptions

__all__ = ["progress_bar", "raise_if_cancel_requested", "run_steps"]


async def run_steps(scen: Scenario, state: CycleState, opts: RunOptions) -> str | None:
    """Run one cycle's steps; what went wrong, in words (``None``: nothing)."""
    try:
        await scen.run_cycle(state)
    except StepTimeout as exc:
        how = "" if opts.step_timeout_s is not None else " (derived from the slowest connect)"
        return (f"StepTimeout: {exc}; the step timeout was {state.timeout_s:.0f} s{how}: "
                "raise it with --step-timeout SECONDS (step_timeout_s=)")
    except (AssertionError, Exception) as exc:
        # A refused handshake, a protocol surprise: the cycle is recorded
        # as failed and the run goes on.
        return f"{type(exc).__name__}: {exc}"
    return None


def raise_if_cancel_requested() -> None:
    # Python 3.11's asyncio.wait_for can swallow a cancellation that races
    # with a result; the request stays counted on the task. Honour it at the
    # next cycle boundary instead of running on.
    task = asyncio.current_task()
    if task is not None and task_cancelling(task):
        raise asyncio.CancelledError


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    # tqdm's monitor thread outlives the bar: it would count as a thread the
    # run left behind.
    tqdm.monitor_interval = 0
    return tqdm(total=total, desc=desc, unit="cycle", leave=False)
