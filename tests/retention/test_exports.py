"""The public API of leaklab.retention is what __all__ says, and documented."""

from __future__ import annotations

import leaklab.retention as retention


def test_all_names_exist_and_are_documented():
    for name in retention.__all__:
        obj = getattr(retention, name)
        if callable(obj):
            assert obj.__doc__, f"{name} has no docstring"


def test_no_private_name_is_exported():
    assert not [n for n in retention.__all__ if n.startswith("_")]
    assert sorted(retention.__all__) == sorted(set(retention.__all__))
