"""Notebooks -> HTML; plots return Figures.

    style      verdict colours and the page's assets (templates/, package data)
    charts     a Figure with a caption, and the checks every chart passes
    plots      matplotlib Figures from census records, timelines, outcomes,
               retention reports (labelled axes, units); plots_common has
               the axes and labels, plots_fix the outcome and fix plots
    tables     DataFrames and cards from the same data, escaped and redacted
    story      the report's first screen, from the tables' data
    notebooks  notebook files as data: the parameters cell, injection, stripping
    execute    run notebooks headless (nbclient), one kernel each, Ctrl-C safe
    page       executed notebooks as HTML (nbconvert), the offline page
    assemble   the report's body from the notebooks' structured outputs
    build      execute, assemble, write: one offline HTML report plus one
               page per notebook

Notebooks import ``plots`` and ``tables``; ``leaklab report`` calls
:func:`build_report`. Importing this package does not import nbclient or
nbconvert.
"""

from . import plots, tables
from .build import ReportBuild, build_report, build_report_async, execute_notebook
from .notebooks import NOTEBOOKS, NOTEBOOKS_DIR, definitions, inject_parameters, strip_notebook, unstripped_cells

__all__ = [
    "NOTEBOOKS",
    "NOTEBOOKS_DIR",
    "ReportBuild",
    "build_report",
    "build_report_async",
    "definitions",
    "execute_notebook",
    "inject_parameters",
    "plots",
    "strip_notebook",
    "tables",
    "unstripped_cells",
]
