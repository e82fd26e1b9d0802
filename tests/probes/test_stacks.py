"""Sampled stacks as data: folding, owners, growth and the flame graph, on
synthetic stacks (no thread, no loop)."""

from __future__ import annotations

import asyncio
import os
import xml.etree.ElementTree as ET

import psutil
import pytest

from leaklab.probes.stacks import (
    FlameNode,
    default_owner,
    fold,
    frame_key,
    grown_frames,
    owner_kind,
    owner_label,
    render_svg,
)

# the frame reader (sys._current_frames) must work on every supported Python
pytestmark = pytest.mark.lowest_env

STEP = ("app.handler", "Handler.on_text", "/app/handler.py", 120, 101)
READ = ("app.store", "_blocking_read", "/app/store.py", 42, 40)
JSON = ("json.decoder", "JSONDecoder.decode", "/usr/lib/python3/json/decoder.py", 337, 332)
LIB = ("anyio._core", "checkpoint", "/site-packages/anyio/_core.py", 10, 8)
OWNERS = {"app.handler": "yours", "app.store": "yours", "json.decoder": "stdlib", "anyio._core": ("library", "anyio 4.12.0")}


def owners(module: str):
    return OWNERS[module]


def test_fold_self_and_inclusive_ms_per_function():
    stacks = [(STEP, READ)] * 3 + [(STEP, JSON)] * 2 + [(STEP,)]
    p = fold(stacks, interval_ms=5.0, owner_of=owners)
    assert p.samples == 6 and p.ms == pytest.approx(30.0)
    f = p.functions
    assert f["app.handler.Handler.on_text"].total_ms == pytest.approx(30.0)
    assert f["app.handler.Handler.on_text"].self_ms == pytest.approx(5.0)
    assert f["app.store._blocking_read"].self_ms == pytest.approx(15.0)
    assert f["app.store._blocking_read"].total_ms == pytest.approx(15.0)
    assert f["json.decoder.JSONDecoder.decode"].self_ms == pytest.approx(10.0)
    # the function's place: its first line when the frames carry it
    assert (f["app.store._blocking_read"].file, f["app.store._blocking_read"].line) == ("/app/store.py", 40)
    assert sum(x.self_ms for x in f.values()) == pytest.approx(p.ms)
    assert [x.key for x in p.top(2)] == ["app.store._blocking_read", "json.decoder.JSONDecoder.decode"]
    assert [x.key for x in p.top(5, kinds=["stdlib"])] == ["json.decoder.JSONDecoder.decode"]


def test_fold_counts_recursion_once_and_uses_measured_weights():
    rec = ("app.tree", "walk", "/app/tree.py", 5)
    p = fold([(rec, rec, rec), (rec,)], weights=[7.0, 3.0], owner_of=lambda m: "yours")
    assert p.functions["app.tree.walk"].total_ms == pytest.approx(10.0)
    assert p.functions["app.tree.walk"].self_ms == pytest.approx(10.0)
    assert p.functions["app.tree.walk"].samples == 2
    # without a first line: the lowest line sampled
    assert fold([(("m", "f", "/m.py", 9),), (("m", "f", "/m.py", 4),)]).functions["m.f"].line == 4


def test_fold_groups_by_owner_self_adds_up_inclusive_once_per_stack():
    stacks = [(STEP, LIB, READ), (STEP, JSON), (STEP, LIB)]
    p = fold(stacks, interval_ms=10.0, owner_of=owners)
    o = p.owners
    assert set(o) == {"yours", "stdlib", "library anyio 4.12.0"}
    assert o["yours"].self_ms == pytest.approx(10.0) and o["yours"].total_ms == pytest.approx(30.0)
    assert o["library anyio 4.12.0"].self_ms == pytest.approx(10.0)
    assert o["library anyio 4.12.0"].total_ms == pytest.approx(20.0)
    assert sum(x.self_ms for x in o.values()) == pytest.approx(p.ms)
    assert p.functions["anyio._core.checkpoint"].owner == "library anyio 4.12.0"


def test_fold_tree_is_flame_graph_ready():
    p = fold([(STEP, READ), (STEP, READ), (STEP, JSON)], interval_ms=1.0, owner_of=owners)
    root = p.tree
    assert root.total_ms == pytest.approx(3.0)
    step = root.children["app.handler.Handler.on_text"]
    assert step.total_ms == pytest.approx(3.0)
    assert step.children["app.store._blocking_read"].total_ms == pytest.approx(2.0)
    assert step.children["app.store._blocking_read"].self_ms == pytest.approx(2.0)
    d = root.as_dict()
    assert d["name"] == "<all>" and d["children"][0]["children"][0]["owner"] in ("yours", "stdlib")


