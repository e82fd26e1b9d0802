"""The measurement layer: what leaklab reads after each session cycle.

Every probe returns a frozen dataclass or a plain dict of numbers, prints
nothing and keeps no module-level state: baselines and installed wrappers
live on explicit objects. No probe keeps a measured object alive (weak
references only).

    instances   live instances of watched classes (``__init__`` wrappers + weakrefs)
    tasks       pending asyncio tasks by coroutine; where each task was created
    process     RSS, fds, threads, children; orphans since a baseline
    files       a directory's files and bytes; a SQLite file's rows (read-only)
    lifecycle   call counts of methods; time spent in an async method
    containers  lengths of containers reachable from long-lived roots, by path
    memory      what a gc pass frees (cyclic garbage); the allocator's view (blocks, USS, malloc_trim)
"""

from .containers import (
    ContainerCensus,
    attribute_path,
    container_census,
    container_lengths,
    held_by_instances,
    root_path,
)
from .files import DirSnapshot, SqliteSnapshot, dir_snapshot, sqlite_snapshot
from .instances import InstanceTracker
from .lifecycle import CallCounter, TimedMethod
from .memory import AllocatorSnapshot, CyclicGarbage, allocator_snapshot, collect_cyclic, trim_allocator
from .process import (
    ChildWatch,
    Orphans,
    ProcessBaseline,
    ProcessSnapshot,
    baseline,
    live_children,
    orphans_after,
    process_snapshot,
)
from .tasks import CreationSite, TaskCensus, TaskCreationRecorder, task_census, task_label

__all__ = [
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
