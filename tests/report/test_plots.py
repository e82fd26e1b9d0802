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


def c8_record(*, control_grows: bool = False) -> dict:
    """A C8 record as the engine writes it: the trigger's and the control's
    curves, counts starting where earlier runs in the process left them (7)."""
    cycles = list(range(6))
    return {"item": "C8", "roles": {"session_type": "Sess"}, "facts": {},
            "runs": {"main": {"judged_cycles": 5, "types": {"Sess": {"verdict": "leak", "per_cycle": 1.0}}}},
            "curves": {"main": {"cycle": cycles, "type:Sess": [7 + c for c in cycles], "task:init": [0] * 6},
                       "control": {"cycle": cycles, "type:Sess": [7 + (c if control_grows else 0) for c in cycles]},
                       "timeline": {"t": [0.0, 0.5, 1.0], "type:Sess": [12, 12, 12]}}}


@pytest.mark.lowest_env
def test_decisive_chart_draws_the_trigger_beside_the_control_against_its_own_baseline():
    from leaklab.checklist import get_items
    from leaklab.checklist.engine import outcome_of

    (item,) = get_items(["C8"])
    outcome = outcome_of(item, c8_record())
    chart = plots.decisive(outcome)
    assert chart.problems() == []
    assert outcome.verdict in chart._suptitle.get_text()
    (panel,) = chart.describe()["panels"]  # the constant task count and the flat timeline are not drawn
    by_label = {s["label"]: s["y"] for s in panel["series"]}
    # each run against its own start: 0..5, not the 7 earlier runs left
    assert by_label["switch-then-close (the trigger)"] == [0, 1, 2, 3, 4, 5]
    assert by_label["open-close (the control, no trigger)"] == [0] * 6
    assert "change since the run's start" in panel["ylabel"]
    assert "0 -> 5" in chart.caption and "flat at 0" in chart.caption
    assert chart.describe()["grows"] == ["switch-then-close (the trigger)"]


@pytest.mark.lowest_env
def test_decisive_chart_of_a_grown_store_is_dose_and_response():
    from leaklab.checklist import get_items
    from leaklab.checklist.engine import outcome_of

    (item,) = get_items(["C5"])
    facts = {"size_small": 256, "size_large": 1048, "size_back": 262, "unit": "rows", "latency_metric": "llm",
             "latency_small_ms": 470.0, "latency_large_ms": 1808.0, "latency_back_ms": 500.0,
             "prompt_small_chars": 11000, "prompt_large_chars": 44000, "prompt_back_chars": 12000}
    outcome = outcome_of(item, {"item": "C5", "roles": {"history": ["sqlite", "db"]}, "facts": facts, "runs": {}})
    chart = plots.decisive(outcome)
    meta = chart.describe()
    assert chart.problems() == []
    assert [p["xlabel"] for p in meta["panels"]] == ["history store size (rows)"] * 2
    assert meta["panels"][0]["series"][0]["y"] == [470.0, 1808.0, 500.0]
    assert "the time follows the store's size" in chart.caption
    assert outcome.headline.startswith("turn time vs store size")
    # a prompt of one size at every store size is the measurement (a bounded read): flat on purpose
    bounded = {**facts, "latency_large_ms": 520.0, "prompt_small_chars": 86, "prompt_large_chars": 86,
               "prompt_back_chars": 86}
    chart = plots.decisive(outcome_of(item, {"item": "C5", "roles": {"history": ["sqlite", "db"]}, "facts": bounded,
                                             "runs": {}}))
    assert chart.problems() == [] and "the store is not read into it" in chart.caption


def test_a_decisive_chart_with_nothing_changing_is_a_sentence():
    from leaklab.checklist import get_items
    from leaklab.checklist.engine import outcome_of
    from leaklab.report.charts import Note

    (item,) = get_items(["C6"])
    record = {"item": "C6", "roles": {"shared_engines": ["eng"]}, "facts": {}, "runs": {},
              "curves": {"main": {"cycle": [0, 1, 2, 3], "container:eng.memory": [0, 0, 0, 0]}}}
    note = plots.decisive(outcome_of(item, record))
    assert isinstance(note, Note) and "len(eng.memory) 0" in note.text


