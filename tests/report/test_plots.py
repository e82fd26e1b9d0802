"""Plots from synthetic records: Figures with labelled axes and units, no pyplot."""

from __future__ import annotations

import matplotlib
import pytest
from matplotlib.figure import Figure

from leaklab.checklist import Outcome
from leaklab.report import plots


def census(n: int = 5, *, leak: bool = True) -> list[dict]:
    """A C8-like census: one more context and task per cycle, LLM time growing."""
    out = [{"cycle": 0, "t": 0.0, "type:ServiceContext": 1, "tasks": 2, "rss_mb": 90.0}]
    for c in range(1, n + 1):
        out.append({
            "cycle": c, "t": float(c), "type:ServiceContext": 1 + (c if leak else 0), "tasks": 2 + (c if leak else 0),
            "rss_mb": 90.0 + 2 * c, "latency_end_ms": 400.0 + 30 * c, "llm_ms": 50.0 + 30 * c,
        })
    return out


TIMELINE = [{"t": 0.25 * i, "type:ServiceContext": 6 if i < 6 else 1, "tasks": 7 if i < 6 else 2} for i in range(14)]


def axes_with_data(fig: Figure):
    return [ax for ax in fig.axes if ax.get_visible()]


def assert_labelled(fig: Figure, *, units: tuple[str, ...]) -> None:
    """Every visible axis has an x and a y label; the y labels carry the units."""
    axes = axes_with_data(fig)
    assert axes
    for ax in axes:
        assert ax.get_xlabel(), f"no x label on {ax.get_title()!r}"
        assert ax.get_ylabel(), f"no y label on {ax.get_title()!r}"
    ylabels = " ".join(ax.get_ylabel() for ax in axes)
    for unit in units:
        assert unit in ylabels, (unit, ylabels)


def test_counts_per_cycle_draws_each_watched_type_and_tasks():
    # GIVEN a census where contexts and tasks grow WHEN plotted
    fig = plots.counts_per_cycle(census())
    # THEN one line per count, counts on y, cycles on x
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["live ServiceContext", "pending asyncio tasks"]
    assert list(ax.get_lines()[0].get_ydata()) == [1, 2, 3, 4, 5, 6]
    assert_labelled(fig, units=("count",))
    assert "cycle" in ax.get_xlabel()


def test_overview_has_four_panels_with_their_units():
    fig = plots.overview(census())
    assert_labelled(fig, units=("count", "MiB", "ms"))
    assert len(axes_with_data(fig)) == 4


def test_latency_split_stacks_llm_under_backend_time():
    fig = plots.latency_split(census())
    (ax,) = fig.axes
    bars = ax.patches
    # 5 LLM bars, 5 backend bars on top of them
    assert len(bars) == 10
    assert bars[0].get_height() == pytest.approx(80.0)  # llm at cycle 1
    assert bars[5].get_y() == pytest.approx(80.0) and bars[5].get_height() == pytest.approx(350.0)
    assert_labelled(fig, units=("ms",))


def test_retention_timeline_in_seconds_after_the_last_cycle():
    fig = plots.retention_timeline(TIMELINE)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "time after the last cycle (s)"
    assert_labelled(fig, units=("count",))
    # live objects by default: the drop from 6 to 1 at 1.5 s is what to read
    (line,) = ax.get_lines()
    assert line.get_label() == "live ServiceContext"
    assert list(line.get_ydata()[[0, -1]]) == [6, 1]
    with_tasks = plots.retention_timeline(TIMELINE, ["type:ServiceContext", "tasks"])
    assert len(with_tasks.axes[0].get_lines()) == 2


def test_outcome_series_titles_the_verdict():
    outcome = Outcome("C8", "Untracked heavy init task", "confirmed", {"answer": "x"},
                      {"type:ServiceContext": [1, 2, 3, 4], "task:ServiceContext._finish_heavy_init": [0, 1, 2, 3]})
    fig = plots.outcome_series(outcome)
    assert "confirmed" in fig._suptitle.get_text()
    assert_labelled(fig, units=("count",))


def test_fix_comparison_one_panel_per_variant_on_one_scale():
    outcomes = {
        "faulty (C8)": Outcome("C8", "t", "confirmed", {}, {"type:ServiceContext": [1, 2, 3, 4]}),
        "proposed fix": Outcome("C8", "t", "ruled_out", {}, {"type:ServiceContext": [1, 1, 1, 1]}),
        "full fix + C9": Outcome("C8", "t", "ruled_out", {}, {}),
    }
    fig = plots.fix_comparison(outcomes)
    axes = axes_with_data(fig)
    assert [ax.get_title().split("\n") for ax in axes] == [
        ["faulty (C8)", "confirmed"], ["proposed fix", "ruled_out"], ["full fix + C9", "ruled_out"]]
    assert axes[0].get_ylim() == axes[1].get_ylim()
    assert_labelled(fig, units=("count",))


def test_retention_sizes_in_kib():
    report = {"groups": [{"type": "ServiceContext", "count": 3, "root_kind": "pending_task",
                          "deep_bytes": 3 * 2 * 1024 * 1024, "retained_bytes": 6 * 1024 * 1024}]}
    fig = plots.retention_sizes(report)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "size (KiB)"
    assert max(p.get_width() for p in ax.patches) == pytest.approx(6144)


def test_missing_data_gives_a_labelled_empty_figure():
    fig = plots.overview([{"cycle": 0}, {"cycle": 1}])
    assert_labelled(fig, units=("count",))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.startswith("no ") for t in texts)


def test_metric_label_units():
    assert plots.metric_label("rss_mb") == "resident memory (MiB)"
    assert plots.metric_label("container:handler.client_connections") == "len(handler.client_connections) (items)"
    assert plots.metric_label("latency_end_ms").endswith("(ms)")


def test_no_pyplot_figure_is_left_registered():
    # Figures made with Figure() are not kept by pyplot's registry: a
    # notebook re-running a cell does not accumulate them.
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.counts_per_cycle(census())
    assert plt.get_fignums() == before
    assert matplotlib.get_backend()  # no backend switch needed to make figures
