"""census_frame and timeline_frame: records -> float frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leaklab.analysis import (
    CensusRecord,
    TimelineSample,
    census_frame,
    judge,
    timeline_frame,
)


def test_census_frame_indexes_by_cycle_sorts_columns_and_zero_fills_counts():
    # GIVEN records out of order, a task qualname that appears only at cycle 2
    # and an fds value missing at cycle 1
    records = [
        {"cycle": 2, "t": 2.0, "tasks": 4, "task:Handler.run": 2, "fds": 12},
        {"cycle": 0, "t": 0.0, "tasks": 2, "fds": 10, "type:Ctx": 1},
        CensusRecord(cycle=1, t=1.0, metrics={"tasks": 3, "container:app.sessions": 1}),
    ]
    # WHEN the frame is built
    df = census_frame(records)
    # THEN it is indexed by cycle, columns sorted, counts filled with 0, others NaN
    assert list(df.index) == [0, 1, 2] and df.index.name == "cycle"
    assert list(df.columns) == sorted(df.columns)
    assert df["task:Handler.run"].tolist() == [0.0, 0.0, 2.0]
    assert df["type:Ctx"].tolist() == [1.0, 0.0, 0.0]
    assert df["container:app.sessions"].tolist() == [0.0, 1.0, 0.0]
    assert math.isnan(df.loc[1, "fds"])
    assert all(dt == np.float64 for dt in df.dtypes)


def test_census_frame_rejects_duplicate_or_missing_cycles():
    # GIVEN records with a duplicated cycle, and one without a cycle
    # WHEN / THEN the frame refuses them instead of guessing
    with pytest.raises(ValueError, match="duplicated"):
        census_frame([{"cycle": 1, "tasks": 1}, {"cycle": 1, "tasks": 2}])
    with pytest.raises(ValueError, match="cycle"):
        census_frame([{"t": 0.0, "tasks": 1}])


def test_census_frame_of_nothing_is_empty():
    # GIVEN no records WHEN framed THEN an empty frame indexed by cycle
    df = census_frame([])
    assert df.empty and df.index.name == "cycle"
    assert judge([]) == {}


def test_timeline_frame_indexes_by_sorted_t():
    # GIVEN samples out of order, one as a dataclass
    samples = [{"t": 0.5, "tasks": 3}, TimelineSample(t=0.0, metrics={"tasks": 4, "task:X.y": 1})]
    # WHEN framed
    df = timeline_frame(samples)
    # THEN indexed by t ascending, counts zero-filled
    assert list(df.index) == [0.0, 0.5] and df.index.name == "t"
    assert df["task:X.y"].tolist() == [1.0, 0.0]
    assert timeline_frame(None).empty
