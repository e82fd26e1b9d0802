"""One retention picture per root: the groups of a report as a tree, the
same objects reached several ways merged into one leaf."""

from __future__ import annotations

import pytest

from leaklab.retention import render_tree, retention_trees

pytestmark = pytest.mark.lowest_env  # pure: the first screen and the trees on Python 3.10, numpy<2

TASK = {"kind": "task", "label": "Task Ctx._init (pending, sleeping on a timer handle (due in -1s), created at a.py:3)",
        "where": "a.py:3"}
LATER = {**TASK, "label": TASK["label"].replace("due in -1s", "due in 0s")}  # the same root, sampled later
SELF = {"kind": "coroutine_frame", "label": "coroutine frame local 'self'", "where": "a.py:9"}


def group(type_, count, chain, retained=3_000_000, deep=1000):
    return {"type": type_, "count": count, "root_kind": "pending_task", "chain": chain,
            "deep_bytes": deep, "retained_bytes": retained}


GROUPS = [
    group("Agent", 8, [TASK, {"kind": "coroutine_frame", "label": "coroutine frame local 'agent'", "where": "a.py:9"}]),
    group("Client", 8, [LATER, SELF, {"kind": "attribute", "label": "Ctx.client"}]),
    group("Agent", 8, [TASK, SELF, {"kind": "attribute", "label": "Ctx.agent"}]),
    group("Ctx", 8, [TASK, SELF]),
    group("Ctx", 2, [{"kind": "module_global", "label": "module app, global 'registry' <b>", "where": None}],
          retained=5_000_000),
]


def test_one_tree_per_root_with_the_same_objects_merged():
    trees = retention_trees(GROUPS)
    # two roots: the task (4 groups, one root despite the changing due time) and the global
    assert [t["groups"] for t in trees] == [1, 4]  # the largest retained first
    task = trees[1]
    assert task["survivors"] == {"Agent": 8, "Client": 8, "Ctx": 8}
    root = task["node"]
    # the 8 agents reached 2 ways are one leaf, under the root where their chains part
    (agents,) = root.leaves
    assert (agents["type"], agents["count"], agents["n_ways"]) == ("Agent", 8, 2)
    assert agents["ways"] == ["coroutine frame local 'agent'", "coroutine frame local 'self' → Ctx.agent"]
    (frame,) = root.children
    assert [leaf["type"] for leaf in frame.leaves] == ["Ctx"]
    assert [c.hop["label"] for c in frame.children] == ["Ctx.client"]


def test_the_picture_escapes_labels_and_names_what_the_root_keeps():
    pictures = render_tree(GROUPS)
    assert len(pictures) == 2
    svg = pictures[1].data
    assert svg.startswith("<svg") and "8 × Agent, reached 2 ways" in svg
    assert "one root keeps 8 × Agent, 8 × Client, 8 × Ctx: 2.9 MiB retained" in svg
    assert "&lt;b&gt;" in pictures[0].data and "<b>" not in pictures[0].data
