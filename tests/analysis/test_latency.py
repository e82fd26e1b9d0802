"""latency_summary and split_latency."""

from __future__ import annotations

import numpy as np
import pytest

from leaklab.analysis import latency_summary, split_latency
from tests.analysis.records import census


def test_latency_ramp_of_10ms_per_cycle_slows():
    # GIVEN the full reply 10 ms slower every cycle, LLM time flat
    records = [{"cycle": 0, "t": 0.0}] + [
        {"cycle": c, "t": float(c), "latency_end_ms": 200.0 + 10 * c, "llm_ms": 150.0, "latency_first_ms": 80.0}
        for c in range(1, 11)
    ]
    # WHEN summarized
    lat = latency_summary(records)
    # THEN the reply slows, by the backend's share, not the LLM's
    assert lat["verdict"] == "slows"
    assert lat["per_cycle"] == pytest.approx(10.0)
    assert (lat["first"], lat["last"]) == (210.0, 300.0)
    assert lat["llm"]["verdict"] == "none"
    assert lat["backend"]["verdict"] == "slows"
    assert lat["first_reply"]["verdict"] == "none"


@pytest.mark.parametrize("seed", range(20))
def test_noisy_flat_latency_does_not_slow(seed):
    # GIVEN a flat reply time with ±20 ms noise (seeded)
    rng = np.random.default_rng(seed)
    records = [{"cycle": c, "latency_end_ms": float(200 + rng.normal(0, 20))} for c in range(1, 21)]
    # WHEN summarized THEN no slowdown
    assert latency_summary(records)["verdict"] == "none"


def test_latency_summary_without_latency_data():
    # GIVEN no latency columns WHEN summarized THEN empty fields, verdict none
    lat = latency_summary(census("tasks", [1, 1, 1]))
    assert lat["first"] is None and lat["verdict"] == "none"
    assert "llm" not in lat and "backend" not in lat


def test_split_latency_backend_is_end_minus_llm():
    # GIVEN end and LLM times, plus one cycle with only a recorded backend_ms
    records = [
        {"cycle": 0},
        {"cycle": 1, "latency_end_ms": 300.0, "llm_ms": 120.0},
        {"cycle": 2, "latency_end_ms": 310.0, "llm_ms": 100.0, "backend_ms": 999.0},
        {"cycle": 3, "backend_ms": 50.0},
    ]
    # WHEN split
    df = split_latency(records)
    # THEN backend = end - llm where both exist, else the recorded value; baseline excluded
    assert list(df.columns) == ["llm_ms", "backend_ms", "blocked_ms"]  # blocked_ms: NaN without the loop probe
    assert df["backend_ms"].tolist() == [180.0, 210.0, 50.0]
    assert list(df.index) == [1, 2, 3]
