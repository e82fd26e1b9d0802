"""Survivors grouped by the reason they survive, with sizes: "20 instances, one reason".

:func:`analyze_survivors` is the one call the session, the CLI (``leaklab
why``) and the notebooks make. Its :class:`RetentionReport` holds strings and
numbers only, so keeping it (in a notebook cell, in a saved run) keeps no
survivor alive.
"""

from __future__ import annotations

import dataclasses
import html
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .chains import Chain, label_found, paused_gc, search
from .edges import LabelContext
from .sizes import deep_size, human_size, retained_size, shallow_size

__all__ = ["RetentionGroup", "RetentionReport", "analyze_survivors", "analyze_tracker"]


@dataclasses.dataclass(frozen=True)
class RetentionGroup:
    """Survivors of one watched type kept alive by chains of one shape.

    Attributes:
        type: the watched type's name (the key of ``instances_by_type``).
        count: how many instances.
        root_kind: how the chains end (:data:`~leaklab.retention.ROOT_KINDS`).
        chain: one representative chain.
        shallow_bytes: ``sys.getsizeof`` summed over the instances.
        deep_bytes: pympler ``asizeof`` of the instances together.
        retained_bytes: freed if the root edges were cut (see
            :mod:`leaklab.retention.sizes`); a lower bound.
    """

    type: str
    count: int
    root_kind: str
    chain: Chain
    shallow_bytes: int = 0
    deep_bytes: int = 0
    retained_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, in the CLI's key order."""
        return {
            "type": self.type,
            "count": self.count,
            "root_kind": self.root_kind,
            "chain": self.chain.as_list(),
            "shallow_bytes": self.shallow_bytes,
            "deep_bytes": self.deep_bytes,
            "retained_bytes": self.retained_bytes,
            "signature": self.chain.signature,
            "root_owner": self.chain.root_owner,
            "library": self.chain.library,
            "trigger": self.chain.trigger,
        }

    def whose(self) -> str:
        """Whose code holds the root, in words (empty for the user's own)."""
        c = self.chain
        if c.library:
            return (f"a library leak, in {c.library}: its code holds the root"
                    + (f"; triggered by your code: {c.trigger}" if c.trigger else ""))
        if c.root_owner == "notebook":
            return "held by this notebook, not the backend"
        if c.root_owner == "leaklab":
            return "held by leaklab itself, not the backend"
        return ""

    def __str__(self) -> str:
        whose = self.whose()
        return (f"{self.count} × {self.type} [{self.root_kind}; signature {self.chain.signature}]: {self.chain}"
                + (f"\n    ({whose})" if whose else ""))


@dataclasses.dataclass(frozen=True)
class RetentionReport:
    """Why the survivors of a run are alive.

    Attributes:
        groups: largest retained size first.
        elapsed_s: time the analysis took.
    """

    groups: tuple[RetentionGroup, ...]
    elapsed_s: float

    def as_dict(self) -> dict[str, Any]:
        """``{"groups": [...], "elapsed_s"}``, JSON-ready."""
        return {"groups": [g.as_dict() for g in self.groups], "elapsed_s": round(self.elapsed_s, 4)}

    def __str__(self) -> str:
        if not self.groups:
            return "no survivors"
        return "\n".join(str(g) for g in self.groups)

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = []
        for g in self.groups:
            hops = "<br>→ ".join(
                esc(e.label) + (f" <small>({esc(e.where)})</small>" if e.where else "") for e in g.chain.edges
            )
            if g.whose():
                hops += f"<br><i>{esc(g.whose())}</i>"
            rows.append(
                "<tr>"
                f"<td>{esc(g.type)}</td><td>{g.count}</td><td>{esc(g.root_kind)}</td>"
                f"<td style='text-align:left'>{hops}<br>→ {esc(g.chain.target_type)}</td>"
                f"<td>{human_size(g.shallow_bytes)}</td><td>{human_size(g.deep_bytes)}</td><td>{human_size(g.retained_bytes)}</td>"
                "</tr>"
            )
        head = "".join(f"<th>{h}</th>" for h in ("type", "count", "root", "chain", "shallow", "deep", "retained"))
        return (
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p><small>{len(self.groups)} group(s), analysed in {self.elapsed_s:.2f} s</small></p>"
        )



