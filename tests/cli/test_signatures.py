"""Each sync wrapper shows its async twin's parameters (``help()``,
``inspect.signature``, an IDE), the way httpx's Client/AsyncClient do."""

from __future__ import annotations

import importlib
import inspect

import pytest


PAIRS = [
    pytest.param("leaklab.hunt", "hunt", "hunt_async", id="hunt"),
    pytest.param("leaklab.checklist", "run_checklist", "run_checklist_async", id="run_checklist"),
    pytest.param("leaklab.compare", "compare", "compare_async", id="compare"),
    pytest.param("leaklab.compare", "prove_fix", "prove_fix_async", id="prove_fix"),
    pytest.param("leaklab.session", "run", "run_async", id="run"),
    pytest.param("leaklab.report.build", "build_report", "build_report_async", id="build_report"),
]


@pytest.mark.parametrize("module, sync, twin", PAIRS)
def test_sync_wrapper_has_its_async_twins_parameters(module, sync, twin):
    mod = importlib.import_module(module)
    sync_fn, async_fn = getattr(mod, sync), getattr(mod, twin)
    assert inspect.iscoroutinefunction(async_fn) and not inspect.iscoroutinefunction(sync_fn)
    ours, theirs = inspect.signature(sync_fn), inspect.signature(async_fn)
    assert list(ours.parameters.values()) == list(theirs.parameters.values())
    assert ours.return_annotation == theirs.return_annotation
    assert f":func:`{twin}`" in (sync_fn.__doc__ or "")
