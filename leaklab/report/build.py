"""Notebooks -> one offline HTML report (plus one HTML page per notebook).

:func:`build_report` executes the notebooks headless, each in its own
kernel (:mod:`.execute`), with parameters injected after the cell tagged
``parameters``, and exports them with nbconvert's ``basic`` template wrapped
in a page of our own (:mod:`.page`): styles inline, pictures as ``data:``
URIs or inline SVG, nothing fetched from the network. The report opens with
its first screen (:mod:`.story`: what leaks, costliest first, what decided
each verdict, the fix), read from the data the notebooks' tables carry; then
the C1–C9 verdict table (the cell tagged ``verdict-table`` in
``03_checklist``) and the evidence, notebook by notebook, cut into pages
that the walkthrough mode (one inline script, keyboard, offline) shows one
at a time (:mod:`.assemble`).

The notebooks are the one code path: the report shows what they compute,
the tests execute them with small parameters, the CLI calls this module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..resources import check_notebooks_dir
from .assemble import combined_body, hunt_findings, notebook_body, notebook_pages, table_data, target_notes
from .execute import NotebookRun, execute_notebook, execute_notebooks
from .notebooks import NOTEBOOKS, notebook_path, title
from .page import external_assets, notebook_html, offline_page

__all__ = [
    "REFERENCE_ONLY",
    "NotebookRun",
    "ReportBuild",
    "build_report",
    "build_report_async",
    "execute_notebook",
    "external_assets",
    "hunt_findings",
    "notebook_pages",
    "table_data",
    "target_notes",
    "notebook_html",
    "offline_page",
    "report_parameters",
]

REFERENCE_ONLY = frozenset({"04_prove_the_fix"})
"""Notebooks about the reference backend's fault switches: skipped for another target."""


@dataclasses.dataclass
class ReportBuild:
    """What :func:`build_report` wrote.

    Attributes:
        path: the combined report (``report.html``).
        pages: notebook name -> its own HTML page.
        runs: the executed notebooks, in reading order.
        skipped: notebook name -> why it was not run.
        elapsed_s: wall time of the whole build.
    """

    path: Path
    pages: dict[str, Path]
    runs: list[NotebookRun]
    skipped: dict[str, str]
    elapsed_s: float

    @property
    def failed(self) -> list[NotebookRun]:
        return [r for r in self.runs if not r.ok]



def report_parameters(
    name: str,
    target: str,
    cycles: int | None,
    extra: Mapping[str, Any] | None = None,
    *,
    app_dir: str | os.PathLike[str] | None = None,
    target_file: str | os.PathLike[str] | None = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    step_timeout_s: float | None = None,
) -> dict[str, Any]:
    """What the report injects into one notebook: the target (name, app dir,
    target file; paths made absolute, since kernels run in ``notebooks/``),
    ``cycles`` when given, the step timeout, and for a target other than the
    reference its own faults and options (none: the notebooks' examples are
    the reference's fault switches)."""
    params: dict[str, Any] = {}
    if target != "reference" or target_file is not None:
        params.update(target=target, faults=faults or "none", options=dict(options or {}))
    elif faults is not None or options:
        params.update(faults=faults or "none", options=dict(options or {}))
    if app_dir is not None:
        params["app_dir"] = str(Path(app_dir).expanduser().resolve())
    if target_file is not None:
        params["target_file"] = str(Path(target_file).expanduser().resolve())
    if step_timeout_s is not None:
        params["step_timeout_s"] = float(step_timeout_s)
    if cycles is not None:
        params["cycles"] = cycles
    params.update(extra or {})
    return params


