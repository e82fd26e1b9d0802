"""The probe protocol: every registered probe implements it and owns its
columns; a probe registered by a test shows up in a real run's census and
timeline; no probe prints or keeps module-level state."""

from __future__ import annotations

import sys
import weakref
from collections import deque

from leaklab.probes import (
    PROBES,
    BaseProbe,
    Probe,
    ProbeContext,
    baseline,
    container_lengths,
    default_probes,
    orphans_after,
    process_snapshot,
)
from leaklab.session import LeakSession
from tests.conftest import run_async as run_on_loop


class Tiny(BaseProbe):
    """Counts its own calls: one column in the census and the timeline."""

    name = "tiny"
    timeline = True

    def __init__(self) -> None:
        self.calls = {"install": 0, "begin": 0, "uninstall": 0}
        self.cycles: list[int | None] = []

    def install(self, context: ProbeContext) -> None:
        self.calls["install"] += 1

    def begin(self, context: ProbeContext) -> None:
        self.calls["begin"] += 1

    def sample(self, context: ProbeContext) -> dict[str, float | int]:
        self.cycles.append(context.state.cycle if context.state is not None else None)
        return {"tiny_samples": len(self.cycles)}

    def uninstall(self) -> None:
        self.calls["uninstall"] += 1


def test_every_registered_probe_implements_the_protocol() -> None:
    # GIVEN a fresh instance of each registered probe
    made = default_probes()
    # THEN each implements install/begin/sample/uninstall, says whether it runs
    # in the timeline, and has a name of its own
    assert [type(p) for p in made] == list(PROBES)
    for probe in made:
        assert isinstance(probe, Probe), probe
        assert isinstance(probe.timeline, bool) and probe.name and probe.name != BaseProbe.name, probe
    assert len({p.name for p in made}) == len(made)
    # AND the registry is immutable (no module-level mutable state)
    assert isinstance(PROBES, tuple)


def test_a_registered_probe_shows_up_as_columns_and_each_probe_owns_its_columns() -> None:
    # GIVEN the reference backend measured by the default probes, each one's
    # columns recorded, plus a tiny probe registered by this test
    tiny = Tiny()
    probes = [*default_probes(), tiny]
    owned: dict[str, set[str]] = {p.name: set() for p in probes}
    for probe in probes:
        def recording(context, probe=probe, sample=probe.sample):
            out = sample(context)
            owned[probe.name].update(out)
            return out

        probe.sample = recording

    async def go():
        session = LeakSession("reference", runs_dir=False, progress=False, settle_s=0.05, timeline_s=0.2,
                              probes=probes)
        await session.start()
        try:
            return await session.run("open-close", 1)
        finally:
            await session.stop()

    # WHEN one cycle runs
    result = run_on_loop(go(), allow_loop_errors=True)
    # THEN its column is in every census record and timeline sample
    assert [r["tiny_samples"] for r in result.records] == [1, 2]
    assert all("tiny_samples" in s for s in result.timeline) and len(result.timeline) >= 1
    # it saw the baseline (no cycle), then cycle 1, then the timeline (no cycle)
    assert tiny.cycles[:2] == [None, 1] and set(tiny.cycles[2:]) == {None}
    # it was installed, begun and uninstalled once each
    assert tiny.calls == {"install": 1, "begin": 1, "uninstall": 1}
    # AND no two probes write the same column; together they are the whole record
    columns = [c for cols in owned.values() for c in cols]
    assert len(columns) == len(set(columns)), owned
    assert set(columns) == {k for r in [*result.records, *result.timeline] for k in r} - {"cycle", "t"}
    # each probe that runs only after cycles wrote nothing to the timeline
    after_only = {c for p in probes if not p.timeline for c in owned[p.name]}
    assert after_only and not after_only & {k for s in result.timeline for k in s}


def test_probes_return_without_printing(capsys) -> None:
    # GIVEN every non-async probe
    process_snapshot(count_gc_objects=False)
    orphans_after(baseline())
    container_lengths({"sys": sys})
    # THEN nothing was printed
    assert capsys.readouterr() == ("", "")


def test_probe_modules_hold_no_mutable_module_state() -> None:
    # GIVEN every module of the package
    import leaklab.probes as probes

    modules = [m for name, m in sys.modules.items() if name.startswith("leaklab.probes.")]
    assert len(modules) >= 6
    # THEN no module global (dunders aside) is a mutable container
    mutable = (dict, list, set, bytearray, deque, weakref.WeakKeyDictionary, weakref.WeakValueDictionary, weakref.WeakSet)
    offenders = [
        f"{m.__name__}.{name}"
        for m in modules
        for name, value in vars(m).items()
        if not name.startswith("__") and isinstance(value, mutable)
    ]
    assert offenders == []
    assert sorted(probes.__all__) == sorted(set(probes.__all__))