@pytest.mark.lowest_env
def test_chart_problems_catch_constant_series_and_false_captions():
    from leaklab.report.charts import Chart, chart_problems

    fig = Chart(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, 0, 0], label="flat")
    fig.say("flat grows", grows=["flat"])
    problems = fig.problems()
    assert any("every series is constant" in p for p in problems)
    assert any("the caption says 'flat' grows; it does not" in p for p in problems)
    # a caption naming a part the chart does not draw
    assert any("does not draw it" in p for p in chart_problems({"title": "t", "caption": "c", "grows": ["x"],
                                                                "panels": [{"series": [{"label": "y", "y": [1, 2]}]}]}))
    # a control flat beside a trigger that grows passes; so does a panel flat on purpose
    ok = Chart(figsize=(4, 3))
    a1, a2 = ok.subplots(1, 2)
    a1.plot([0, 1, 2], [0, 1, 2], label="trigger")
    a1.plot([0, 1, 2], [0, 0, 0], label="control")
    a2.plot([0, 1, 2], [3, 3, 3], label="fixed")
    ok.allow_flat(a2, "the fixed variant keeps nothing")
    assert ok.say("trigger grows", grows=["trigger"]).problems() == []
    assert any("no caption" in p for p in Chart().problems() + [p for p in chart_problems({"panels": [{}]})])


def test_a_chart_shows_as_a_picture_with_its_caption_and_carries_what_it_drew():
    from leaklab.report.charts import CHART_MIME

    chart = plots.counts_per_cycle(census())
    bundle = chart._repr_mimebundle_()
    assert bundle["text/html"].startswith("<figure") and "<figcaption" in bundle["text/html"]
    assert bundle["image/png"] and bundle[CHART_MIME]["panels"][0]["series"][0]["y"] == [1, 2, 3, 4, 5, 6]


def test_latency_split_caption_names_the_part_that_grew():
    rows = [{"cycle": 0}] + [{"cycle": c, "latency_end_ms": 400.0 + 300 * c, "llm_ms": 100.0} for c in range(1, 7)]
    chart = plots.latency_split(rows)
    assert chart.problems() == []
    assert chart.describe()["grows"] == ["backend (TTS, tools, queues...)"]
    assert "the LLM call part stayed 100 -> 100 ms" in chart.caption


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
    assert fig.problems() == []  # the fixed variants are flat on purpose


def test_retention_sizes_in_kib():
    report = {"groups": [{"type": "ServiceContext", "count": 3, "root_kind": "pending_task",
                          "deep_bytes": 3 * 2 * 1024 * 1024, "retained_bytes": 6 * 1024 * 1024}]}
    fig = plots.retention_sizes(report)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "size (KiB)"
    assert max(p.get_width() for p in ax.patches) == pytest.approx(6144)


def test_constant_data_gives_a_sentence_not_a_chart():
    from leaklab.report.charts import Note

    flat = [{"cycle": c, "type:ServiceContext": 1, "tasks": 4, "rss_mb": 90.0} for c in range(4)]
    for made in (plots.overview(flat), plots.counts_per_cycle(flat), plots.retention_timeline(
            [{"t": 0.25 * i, "type:ServiceContext": 3} for i in range(4)])):
        assert isinstance(made, Note), made
    assert "live ServiceContext 1" in plots.overview(flat).text


def test_overview_names_the_constant_panels_it_leaves_out():
    rows = [{"cycle": c, "type:ServiceContext": 1 + c, "tasks": 4, "rss_mb": 90.0 + c} for c in range(4)]
    fig = plots.overview(rows)
    assert fig.problems() == []
    assert len(axes_with_data(fig)) == 2  # tasks constant: named, not drawn; reply time: not measured
    assert "constant: pending asyncio tasks 4" in fig.caption and "Not measured: reply time" in fig.caption


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