def analyze_survivors(
    instances_by_type: Mapping[str, Sequence[Any]],
    *,
    creation_sites: Any = None,
    max_depth: int = 30,
    sizes: bool = True,
) -> RetentionReport:
    """Find the chain keeping each survivor alive, group them, size the groups.

    Call it right after the cycles (after ``gc.collect()``), before a
    transient holder lets go. The caller's lists are not treated as holders.

    Args:
        instances_by_type: watched type name -> live instances (strong refs,
            e.g. ``InstanceTracker.instances(name)``).
        creation_sites: a :class:`~leaklab.probes.TaskCreationRecorder` or a
            callable ``task -> site``, to say where pending tasks were created.
        max_depth: heap scans at most.
        sizes: also compute shallow, deep and retained sizes.

    Returns:
        A :class:`RetentionReport`; it holds no reference to any survivor.
    """
    t0 = time.perf_counter()
    names, everyone = _flatten(instances_by_type)
    ctx = LabelContext.build(creation_sites)
    found = []
    try:
        with paused_gc():
            return _analyze(names, everyone, instances_by_type, ctx, found, max_depth=max_depth, sizes=sizes, t0=t0)
    finally:
        for f in found:
            f.path.clear()
        found.clear()
        everyone.clear()
        ctx.keep.clear()


def _analyze(
    names: list[str],
    everyone: list[Any],
    instances_by_type: Mapping[str, Sequence[Any]],
    ctx: LabelContext,
    found: list[Any],
    *,
    max_depth: int,
    sizes: bool,
    t0: float,
) -> RetentionReport:
    """The body of :func:`analyze_survivors`; ``found`` is filled in place so
    the caller can clear it whatever happens."""
    found.extend(
        search(everyone, ctx, max_depth=max_depth, ignore=[instances_by_type, *instances_by_type.values()])
    )
    members: dict[tuple[Any, ...], list[int]] = {}
    chains: list[Chain] = []
    cuts: list[int] = []
    for i, f in enumerate(found):
        chain, cut = label_found(f, ctx, max_depth)
        chains.append(chain)
        cuts.append(cut)
        members.setdefault((names[i], chain.root_kind, chain.shape), []).append(i)
    groups = []
    for (name, root_kind, _), idx in members.items():
        shallow = deep = retained = 0
        if sizes:
            group = [everyone[i] for i in idx]
            shallow = shallow_size(group)
            deep = deep_size(group)
            # Dedupe: twenty survivors in one module-level list share a cut point.
            cut_points = list({id(p): p for p in (found[i].path[cuts[i]] for i in idx)}.values())
            retained, _ = retained_size(
                cut_points,
                # Lists of the analysis and of the caller are not holders.
                allowed=[everyone, group, ctx.keep, *instances_by_type.values(), *(f.path for f in found)],
                not_entered=ctx.module_dicts,
            )
            group.clear()
            cut_points.clear()
        groups.append(
            RetentionGroup(
                type=name, count=len(idx), root_kind=root_kind, chain=chains[idx[0]],
                shallow_bytes=shallow, deep_bytes=deep, retained_bytes=retained,
            )
        )
    groups.sort(key=lambda g: (-g.retained_bytes, -g.count, g.type))
    return RetentionReport(tuple(groups), time.perf_counter() - t0)


def _flatten(instances_by_type: Mapping[str, Sequence[Any]]) -> tuple[list[str], list[Any]]:
    # A helper, so that no loop variable is left holding the last survivor in
    # analyze_survivors' frame (an outside holder the sizes would see).
    names: list[str] = []
    everyone: list[Any] = []
    for name, objs in instances_by_type.items():
        for obj in objs:
            names.append(name)
            everyone.append(obj)
    return names, everyone


def analyze_tracker(tracker: Any, *, creation_sites: Any = None, names: Sequence[str] | None = None, **kwargs: Any) -> RetentionReport:
    """:func:`analyze_survivors` over an :class:`~leaklab.probes.InstanceTracker`'s
    live instances; the strong references it takes are dropped on return.

    Args:
        tracker: the session's instance tracker.
        creation_sites: as for :func:`analyze_survivors`.
        names: watched names to explain; default all.
        **kwargs: passed to :func:`analyze_survivors`.
    """
    wanted = list(names) if names is not None else list(tracker.counts())
    survivors = {name: tracker.instances(name) for name in wanted}
    try:
        return analyze_survivors(survivors, creation_sites=creation_sites, **kwargs)
    finally:
        for objs in survivors.values():
            objs.clear()
        survivors.clear()
