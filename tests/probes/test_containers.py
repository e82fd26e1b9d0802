"""Lengths of the containers reachable from long-lived roots, by stable
path; the walk is bounded and keeps nothing alive."""

from __future__ import annotations

import gc
import sys
import types
import weakref
from collections import deque

from leaklab import metrics
from leaklab.metrics import Kind
from leaklab.probes import ContainersProbe, InstancesProbe, ProbeContext, container_census, container_lengths


class Node:
    def __init__(self) -> None:
        self.b: dict[str, int] = {}


class Holder:
    __slots__ = ("items", "__weakref__")

    def __init__(self) -> None:
        self.items: deque[int] = deque()


class Root:
    def __init__(self) -> None:
        self.a = Node()
        self.sessions: dict[str, Node] = {}
        self.config = {"llm": {"model": "x"}, "tts": Holder()}
        self.label = "root"
        self.me = self  # a cycle


def test_container_lengths_tracks_growing_dict_by_stable_path() -> None:
    # GIVEN a root with a nested dict
    root = Root()
    first = container_lengths({"root": root})
    assert first["root.a.b"] == 0
    # WHEN keys are added
    root.a.b.update(x=1, y=2)
    second = container_lengths({"root": root})
    # THEN the same path shows the growth, and the set of paths is unchanged
    assert second["root.a.b"] == 2
    assert list(second) == list(first)
    # THEN fixed str keys and __slots__ are descended
    assert second["root.config['llm']"] == 1
    assert second["root.config['tts'].items"] == 0


def test_container_lengths_does_not_descend_variable_keys_unless_aggregated() -> None:
    # GIVEN sessions keyed by uuid-like ids, each holding a dict
    root = Root()
    for i in range(3):
        node = Node()
        node.b.update({str(j): j for j in range(i)})
        root.sessions[f"3f2a9c1e-0000-4000-8000-00000000000{i}"] = node
    # THEN by default only the outer dict is measured, under a stable path
    lengths = container_lengths({"root": root})
    assert lengths["root.sessions"] == 3
    assert not [p for p in lengths if p.startswith("root.sessions[")]
    # THEN aggregated, the inner dicts are summed under one [*] path
    census = container_census({"root": root}, aggregate_variable_keys=True)
    assert census.lengths["root.sessions[*].b"] == 0 + 1 + 2


def test_container_lengths_walks_module_globals() -> None:
    # GIVEN a module with a registry dict, a class-level cache, a function and an import
    module = types.ModuleType("fake_backend")
    exec(
        "import collections\n"
        "REGISTRY = {}\n"
        "class Cache:\n"
        "    entries = []\n"
        "def helper():\n"
        "    return 1\n",
        vars(module),
    )
    module.annotations = sys.modules["__future__"].annotations  # as `from __future__ import annotations`
    # WHEN entries are registered
    before = container_lengths({"mod": module})
    module.REGISTRY["a"] = 1
    module.Cache.entries.append(1)
    after = container_lengths({"mod": module})
    # THEN the module global and the class attribute are measured; imports, classes and functions are skipped
    assert before["mod.REGISTRY"] == 0 and after["mod.REGISTRY"] == 1
    assert after["mod.Cache.entries"] == 1
    assert not [p for p in after if p.startswith(("mod.collections", "mod.helper", "mod.annotations"))]


def test_container_lengths_bounded_and_keeps_nothing_alive() -> None:
    # GIVEN a root with a cycle and a measured dict
    root = Root()
    refs = [weakref.ref(root), weakref.ref(root.a), weakref.ref(root.config["tts"])]
    # WHEN it is walked, fully and with a tiny node budget
    full = container_census({"root": root})
    tiny = container_census({"root": root}, max_nodes=2)
    # THEN the cycle terminates, the budget is honoured
    assert not full.truncated and full.nodes < 50
    assert tiny.truncated and tiny.nodes == 2
    # THEN dropping the root frees everything the walk touched (the root is in a cycle: collect)
    del root, full, tiny
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
    # THEN an acyclic root is freed by reference counting alone, right after a walk
    node = Node()
    node_ref = weakref.ref(node)
    container_lengths({"node": node})
    del node
    assert node_ref() is None


class Agent:
    def __init__(self) -> None:
        self.memory: list[str] = []


class Sess:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent


def test_containers_probe_owns_the_container_columns_and_the_ended_sessions_memory() -> None:
    # GIVEN an app that keeps one open session, and two ended sessions still
    # alive: one with memory of its own, one with the agent every session shares
    shared = Agent()
    shared.memory.append("shared")
    roles = types.SimpleNamespace(session_type="Sess", session_memory="agent.memory",
                                  shared_memory=("app.shared.memory",), open_sessions="app.open")
    app = types.SimpleNamespace(shared=shared, open={})
    target = types.SimpleNamespace(roles=roles, roots=lambda a: {"app": a}, resolve_types=lambda: {"Sess": Sess})
    context = ProbeContext(target, app=app)
    instances = InstancesProbe()
    instances.install(context)
    try:
        own = Agent()
        own.memory.extend(["a", "b", "c"])
        open_one = Sess(Agent())
        open_one.agent.memory.append("open")
        app.open["s1"] = open_one
        ended = [Sess(own), Sess(shared)]
        # WHEN sampled
        out = ContainersProbe().sample(context)
    finally:
        instances.uninstall()
    # THEN each container by path from the roots, and what only the ended
    # sessions hold (not the shared agent's, not the open session's)
    assert out[metrics.name(Kind.CONTAINER, "app.shared.memory")] == 1
    assert out[metrics.name(Kind.CONTAINER, "app.open")] == 1
    assert out[metrics.name(Kind.CONTAINER, "Sess[*].agent.memory")] == 3
    assert len(ended) == 2
