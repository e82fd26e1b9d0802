"""Who keeps it alive: reference chains, sizes and creation sites of survivors.

The layer reads live objects once, right after the cycles, and returns only
strings and numbers; nothing here prints or keeps module-level state.

    safe      bounded, redacted, never-raising reprs (every label goes through it)
    edges     Edge / Chain: one hop as a person reads it (attribute, key, local, Task)
    chains    find_chains: one backward search for all survivors, asyncio-aware roots
    sizes     shallow, deep (pympler) and retained (dominator-style) sizes
    report    analyze_survivors: survivors grouped by chain shape, with sizes
    growth    between two cycles: pympler summary diff, tracemalloc diff
    hidden    holders gc cannot see (a cancelled task's stored error)
    compare   objgraph and pympler beside leaklab's chain, for one survivor
    render    pictures of a chain: graphviz when ``dot`` exists, else pure SVG
"""

from .chains import ROOT_KINDS, find_chains
from .compare import ObjgraphComparison, compare_with_objgraph
from .edges import Chain, Edge, format_where
from .growth import (
    AllocationGrowth,
    SummaryDiff,
    TypeGrowth,
    summary_diff,
    tracemalloc_diff,
)
from .render import ChainPicture, chain_to_dot, render_chain, render_tree, retention_trees
from .report import RetentionGroup, RetentionReport, analyze_survivors, analyze_tracker
from .safe import is_secret_name, redact, safe_repr
from .sizes import deep_size, retained_size, shallow_size

__all__ = [
    "ROOT_KINDS",
    "AllocationGrowth",
    "Chain",
    "ChainPicture",
    "Edge",
    "ObjgraphComparison",
    "RetentionGroup",
    "RetentionReport",
    "SummaryDiff",
    "TypeGrowth",
    "analyze_survivors",
    "analyze_tracker",
    "chain_to_dot",
    "compare_with_objgraph",
    "deep_size",
    "find_chains",
    "format_where",
    "is_secret_name",
    "redact",
    "render_chain",
    "render_tree",
    "retention_trees",
    "retained_size",
    "safe_repr",
    "shallow_size",
    "summary_diff",
    "tracemalloc_diff",
]
