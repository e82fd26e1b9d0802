"""The measurement layer: what leaklab reads after each session cycle.

Every measurement implements one protocol (:mod:`.base`: ``install``,
``sample``, ``uninstall``) and owns its columns; the session's census is a
loop over :data:`PROBES`. Adding one: a class in its own module, and its
entry in :data:`PROBES`.

Every probe returns a frozen dataclass or a plain dict of numbers, prints
nothing and keeps no module-level state: baselines and installed wrappers
live on explicit objects. No probe keeps a measured object alive (weak
references only).

    instances   live instances of watched classes (``__init__`` wrappers + weakrefs)
    tasks       pending asyncio tasks by coroutine; where each task was created
    process     RSS, fds, threads, children; orphans since a baseline
    files       a directory's files and bytes; a SQLite file's rows (read-only)
    lifecycle   call counts of methods; per-object lifecycle accounting
    latency     time spent in a method; the cycles' measured latencies
    containers  lengths of containers reachable from long-lived roots, by path
    memory      what a gc pass frees (cyclic garbage); the allocator's view (blocks, USS, malloc_trim)
"""

from .base import BaseProbe, Probe, ProbeContext, Sample
from .containers import (
    ContainerCensus,
    ContainersProbe,
    attribute_path,
    container_census,
    container_lengths,
    held_by_instances,
    open_session_ids,
    root_path,
)
from .files import DirSnapshot, FilesProbe, SqliteSnapshot, StoreProbe, dir_snapshot, sqlite_snapshot
from .instances import InstancesProbe, InstanceTracker
from .latency import LatencyProbe, TimedMethod
from .loop_probe import LoopProbe
from .lifecycle import CallCounter, LifecycleProbe, lifecycle_objects, per_object_labels
from .memory import AllocatorSnapshot, CyclicGarbage, MemoryProbe, allocator_snapshot, collect_cyclic, trim_allocator
from .process import (
    ChildWatch,
    Orphans,
    ProcessBaseline,
    ProcessProbe,
    ProcessSnapshot,
    baseline,
    live_children,
    orphans_after,
    process_snapshot,
)
from .tasks import CreationSite, TaskCensus, TaskCreationRecorder, TasksProbe, task_census, task_label

#: The census, in the order it samples: each entry a probe class made once per
#: session. The instances probe comes before the container and lifecycle
#: probes (it publishes the tracker they read); the allocator's view is taken
#: after the container walk.
PROBES: tuple[type[Probe], ...] = (
    ProcessProbe, InstancesProbe, TasksProbe, FilesProbe, ContainersProbe, MemoryProbe, StoreProbe,
    LifecycleProbe, LatencyProbe, LoopProbe,
)


def default_probes() -> list[Probe]:
    """A fresh instance of every probe of :data:`PROBES`, in order."""
    return [cls() for cls in PROBES]


__all__ = [
    "PROBES",
    "BaseProbe",
    "ContainersProbe",
    "FilesProbe",
    "InstancesProbe",
    "LatencyProbe",
    "LifecycleProbe",
    "LoopProbe",
    "MemoryProbe",
    "Probe",
    "ProbeContext",
    "ProcessProbe",
    "Sample",
    "StoreProbe",
    "TasksProbe",
    "default_probes",
    "lifecycle_objects",
    "open_session_ids",
    "per_object_labels",
    "AllocatorSnapshot",
    "CyclicGarbage",
    "allocator_snapshot",
    "collect_cyclic",
    "trim_allocator",
    "ChildWatch",
    "live_children",
    "CallCounter",
    "ContainerCensus",
    "CreationSite",
    "DirSnapshot",
    "InstanceTracker",
    "Orphans",
    "ProcessBaseline",
    "ProcessSnapshot",
    "SqliteSnapshot",
    "TaskCensus",
    "TaskCreationRecorder",
    "TimedMethod",
    "baseline",
    "attribute_path",
    "container_census",
    "container_lengths",
    "held_by_instances",
    "root_path",
    "dir_snapshot",
    "orphans_after",
    "process_snapshot",
    "sqlite_snapshot",
    "task_census",
    "task_label",
]

# loop: the event loop's lag, its stalls and the code that held it, a sampling
# profile per cycle, CPU; stacks: sampled stacks folded, diffed, drawn (SVG)
from .loop import CycleTiming, IdleCpu, LoopWatch, Stall, timing_columns  # noqa: E402
from .stacks import FunctionTime, GrownFrame, Profile, fold, grown_frames, render_svg  # noqa: E402

__all__ += ["CycleTiming", "IdleCpu", "LoopWatch", "Stall", "timing_columns",
            "FunctionTime", "GrownFrame", "Profile", "fold", "grown_frames", "render_svg"]
