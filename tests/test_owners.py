"""One owner rule for the retention chains and the loop sampler."""

from __future__ import annotations

import asyncio
import os

import psutil
import pytest

import leaklab
from leaklab import owners
from leaklab.probes.stacks import default_owner
from leaklab.retention.owners import owner_of_module

pytestmark = pytest.mark.lowest_env


def test_the_chains_and_the_sampler_agree_on_every_kind() -> None:
    for subject in ("asyncio.events", asyncio.__file__, "leaklab.probes.loop", "leaklab.backend.server",
                    __name__, os.path.abspath(__file__), "psutil", ""):
        assert default_owner(subject) == owner_of_module(subject).label == owners.label_of(subject)
    assert owners.owner_of("psutil") == ("library", f"psutil {psutil.__version__}")
    assert owners.owner_of("leaklab.probes.loop").kind == "leaklab"


def test_the_reference_backend_is_yours_when_leaklab_is_installed_in_site_packages(monkeypatch) -> None:
    # Installed from a wheel, leaklab's folder is inside site-packages: its
    # reference backend is still the user's code, the rest still leaklab's.
    site = os.path.normcase(os.path.realpath(os.path.dirname(os.path.dirname(leaklab.__file__)))) + os.sep
    monkeypatch.setattr(owners, "_SITE", (site,))
    owners.owner_of.cache_clear()
    try:
        backend_file = os.path.join(os.path.dirname(leaklab.__file__), "backend", "server.py")
        assert owners.owner_of(backend_file).kind == "yours"
        assert owner_of_module("leaklab.backend.server").kind == "yours"
        assert owners.owner_of(leaklab.__file__).kind == "leaklab"
    finally:
        owners.owner_of.cache_clear()