async def build_report_async(
    out_dir: Path | str = "report",
    *,
    target: str = "reference",
    app_dir: str | os.PathLike[str] | None = None,
    target_file: str | os.PathLike[str] | None = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    step_timeout_s: float | None = None,
    cycles: int | None = None,
    notebooks: Iterable[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    against: str | os.PathLike[str] | None = None,
    notebooks_dir: Path | None = None,
    concurrency: int = 1,
    timeout: float = 900,
    env: Mapping[str, str] | None = None,
    on_start: Callable[[str], None] | None = None,
    on_progress: Callable[[NotebookRun], None] | None = None,
) -> ReportBuild:
    """Execute the notebooks and write the report.

    Args:
        out_dir: where ``report.html``, one ``<notebook>.html`` each and the
            kernels' logs (``logs/``) are written.
        target: ``"reference"``, ``"olv"`` (with ``app_dir``), an import
            path ``pkg.module:factory`` (or ``target_file``).
        app_dir: your app folder, for ``"olv"``.
        target_file: a target file describing your app.
        faults: fault ids (``None``: each notebook's own for the reference,
            none for another target).
        options: backend options (``None``: as ``faults``).
        step_timeout_s: bound on every protocol step (``None``: derived).
        cycles: cycles for every notebook (``None``: each notebook's own).
        notebooks: names to run (default all, in reading order).
        params: per-notebook extra parameters (``{"03_checklist": {"items": "C8,C9"}}``).
        against: your code before the change (a folder or a git revision):
            the prove-the-fix notebook compares the target with it, and its
            before/after table opens the report.
        notebooks_dir: where the notebooks are (default the kit's, :func:`leaklab.resources.notebooks_dir`);
            every notebook to run must be there (:class:`leaklab.resources.MissingNotebooksError`).
        concurrency: kernels at a time.
        timeout: seconds allowed per cell.
        env: extra environment variables for the kernels (``LEAKLAB_RUNS_DIR``).
        on_start: called with a notebook's name when its kernel starts.
        on_progress: called with each finished :class:`NotebookRun`.

    Returns:
        A :class:`ReportBuild`; failed notebooks are in ``.failed`` (their
        pages and the report say where they failed).

    Raises:
        KeyboardInterrupt: Ctrl-C or SIGTERM during the build, once every
            kernel was shut down.
    """
    started = time.monotonic()
    out = Path(out_dir)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    names = list(notebooks or NOTEBOOKS)
    own_target = target != "reference" or target_file is not None
    skipped = {n: "it compares the reference backend's planted fault variants; your target has none "
                  "(give --against a folder or git revision to compare your fix)"
               for n in names if n in REFERENCE_ONLY and own_target and against is None}
    if against is not None:
        where = Path(os.fspath(against)).expanduser()
        extra = {"against": str(where.resolve()) if where.exists() else os.fspath(against)}
        params = {**(params or {}), **{n: {**extra, **(params or {}).get(n, {})} for n in REFERENCE_ONLY}}
    env = dict(env or {})
    # Every run the notebooks save goes in the report's folder: the header
    # reads what the target changed to run there from the runs' metadata.
    runs_dir = Path(env.setdefault("LEAKLAB_RUNS_DIR", str((out / "runs").resolve())))
    chosen = [n for n in names if n not in skipped]
    if notebooks_dir is not None:  # your copies: say which are missing before any kernel starts
        check_notebooks_dir(notebooks_dir, chosen)
    jobs = [(name, notebook_path(name, notebooks_dir),
             report_parameters(name, target, cycles, (params or {}).get(name), app_dir=app_dir, target_file=target_file,
                               faults=faults, options=options, step_timeout_s=step_timeout_s))
            for name in chosen]
    runs = await execute_notebooks(jobs, concurrency=concurrency, timeout=timeout, env=env, log_dir=out / "logs",
                                   on_start=on_start, on_progress=on_progress)
    pages: dict[str, Path] = {}
    nav = [("report.html", "report")] + [(f"{r.name}.html", r.name) for r in runs]
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    for run in runs:
        page = offline_page(title(run.nb, run.name), notebook_body(run), subtitle=f"leaklab · {run.name} · {stamp}", nav=nav)
        pages[run.name] = out / f"{run.name}.html"
        _write(pages[run.name], page)
    elapsed = time.monotonic() - started
    shown_target = target_file if target_file is not None else target
    if app_dir is not None:
        shown_target = f"{target} ({Path(app_dir).expanduser().resolve()})"
    body = combined_body(runs, skipped, target=str(shown_target), runs_dir=runs_dir)
    nav_combined = [("#first-screen", "summary")] + ([("#before-after", "before/after")] if against is not None else []) + \
        [("#verdicts", "verdicts")] + [(f"#{r.name}", r.name) for r in runs]
    subtitle = (f"target {shown_target} · built {stamp} in {elapsed:.0f} s on {os.cpu_count()} cores · "
                f"Python {sys.version.split()[0]}")
    path = out / "report.html"
    _write(path, offline_page("leaklab report", body, subtitle=subtitle, nav=nav_combined, walkthrough=True))
    return ReportBuild(path, pages, runs, skipped, time.monotonic() - started)


def build_report(
    out_dir: Path | str = "report",
    *,
    target: str = "reference",
    app_dir: str | os.PathLike[str] | None = None,
    target_file: str | os.PathLike[str] | None = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    step_timeout_s: float | None = None,
    cycles: int | None = None,
    notebooks: Iterable[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    against: str | os.PathLike[str] | None = None,
    notebooks_dir: Path | None = None,
    concurrency: int = 1,
    timeout: float = 900,
    env: Mapping[str, str] | None = None,
    on_start: Callable[[str], None] | None = None,
    on_progress: Callable[[NotebookRun], None] | None = None,
) -> ReportBuild:
    """Sync form of :func:`build_report_async` (owns its event loop; the
    same arguments)."""
    return asyncio.run(build_report_async(
        out_dir, target=target, app_dir=app_dir, target_file=target_file, faults=faults, options=options,
        step_timeout_s=step_timeout_s, cycles=cycles, notebooks=notebooks, params=params, against=against,
        notebooks_dir=notebooks_dir, concurrency=concurrency, timeout=timeout, env=env, on_start=on_start,
        on_progress=on_progress,
    ))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
