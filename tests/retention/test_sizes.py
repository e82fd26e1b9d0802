"""Shallow, deep and retained sizes of a group."""

from __future__ import annotations

import sys
import types

import pytest

from leaklab.retention import analyze_survivors, retained_size

MB = 1024 * 1024


class Holder:
    def __init__(self, blob: bytearray) -> None:
        self.blob = blob
        self.name = "holder"


@pytest.fixture
def module():
    mod = types.ModuleType("leaklab_test_sizes_module")
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]
    mod.__dict__.clear()


def _hold_private(mod: types.ModuleType) -> None:
    mod.holder = Holder(bytearray(MB))


def _hold_shared(mod: types.ModuleType) -> None:
    mod.shared_blob = bytearray(MB)
    mod.holder = Holder(mod.shared_blob)


def test_object_owning_a_megabyte_retains_it_and_deep_is_at_least_shallow(module):
    # GIVEN a module global holding an object that alone owns a 1 MB bytearray
    _hold_private(module)
    # WHEN analysed
    [group] = analyze_survivors({"Holder": [module.holder]}).groups
    # THEN retained covers the megabyte, deep >= shallow
    assert group.root_kind == "module_global"
    assert group.retained_bytes >= MB
    assert group.deep_bytes >= group.shallow_bytes > 0
    assert group.deep_bytes >= MB


def test_bytes_also_held_elsewhere_are_not_retained(module):
    # GIVEN the same object, but its bytearray is also a module global
    _hold_shared(module)
    # WHEN analysed
    [group] = analyze_survivors({"Holder": [module.holder]}).groups
    # THEN cutting the root edge would not free the megabyte
    assert group.retained_bytes < MB
    # while the deep size (everything reachable) still counts it
    assert group.deep_bytes >= MB


def _cycle_owner(mod: types.ModuleType) -> None:
    a, b = Holder(bytearray(MB)), Holder(bytearray(MB))
    a.peer, b.peer = b, a  # a cycle reachable only through mod.holder
    mod.holder = a


def test_a_private_cycle_is_retained_in_full(module):
    # GIVEN a holder in a two-object cycle, each owning 1 MB
    _cycle_owner(module)
    # WHEN its retained size is computed
    size, complete = retained_size([module.holder])
    # THEN both megabytes count (a greedy "all referrers seen" walk would miss the cycle)
    assert complete and size >= 2 * MB


def test_limit_makes_a_lower_bound(module):
    # GIVEN a holder owning many small objects
    module.holder = [[i] for i in range(1000)]
    # WHEN the walk is bounded
    size, complete = retained_size([module.holder], limit=10)
    full, full_complete = retained_size([module.holder])
    # THEN the result is flagged incomplete and smaller
    assert not complete and full_complete
    assert size < full
