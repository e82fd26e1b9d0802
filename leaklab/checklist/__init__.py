"""The users' checklist (C1-C9) as experiments with measured verdicts.

    items     the items as data: where, hypothesis, question, experiment
    rules     pure functions: an experiment's record -> (verdict, evidence)
    active    steps that intervene: close MCP clients, grow the history store
    engine    run one item, or the whole checklist (items in parallel
              processes)
    worker    one experiment in a process of its own

Verdicts: ``confirmed`` (the cause is present and measured), ``transient``
(it retains, then releases; lifetime given), ``ruled_out`` (the experiment
could have shown it and did not: the evidence cites the measurement),
``not_applicable`` (the target does not have the feature), ``inconclusive``
(a role is missing, a signal was not measured or too few cycles were
judged: the evidence says what).
"""

from .engine import (
    DEFAULT_JOBS,
    ChecklistResult,
    Outcome,
    in_child,
    measure,
    outcome_of,
    run_checklist,
    run_checklist_async,
    run_experiment,
)
from .items import ITEMS, Item, UnknownItemError, get_items, signal_columns
from .rules import MIN_JUDGED_CYCLES, RULES, VERDICTS, judge_record

__all__ = [
    "DEFAULT_JOBS",
    "ITEMS",
    "MIN_JUDGED_CYCLES",
    "RULES",
    "VERDICTS",
    "ChecklistResult",
    "Item",
    "Outcome",
    "UnknownItemError",
    "get_items",
    "judge_record",
    "measure",
    "outcome_of",
    "in_child",
    "run_checklist",
    "run_checklist_async",
    "run_experiment",
    "signal_columns",
]