def test_owner_labels_and_kinds():
    assert owner_label(("library", "anyio 4.12.0")) == "library anyio 4.12.0"
    assert owner_label(("yours", "app.handler")) == "yours"
    assert owner_label("stdlib") == "stdlib"
    assert owner_label(None) == "unknown"
    assert owner_kind("library anyio 4.12.0") == "library"
    assert frame_key(READ) == "app.store._blocking_read"


def test_default_owner_by_path():
    assert default_owner("asyncio.events") == "stdlib"
    assert default_owner(asyncio.__file__) == "stdlib"
    assert default_owner("leaklab.probes.loop") == "leaklab"
    assert default_owner("leaklab.backend") == "yours"  # the reference backend is the user's code
    assert default_owner(__name__) == "yours"
    assert default_owner(os.path.abspath(__file__)) == "yours"
    assert default_owner("psutil") == f"library psutil {psutil.__version__}"  # a library with its version
    assert default_owner("leaklab.backend.not_imported") == "yours"
    assert default_owner("") == "unknown"


def test_grown_frames_first_vs_last():
    first = fold([(STEP, READ)] + [(STEP, JSON)] * 4, interval_ms=1.0, owner_of=owners)
    last = fold([(STEP, READ)] * 6 + [(STEP, JSON)] * 4 + [(STEP, LIB)] * 3, interval_ms=1.0, owner_of=owners)
    grown = grown_frames(first, last, min_ms=2.0)
    keys = [g.key for g in grown]
    assert keys[:2] == ["app.handler.Handler.on_text", "app.store._blocking_read"]
    assert "anyio._core.checkpoint" in keys  # new: 0 -> 3 ms
    assert "json.decoder.JSONDecoder.decode" not in keys  # unchanged
    read = grown[1]
    assert (read.first_ms, read.last_ms, read.grown_ms) == (1.0, 6.0, 5.0)
    assert [g.key for g in grown_frames(first, last, min_ms=2.0, by="self_ms")] == [
        "app.store._blocking_read", "anyio._core.checkpoint"]
    assert [g.key for g in grown_frames(first, last, min_ms=2.0, kinds=["library"])] == ["anyio._core.checkpoint"]


def test_svg_is_well_formed_escaped_coloured_by_owner_and_marks_grown():
    odd = ("app.<odd>", "f&g<'\">", "/app/<x>.py", 1)
    p = fold([(STEP, READ)] * 5 + [(STEP, odd)] * 5 + [(STEP, LIB)] * 2, interval_ms=1.0,
             owner_of=lambda m: OWNERS.get(m, "yours"))
    svg = render_svg(p, grown={"app.store._blocking_read"}, title="cycle 9 <vs> 1 & more")
    root = ET.fromstring(svg)  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text for t in root.iter(f"{ns}title")]
    assert any("f&g<'\">" in t for t in titles)  # the text round-trips: it was escaped
    assert "cycle 9 <vs> 1 & more" in [t.text for t in root.iter(f"{ns}text")]
    rects = {t.text.split(" ")[0]: r for g in root.iter(f"{ns}g")
             for t in g.iter(f"{ns}title") for r in g.iter(f"{ns}rect")}
    assert rects["app.store._blocking_read"].get("stroke") == "#d62728"
    assert rects["app.handler.Handler.on_text"].get("stroke") != "#d62728"
    # same colour per owner kind
    assert rects["app.store._blocking_read"].get("fill") == rects["app.handler.Handler.on_text"].get("fill")
    assert rects["anyio._core.checkpoint"].get("fill") != rects["app.handler.Handler.on_text"].get("fill")
    # widths follow the time: the step spans everything, a child its share
    w = {k: float(r.get("width")) for k, r in rects.items()}
    assert w["app.handler.Handler.on_text"] == pytest.approx(w["<all>"])
    assert w["app.store._blocking_read"] == pytest.approx(w["app.handler.Handler.on_text"] * 5 / 12, abs=0.02)
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")  # offline: no link


def test_svg_of_an_empty_tree():
    ET.fromstring(render_svg(FlameNode("<all>")))
