"""The test app's fault switch (tests/attach/olv_app, ``OLV_APP_FAULTS``):
parsed at call time; unset means C8 alone; ``none``, ``all``, lists."""

from __future__ import annotations

import importlib.util

import pytest

from tests.attach.conftest import OLV_APP

ALL = {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"}


@pytest.fixture
def faults():
    # The module alone (it imports nothing from the app): no sys.path change.
    path = OLV_APP / "src" / "open_llm_vtuber" / "faults.py"
    spec = importlib.util.spec_from_file_location("olv_app_faults_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {"C8"}),
        ("none", set()),
        ("NONE", set()),
        ("", set()),
        ("all", ALL),
        ("C3", {"C3"}),
        (" c2, C9 ,", {"C2", "C9"}),
        ("none,C4", {"C4"}),
        ("all,C1", ALL),
    ],
)
def test_fault_on_reads_the_variable(faults, monkeypatch, value, expected):
    # GIVEN OLV_APP_FAULTS set to a value (or unset)
    if value is None:
        monkeypatch.delenv("OLV_APP_FAULTS", raising=False)
    else:
        monkeypatch.setenv("OLV_APP_FAULTS", value)
    # THEN exactly the expected faults are on
    assert faults.active_faults() == expected
    assert {f for f in ALL if faults.fault_on(f)} == expected
    assert faults.fault_on("c8") == ("C8" in expected)


def test_read_at_call_time(faults, monkeypatch):
    # GIVEN one value, then another, with no reload in between
    monkeypatch.setenv("OLV_APP_FAULTS", "C1")
    assert faults.fault_on("C1")
    monkeypatch.setenv("OLV_APP_FAULTS", "none")
    # THEN the second is what counts
    assert not faults.fault_on("C1")


def test_unknown_id_is_refused(faults, monkeypatch):
    monkeypatch.setenv("OLV_APP_FAULTS", "C2,C10")
    with pytest.raises(ValueError, match="unknown fault 'C10'"):
        faults.fault_on("C2")
