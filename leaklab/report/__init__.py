"""Notebooks -> HTML; plots return Figures.

    plots      matplotlib Figures from census records, timelines, outcomes,
               retention reports (labelled axes, units)
    tables     DataFrames and cards from the same data, escaped and redacted
    notebooks  notebook files as data: the parameters cell, injection, stripping
    build      execute the notebooks headless (nbclient), export one offline
               HTML report plus one page per notebook (nbconvert)

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