def test_a_chart_flat_on_purpose_passes_unless_it_is_all_zero():
    from leaklab.report.charts import Chart

    for values, ok in (([3], True), ([0], False)):
        fig = Chart(figsize=(3, 2))
        ax = fig.subplots()
        ax.bar(["a"], values, label="bars")
        fig.allow_flat(ax, "one bar per group")
        assert (fig.say("one group").problems() == []) is ok, values


def test_latency_split_gains_the_loop_held_part_named_by_its_functions_and_a_connect_panel():
    rows = [{"cycle": 0}] + [{"cycle": c, "latency_end_ms": 1000.0 + 60 * c, "llm_ms": 500.0,
                              "reply_blocked_ms": 50.0 * c, "latency_connect_ms": 300.0 + 40 * c,
                              "connect_blocked_ms": 35.0 * c} for c in range(1, 7)]
    details = {"steps": {"reply": {"functions": {"app.store.load_all": 120.0}},
                         "connect": {"functions": {"app.pages.list_histories": 90.0}}}}
    chart = plots.latency_split(rows, details=details)
    reply, connect = chart.axes[:2]
    labels = [s["label"] for s in chart.describe()["panels"][0]["series"]]
    assert labels == ["LLM call", "loop held by the app (store.load_all)", "I/O and other tasks"]
    heights = [p.get_height() for p in reply.patches]
    # cycle 6: LLM 500, held 300, the rest 1360 - 500 - 300 = 560
    assert heights[5] == pytest.approx(500.0) and heights[11] == pytest.approx(300.0)
    assert heights[17] == pytest.approx(560.0)
    assert connect.patches[5].get_height() == pytest.approx(210.0)
    assert connect.patches[11].get_height() == pytest.approx(540.0 - 210.0)
    assert "app.store.load_all (120 ms per reply)" in chart.caption
    assert "app.pages.list_histories (90 ms per connect)" in chart.caption
    assert "loop held by the app (store.load_all)" in chart.describe()["grows"]
    assert chart.problems() == []
    assert_labelled(chart, units=("ms",))


def test_task_time_draws_the_tasks_per_cycle_and_names_the_one_that_slows_and_the_idle_spinner():
    from types import SimpleNamespace

    from leaklab.analysis.time import time_summary

    rows = [{"cycle": 0, "loop_blocked_ms": 0.0}] + [{"cycle": c, "loop_blocked_ms": 0.0} for c in range(1, 7)]
    details = {"coroutines": {"Handler.on_text": [[c, 100.0 + 20 * c] for c in range(1, 7)],
                              "Heartbeat.run": [[c, 3.0 + c % 2] for c in range(1, 7)]},
               "idle": {"wall_s": 1.0, "cpu_s": 0.5, "ratio": 0.5, "coroutines": {"Spinner.spin": 480.0}}}
    result = SimpleNamespace(summary=lambda: {"time": time_summary(rows, details)}, details={"loop": details})
    chart = plots.task_time(result)
    (ax,) = chart.axes
    assert [line.get_label() for line in ax.get_lines()] == ["Handler.on_text", "Heartbeat.run"]
    assert list(ax.get_lines()[0].get_ydata()) == [120.0, 140.0, 160.0, 180.0, 200.0, 220.0]
    assert chart.describe()["grows"] == ["Handler.on_text"]
    assert "Handler.on_text 120 -> 220 ms (slows, +20 ms/cycle)" in chart.caption
    assert "Spinner.spin (480 ms)" in chart.caption
    assert chart.problems() == []
    assert_labelled(chart, units=("ms",))
    none = plots.task_time(SimpleNamespace(summary=lambda: {"time": {}}, details={}))
    assert "no task was sampled" in none.text
