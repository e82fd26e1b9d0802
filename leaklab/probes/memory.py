"""Memory that a count of live objects does not show.

* :func:`collect_cyclic` — one full collection that says what it freed:
  objects only a gc pass frees (reference cycles), their number, bytes
  (``sys.getsizeof`` each) and commonest types. The objects are saved by
  ``gc.DEBUG_SAVEALL`` for the count, then released and collected again:
  the heap ends as after a plain ``gc.collect()``.
* :func:`allocator_snapshot` — the allocator's view: pymalloc blocks in use
  (``sys.getallocatedblocks``), RSS and USS (``psutil`` ``memory_full_info``;
  ``None`` where it can't be read).
* :func:`trim_allocator` — glibc's ``malloc_trim(0)``: hands freed heap pages
  back to the OS; the RSS before and after. Where there is no glibc,
  ``None``: held arenas can't be told from a native leak there.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import dataclasses
import gc
import sys

import psutil

from .base import BaseProbe, ProbeContext, Sample

__all__ = [
    "AllocatorSnapshot", "CyclicGarbage", "MemoryProbe", "allocator_snapshot", "collect_cyclic", "trim_allocator",
]

_MB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class CyclicGarbage:
    """What one full collection freed.

    Attributes:
        objects: unreachable objects found (in reference cycles, and what
            only they kept).
        bytes: their ``sys.getsizeof``, and that of the untracked objects
            (bytes, str, numbers) they refer to, summed (a lower bound).
        top_types: the commonest type names, ``[(name, count)]``.
    """

    objects: int
    bytes: int
    top_types: tuple[tuple[str, int], ...] = ()


def collect_cyclic(top: int = 5) -> CyclicGarbage:
    """A full ``gc.collect()`` that counts what it freed (see the module)."""
    flags = gc.get_debug()
    before = len(gc.garbage)
    gc.set_debug(flags | gc.DEBUG_SAVEALL)
    try:
        gc.collect()
    finally:
        gc.set_debug(flags)
    found = gc.garbage[before:]
    del gc.garbage[before:]
    try:
        size = 0
        obj = ref = None
        types: collections.Counter[str] = collections.Counter()
        for obj in found:
            try:
                size += sys.getsizeof(obj)
            except Exception:  # a hostile __sizeof__
                continue
            types[type(obj).__name__] += 1
        # what only the garbage held and gc does not track (bytes, str, numbers)
        seen = {id(o) for o in found}
        for ref in gc.get_referents(*found):
            if not gc.is_tracked(ref) and id(ref) not in seen:
                seen.add(id(ref))
                try:
                    size += sys.getsizeof(ref)
                except Exception:
                    continue
        n = len(found)
    finally:
        found.clear()
        obj = ref = None  # the loops' last items: no reference may outlive the count
        del found, obj, ref
    gc.collect()  # what was saved is freed now
    return CyclicGarbage(n, size, tuple(types.most_common(top)))


@dataclasses.dataclass(frozen=True)
class AllocatorSnapshot:
    """Attributes: blocks (pymalloc blocks in use), rss_mb, uss_mb (``None``: unreadable)."""

    blocks: int
    rss_mb: float
    uss_mb: float | None


def allocator_snapshot() -> AllocatorSnapshot:
    proc = psutil.Process()
    try:
        full = proc.memory_full_info()
        rss, uss = full.rss, getattr(full, "uss", None)
    except (psutil.Error, OSError):
        rss, uss = proc.memory_info().rss, None
    return AllocatorSnapshot(sys.getallocatedblocks(), rss / _MB, uss / _MB if uss is not None else None)


def _malloc_trim() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


def trim_allocator() -> tuple[float, float] | None:
    """``(rss_mb before, rss_mb after)`` glibc's ``malloc_trim(0)``; ``None``
    where there is no ``malloc_trim`` (not glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return None
    proc = psutil.Process()
    before = proc.memory_info().rss / _MB
    trim(0)  # type: ignore[operator]
    return before, proc.memory_info().rss / _MB


class MemoryProbe(BaseProbe):
    """After each cycle: ``gc_freed_objects``/``gc_freed_bytes``, what the
    census' full collection freed (when it collects), and the allocator's
    view, ``allocated_blocks`` and ``uss_mb`` (where it can be read)."""

    name = "memory"
    timeline = False

    def sample(self, context: ProbeContext) -> Sample:
        out: Sample = {}
        if context.freed is not None:
            out["gc_freed_objects"], out["gc_freed_bytes"] = context.freed.objects, context.freed.bytes
        alloc = allocator_snapshot()
        out["allocated_blocks"] = alloc.blocks
        if alloc.uss_mb is not None:
            out["uss_mb"] = alloc.uss_mb
        return out
