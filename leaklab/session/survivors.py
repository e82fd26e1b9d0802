"""Who is still alive after a run, and who keeps it alive: the session's
survivor queries (a mixin of :class:`~leaklab.session.LeakSession`, reading
the instance tracker its instances probe installed)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..probes import ProbeContext, open_session_ids

__all__ = ["SurvivorQueries"]


class SurvivorQueries:
    """Survivor queries over ``self.context`` (a :class:`ProbeContext`), for
    the watched types of ``self.target`` created since ``self._run_started``."""

    context: ProbeContext
    target: Any
    app: Any
    _run_started: float

    @property
    def task_sites(self) -> Any:
        """Where each task was created (a :class:`~leaklab.probes.TaskCreationRecorder`),
        while the session runs; ``None`` otherwise."""
        return self.context.task_sites

    def survivors(self, since: float | None = None, names: Iterable[str] | None = None) -> dict[str, list[Any]]:
        """Strong references to live watched instances created at or after
        ``since`` (``time.monotonic()``; default: the start of the last run),
        by type; of the types ``names`` (default: every watched type). The
        caller must drop the lists, or they keep the instances alive."""
        since = self._run_started if since is None else since
        tracker = self.context.tracker
        out: dict[str, list[Any]] = {}
        if tracker is None:
            return out
        for name in self.target.watched_types if names is None else names:
            try:
                objs = tracker.instances(name)
            except KeyError:  # a bare class name that was not found
                continue
            objs = [o for o in objs if (tracker.created_at(o) or 0.0) >= since]
            if objs:
                out[name] = objs
        return out

    def lifetimes(self, since: float, disconnects: Sequence[float], threshold_s: float) -> dict[str, dict[str, Any]]:
        """How long each watched instance created since ``since`` lived after
        its session ended (:func:`leaklab.analysis.lifetimes.object_lifetimes`),
        by type; types whose creations are not seen are left out."""
        from ..analysis.lifetimes import object_lifetimes

        tracker = self.context.tracker
        if tracker is None or not disconnects:
            return {}
        end = time.monotonic()
        sites = self.context.task_sites
        tasks = [t for t in list(sites.ended) if t[1] >= since] if sites is not None else []
        out: dict[str, dict[str, Any]] = {}
        for name in tracker.created_counts():
            objects = tracker.lifetimes(name, since)
            if objects:
                out[name] = object_lifetimes(objects, disconnects, end, threshold_s, tasks)
        return out

    def count_survivors(self, since: float) -> tuple[dict[str, int], dict[str, int]]:
        """How many of each watched type the run created are alive now
        (after a collection), and how many of the sessions among them are
        still registered as open."""
        gc.collect()
        alive = self.survivors(since)
        try:
            counts = {name: len(objs) for name, objs in alive.items()}
            session_type = self.target.roles.session_type
            open_counts: dict[str, int] = {}
            if session_type in alive and self.app is not None:
                open_ids = open_session_ids(self.target, self.target.roots(self.app))
                n_open = sum(1 for o in alive[session_type] if id(o) in open_ids)
                if n_open:
                    open_counts[session_type] = n_open
            return counts, open_counts
        finally:
            for objs in alive.values():
                objs.clear()
            alive.clear()

    def instances(self, name: str) -> list[Any]:
        """Strong references to every live instance of the watched type
        ``name`` (empty when it is not watched). The caller must drop the
        list, or it keeps them alive."""
        return self.context.instances(name)

    def explain(self, since: float | None = None) -> Any:
        """Who keeps the survivors alive: a retention report (chains, roots,
        creation sites, sizes) for the watched instances created since
        ``since`` that are still alive. Holds no reference to them after."""
        from ..retention import analyze_survivors

        self.thaw()
        gc.collect()
        survivors = self.survivors(since)
        try:
            return analyze_survivors(survivors, creation_sites=self.task_sites)
        finally:
            survivors.clear()

    def compare_with_objgraph(self, type_name: str | None = None, since: float | None = None) -> Any:
        """One survivor seen by objgraph, pympler and leaklab side by side
        (:func:`leaklab.retention.compare_with_objgraph`): of ``type_name``
        (default: the session type if one survived, else the first watched
        type that did), created since ``since``. ``None`` when nothing
        survived. Holds no reference to it after."""
        from ..retention import compare_with_objgraph

        self.thaw()
        gc.collect()
        survivors = self.survivors(since)
        try:
            names = [type_name] if type_name else [self.target.roles.session_type, *survivors]
            name = next((n for n in names if n and survivors.get(n)), None)
            if name is None:
                return None
            one = survivors[name][0]
            survivors.clear()
            try:
                return compare_with_objgraph(one, creation_sites=self.task_sites)
            finally:
                del one
        finally:
            survivors.clear()

    def thaw(self) -> None:
        """Give the frozen heap back to the collector (before a retention
        analysis: ``gc.get_referrers`` does not see frozen objects)."""
        gc.unfreeze()
