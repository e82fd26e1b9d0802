"""Notebooks -> one offline HTML report (plus one HTML page per notebook).

:func:`build_report` executes the notebooks headless, each in its own
kernel (nbclient), with parameters injected after the cell tagged
``parameters``, and exports them with nbconvert's ``basic`` template wrapped
in a page of our own: styles inline, pictures as ``data:`` URIs or inline
SVG, nothing fetched from the network. The report opens with its first
screen (:mod:`.story`: what leaks, costliest first, what decided each
verdict, the fix), read from the data the notebooks' tables carry; then the
C1–C9 verdict table (the cell tagged ``verdict-table`` in ``03_checklist``)
and the evidence, notebook by notebook, cut into pages that the walkthrough
mode (one inline script, keyboard, offline) shows one at a time.

The notebooks are the one code path: the report shows what they compute,
the tests execute them with small parameters, the CLI calls this module.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import copy
import dataclasses
import datetime as _dt
import html
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat
import psutil

from .._platform import stop_signals
from ..resources import check_notebooks_dir
from .notebooks import (
    COMPARE_TABLE_TAG,
    INJECTED_TAG,
    NOTEBOOKS,
    NOTEBOOKS_DIR,
    VERDICT_TABLE_TAG,
    inject_parameters,
    notebook_path,
    read_notebook,
)

__all__ = [
    "REFERENCE_ONLY",
    "NotebookRun",
    "ReportBuild",
    "build_report",
    "build_report_async",
    "execute_notebook",
    "external_assets",
    "notebook_pages",
    "table_data",
    "notebook_html",
    "offline_page",
    "report_parameters",
]

REFERENCE_ONLY = frozenset({"04_prove_the_fix"})
"""Notebooks about the reference backend's fault switches: skipped for another target."""

_ASSET = re.compile(r"""\b(?:src|href|srcset|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*["']?\s*(?:https?:)?//|@import\b""", re.IGNORECASE)


@dataclasses.dataclass
class NotebookRun:
    """One executed notebook.

    Attributes:
        name: notebook name (no suffix).
        nb: the executed notebook (outputs filled, up to the failing cell).
        params: the parameters injected.
        elapsed_s: wall time, kernel start to shutdown.
        error: the failure (cell and exception), or ``None``.
        leftover_processes: processes the kernel started that were still
            alive after it shut down (they were terminated).
    """

    name: str
    nb: nbformat.NotebookNode
    params: dict[str, Any]
    elapsed_s: float
    error: str | None = None
    leftover_processes: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


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


# -- execution ----------------------------------------------------------------


def _descendants(pid: int) -> dict[int, float]:
    """Live descendants of ``pid``: pid -> create time (identity against pid reuse)."""
    out: dict[int, float] = {}
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                out[child.pid] = child.create_time()
    return out


def _end_processes(seen: Mapping[int, float], timeout: float = 5.0) -> int:
    """Terminate (then kill) the processes in ``seen`` that are still alive;
    returns how many were. Only the kernel's own descendants get here."""
    alive = []
    for pid, created in seen.items():
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, still = psutil.wait_procs(alive, timeout=timeout)
    for p in still:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(still, timeout=timeout)
    return len(alive)


def _kernel_env(extra: Mapping[str, str] | None, tmp: str) -> dict[str, str]:
    env = dict(os.environ)
    # The kernel's temporary files (the backend's cache and history folders,
    # among others) go in a folder of ours, removed after the kernel: an
    # interrupted notebook never reaches `session.stop()`, which removes them.
    env["TMPDIR"] = tmp
    # `--target mypkg.app:factory` names a module of the folder the build was
    # started from, as `python -m` would find it; the kernel runs in notebooks/.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH", "")) if p)
    # debugpy's "frozen modules" warning on every kernel start: noise in the logs.
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env.update(extra or {})
    return env


async def execute_notebook(
    path: Path | str,
    params: Mapping[str, Any] | None = None,
    *,
    cwd: Path | str | None = None,
    timeout: float = 900,
    startup_timeout: float = 120,
    env: Mapping[str, str] | None = None,
    kernel_name: str = "python3",
    log_path: Path | str | None = None,
    on_kernel_start: Callable[[], None] | None = None,
) -> NotebookRun:
    """Execute a notebook in a fresh kernel; the kernel is shut down after,
    and any process it started that outlived it is ended.

    Args:
        path: the ``.ipynb``.
        params: values injected after the ``parameters`` cell (only the names
            it declares).
        cwd: the kernel's working directory (default: the notebook's folder).
        timeout: seconds allowed per cell.
        startup_timeout: seconds allowed for the kernel to start.
        env: extra environment variables for the kernel. ``TMPDIR`` is set
            to a folder that is removed after the kernel.
        kernel_name: the kernel spec.
        log_path: where the kernel's own stdout/stderr go (default: discarded).
        on_kernel_start: called right before the kernel starts, after
            nbclient installed its signal handlers (:func:`build_report_async`
            takes Ctrl-C back there).

    Returns:
        A :class:`NotebookRun`; a failing cell is reported in ``.error``, not raised.

    Raises:
        asyncio.CancelledError: when cancelled, after the kernel was shut
            down and what it started was ended.
    """
    from nbclient.exceptions import (
        CellExecutionError,
        CellTimeoutError,
        DeadKernelError,
    )

    path = Path(path)
    nb = inject_parameters(read_notebook(path), params or {}) if params else read_notebook(path)
    cwd = Path(cwd) if cwd is not None else path.parent
    seen: dict[int, float] = {}
    tmp = tempfile.mkdtemp(prefix=f"leaklab-kernel-{path.stem}-")

    def kernel_pid() -> int | None:
        return getattr(getattr(client.km, "provisioner", None), "pid", None)

    def note_children(**_: Any) -> None:
        pid = kernel_pid()
        if pid:
            seen.update(_descendants(pid))

    client = _client_class()(
        nb,
        timeout=timeout,
        startup_timeout=startup_timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(cwd)}},
        store_widget_state=False,
        on_cell_complete=note_children,
        on_cell_error=note_children,
    )
    client.before_kernel_start = on_kernel_start
    client.ipc_prefix = _ipc_prefix(tmp)
    error = None
    started = time.monotonic()
    leftover = 0
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 -- closed below, after the kernel
    try:
        await client.async_execute(
            cwd=str(cwd), env=_kernel_env(env, tmp),
            stdout=log or asyncio.subprocess.DEVNULL, stderr=log or asyncio.subprocess.DEVNULL,
        )
    except CellExecutionError as exc:
        error = _first_line_of_error(exc)
    except (CellTimeoutError, DeadKernelError, RuntimeError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    except BaseException:
        # Cancelled (Ctrl-C): while a cell runs nbclient shuts its kernel down
        # itself; while the kernel is starting it does not, so do it here.
        pid = kernel_pid() if client.km is not None else None
        if pid:
            with contextlib.suppress(psutil.Error):
                seen[pid] = psutil.Process(pid).create_time()
            seen.update(_descendants(pid))
        await _shut_down(client)
        raise
    finally:
        # nbclient's exit-time cleanup of this kernel: done (or never started)
        with contextlib.suppress(Exception):
            atexit.unregister(client._cleanup_kernel)
        if log is not None:
            log.close()
        # What the kernel started in sessions of its own (the MCP SDK's
        # servers) outlives the kernel's process group: end it here.
        leftover = _end_processes(seen) if seen else 0
        shutil.rmtree(tmp, ignore_errors=True)
    return NotebookRun(path.stem, nb, dict(params or {}), time.monotonic() - started, error, leftover)


def _ipc_prefix(tmp: str) -> str | None:
    """Where the kernel's sockets go, as Unix sockets in its own temp folder:
    no TCP port to pick, so no race with a backend (or another kernel)
    binding an ephemeral port between the pick and the kernel's bind. None
    (TCP, as jupyter's default) where Unix sockets are not available or the
    path would be too long for one."""
    if os.name != "posix":
        return None
    prefix = os.path.join(tmp, "kernel")
    return prefix if len(prefix) + 8 < 100 else None


def _client_class() -> type:
    """nbclient's ``NotebookClient`` that lets the caller take the signal
    handlers back before the kernel starts (see :class:`_Interrupts`)."""
    from nbclient import NotebookClient

    class _Client(NotebookClient):  # type: ignore[misc]
        before_kernel_start: Callable[[], None] | None = None
        ipc_prefix: str | None = None

        def create_kernel_manager(self) -> Any:
            km = super().create_kernel_manager()
            if self.ipc_prefix is not None:
                km.transport, km.ip = "ipc", self.ipc_prefix
            return km

        async def async_start_new_kernel(self, **kwargs: Any) -> None:
            # nbclient has just installed its SIGINT/SIGTERM handlers (they
            # shut this kernel down and leave the caller running into it).
            if self.before_kernel_start is not None:
                self.before_kernel_start()
            await super().async_start_new_kernel(**kwargs)

    return _Client


async def _shut_down(client: Any) -> None:
    """Shut a kernel down after a cancellation, and drop nbclient's
    exit-time cleanup of it (it would fail on a kernel already gone)."""
    # A kernel cancelled while starting may fail its cleanup (its channels'
    # pending reads are cancelled too); the caller re-raises the original
    # cancellation and ends the kernel's process in any case.
    with contextlib.suppress(Exception, asyncio.CancelledError):
        if client.km is not None:
            await asyncio.wait_for(client._async_cleanup_kernel(), 15)
    with contextlib.suppress(Exception):
        atexit.unregister(client._cleanup_kernel)


def _first_line_of_error(exc: Exception) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", "")
    return f"{ename}: {evalue}".strip()


# -- HTML ---------------------------------------------------------------------


def _for_html(nb: nbformat.NotebookNode, *, keep_injected: bool, drop_title: bool = False) -> nbformat.NotebookNode:
    """A copy for export: stderr streams (progress bars, backend logs) dropped;
    with ``drop_title`` the first ``# heading`` too (the page gives it)."""
    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        if drop_title and cell.cell_type == "markdown" and cell.source.startswith("# "):
            cell.source = cell.source.partition("\n")[2].lstrip("\n")
            drop_title = False
        tags = cell.get("metadata", {}).get("tags", [])
        if not keep_injected and (INJECTED_TAG in tags or FIRST_SCREEN_TAG in tags):
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.get("name") == "stderr")]
        cells.append(cell)
    out.cells = cells
    out.metadata.pop("widgets", None)
    return out


FIRST_SCREEN_TAG = "first-screen"
"""Cells showing the first screen in the notebook (and their heading): left
out of the report, which opens with it."""


def _starts_page(output: Mapping[str, Any]) -> bool:
    # a card with an anchor (a checklist item's) starts a page of its own
    text = (output.get("data") or {}).get("text/html", "")
    text = "".join(text) if isinstance(text, list) else text
    return text.lstrip().startswith("<div class='leaklab-card' id=")


def notebook_pages(nb: nbformat.NotebookNode) -> list[tuple[str, nbformat.NotebookNode]]:
    """The notebook cut into pages for the walkthrough: a page starts at each
    markdown heading and at each output that is an anchored card (one per
    checklist item); ``(title, sub-notebook)`` pairs, in order."""
    pages: list[tuple[str, list[Any]]] = []
    title = _title(nb, "")

    def new_page(name: str) -> None:
        pages.append((name, []))

    for cell in nb.cells:
        if cell.cell_type == "markdown" and re.match(r"#{1,3} ", cell.source):
            new_page(cell.source.splitlines()[0].lstrip("# ").strip())
        elif not pages:
            new_page(title)
        if cell.cell_type != "code" or not any(_starts_page(o) for o in cell.get("outputs", [])):
            pages[-1][1].append(cell)
            continue
        part = copy.deepcopy(cell)
        part.outputs = []
        for output in cell.outputs:
            if _starts_page(output) and (part.outputs or pages[-1][1]):
                if part.outputs:
                    pages[-1][1].append(part)
                text = output["data"]["text/html"]
                text = "".join(text) if isinstance(text, list) else text
                heading = re.search(r"font-weight:bold'>([^<]*)<", text)
                new_page(html.unescape(heading.group(1)) if heading else title)
                part = copy.deepcopy(cell)
                part.outputs = []
                part.source = ""
            part.outputs.append(output)
        if part.outputs:
            pages[-1][1].append(part)
    out = []
    for name, cells in pages:
        sub = copy.deepcopy(nb)
        sub.cells = cells
        out.append((name, sub))
    return out


def notebook_html(nb: nbformat.NotebookNode, *, include_code: bool = True) -> str:
    """A notebook's cells as an HTML fragment (nbconvert ``basic`` template:
    no page, no script; pictures as ``data:`` URIs or inline SVG).

    Args:
        nb: an executed notebook.
        include_code: show code cells' source (the per-notebook pages do; the
            combined report shows prose and evidence only).
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=not include_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(_for_html(nb, keep_injected=include_code, drop_title=not include_code))
    return body


def _pygments_css() -> str:
    try:
        from pygments.formatters import HtmlFormatter
    except ImportError:  # pragma: no cover - nbconvert depends on pygments
        return ""
    return HtmlFormatter(style="default").get_style_defs(".highlight")


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0; color: #1d2330; background: #fff; line-height: 1.45; }
header { background: #1f2d3d; color: #fff; padding: 0.9em 2em; }
header h1 { margin: 0; font-size: 1.5em; }
header p { margin: 0.2em 0 0; color: #c9d3df; font-size: 0.9em; }
nav { padding: 0.5em 2em; border-bottom: 1px solid #dde2ea; font-size: 0.9em; }
nav a { margin-right: 1.2em; color: #2e5c8a; text-decoration: none; }
main { padding: 0.5em 2em 3em; max-width: 1340px; }
section { margin-top: 1.5em; }
section > h2.nb-title { border-bottom: 2px solid #2e5c8a; padding-bottom: 0.2em; }
.params { font-family: monospace; font-size: 0.85em; color: #555; }
.failure { background: #fdecea; border: 1px solid #e6a39b; padding: 0.6em 1em; border-radius: 6px; }
.summary span { display: inline-block; padding: 0.15em 0.6em; margin-right: 0.4em; border-radius: 4px; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.88em; }
th, td { border: 1px solid #d3d8e0; padding: 0.25em 0.55em; vertical-align: top; }
thead th { background: #f0f3f7; }
table.dataframe th, table.dataframe td { text-align: left; }
table.dataframe tbody th { font-weight: 600; background: #fafbfc; }
.leaklab-card table th, .leaklab-card table td { border: none; }
img, svg { max-width: 100%; height: auto; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; }
.input_area, .highlight { background: #f6f8fa; border-radius: 4px; padding: 0.4em 0.6em; margin: 0.4em 0; }
.output_area { margin: 0.3em 0; overflow-x: auto; }
.output_stderr { display: none; }
.output_error pre { background: #fdecea; padding: 0.5em; }
.prompt { display: none; }
a.anchor-link { display: none; }
/* Chain pictures drawn without graphviz size their boxes for 7 px per
   character; browsers' 12 px monospace is wider and the last letters of a
   long line were cut. */
svg[font-family="monospace"][font-size="12"] text { font-size: 11.4px; }
"""


_WALK_CSS = """
#ll-walk-bar { display: none; }
body.ll-walk #ll-walk-bar { display: flex; position: sticky; top: 0; z-index: 5; gap: 1em; align-items: center;
  background: #2e5c8a; color: #fff; padding: 0.35em 2em; font-size: 0.9em; }
body.ll-walk #ll-walk-bar button { font: inherit; }
body.ll-walk main > section { display: none; }
body.ll-walk main > section.ll-host { display: block; }
body.ll-walk main > section.ll-host .ll-page { display: none; }
body.ll-walk main > section.ll-host .ll-page.ll-current, body.ll-walk main > section.ll-page.ll-current .ll-page { display: block; }
body.ll-walk header, body.ll-walk nav { display: none; }
nav button { font: inherit; margin-left: 1em; }
"""

_WALK_JS = """
(function () {
  var pages = Array.prototype.slice.call(document.querySelectorAll('main .ll-page'))
    .filter(function (p) { return !p.parentElement.closest('.ll-page'); });
  var bar = document.getElementById('ll-walk-bar'), where = document.getElementById('ll-walk-where');
  var at = 0;
  function host(p) { return p.closest('main > section') || p; }
  function show(k) {
    at = Math.max(0, Math.min(pages.length - 1, k));
    pages.forEach(function (p, j) { p.classList.toggle('ll-current', j === at); });
    document.querySelectorAll('main > section').forEach(function (s) { s.classList.remove('ll-host'); });
    host(pages[at]).classList.add('ll-host');
    where.textContent = (at + 1) + ' / ' + pages.length + ' \u2014 ' + (pages[at].getAttribute('data-title') || '');
    window.scrollTo(0, 0);
    if (history.replaceState) { history.replaceState(null, '', '#page-' + (at + 1)); }
  }
  function walk(on) {
    document.body.classList.toggle('ll-walk', on);
    if (on) { show(at); }
  }
  function pageOf(el) {
    for (var j = 0; j < pages.length; j++) { if (pages[j] === el || pages[j].contains(el)) { return j; } }
    return -1;
  }
  document.addEventListener('keydown', function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    var on = document.body.classList.contains('ll-walk');
    if (e.key === 'w') { walk(!on); e.preventDefault(); return; }
    if (!on) { return; }
    var keys = {ArrowRight: 1, PageDown: 1, ' ': 1, n: 1, ArrowLeft: -1, PageUp: -1, p: -1, Backspace: -1};
    if (e.key in keys) { show(at + keys[e.key]); e.preventDefault(); }
    else if (e.key === 'Home') { show(0); e.preventDefault(); }
    else if (e.key === 'End') { show(pages.length - 1); e.preventDefault(); }
    else if (e.key === 'Escape') { walk(false); }
  });
  document.addEventListener('click', function (e) {
    var a = e.target.closest && e.target.closest('a[href^="#"]');
    if (!a || !document.body.classList.contains('ll-walk')) { return; }
    var el = document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1)));
    var j = el ? pageOf(el) : -1;
    if (j >= 0) { e.preventDefault(); show(j); }
  });
  var start = document.getElementById('ll-walk-start');
  if (start) { start.addEventListener('click', function () { walk(true); }); }
  ['ll-walk-prev', 'll-walk-next', 'll-walk-exit'].forEach(function (id, i) {
    document.getElementById(id).addEventListener('click', function () {
      if (i === 2) { walk(false); } else { show(at + (i === 0 ? -1 : 1)); }
    });
  });
  var m = /^#page-(\\d+)$/.exec(location.hash);
  if (m) { at = parseInt(m[1], 10) - 1; walk(true); }
  else if (location.hash === '#walkthrough') { walk(true); }
}());
"""


def offline_page(title: str, body: str, *, subtitle: str = "", nav: Iterable[tuple[str, str]] = (),
                 walkthrough: bool = False) -> str:
    """A complete HTML page that needs nothing but itself: styles inline,
    no external link, no script unless ``walkthrough``.

    Args:
        title: page title and heading (plain text).
        body: the page's HTML content.
        subtitle: one line under the heading (plain text).
        nav: ``(href, text)`` links (local anchors or sibling files).
        walkthrough: add the walkthrough mode: one inline script (no
            network) pages through the elements marked ``ll-page`` — ``w``
            (or the nav's button) starts it, → / Space / PageDown next,
            ← / PageUp back, Home / End, Esc leaves; ``report.html#page-3``
            opens it at page 3.
    """
    esc = html.escape
    links = "".join(f'<a href="{esc(href)}">{esc(text)}</a>' for href, text in nav)
    if walkthrough:
        links += '<button id="ll-walk-start" type="button" title="page through the report (key w)">walkthrough (w)</button>'
    bar = ('<div id="ll-walk-bar"><button id="ll-walk-prev" type="button">\u2190</button>'
           '<span id="ll-walk-where"></span><button id="ll-walk-next" type="button">\u2192</button>'
           '<span style="opacity:0.8">keys: \u2190 \u2192 space, Home, End, Esc</span>'
           '<button id="ll-walk-exit" type="button">exit</button></div>') if walkthrough else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{_CSS}{_WALK_CSS if walkthrough else ''}{_pygments_css()}</style></head><body>"
        f"<header><h1>{esc(title)}</h1>" + (f"<p>{esc(subtitle)}</p>" if subtitle else "") + "</header>"
        + (f"<nav>{links}</nav>" if links else "") + bar
        + f"<main>{body}</main>" + (f"<script>{_WALK_JS}</script>" if walkthrough else "") + "</body></html>\n"
    )


def external_assets(page: str) -> list[str]:
    """Network references in a page (``src``/``href``/``url()`` to http(s) or
    protocol-relative URLs): the report must have none."""
    return [m.group(0) for m in _ASSET.finditer(page)] + [m.group(0) for m in _CSS_URL.finditer(page)]


def _title(nb: nbformat.NotebookNode, default: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return default


def _verdict_table(runs: Iterable[NotebookRun]) -> tuple[str | None, list[str]]:
    """The HTML output of the cell tagged ``verdict-table``, and the verdicts
    it shows (for the one-line summary)."""
    found = _tagged_html(runs, VERDICT_TABLE_TAG)
    if found is None:
        return None, []
    table = found[1]
    return table, re.findall(r">\s*(confirmed|transient|ruled_out|not_applicable|inconclusive)\s*<", table)


def _summary_line(verdicts: list[str]) -> str:
    from .tables import VERDICT_COLORS

    counts = {v: verdicts.count(v) for v in ("confirmed", "transient", "ruled_out", "not_applicable", "inconclusive")}
    return "<p class='summary'>" + "".join(
        f"<span style='background:{VERDICT_COLORS[v]}'>{n} {html.escape(v.replace('_', ' '))}</span>"
        for v, n in counts.items() if n
    ) + "</p>"


def _params_line(params: Mapping[str, Any]) -> str:
    if not params:
        return ""
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"<p class='params'>parameters: {html.escape(shown)}</p>"


def _failure(run: NotebookRun) -> str:
    return f"<p class='failure'><b>{html.escape(run.name)} failed</b>: {html.escape(run.error or '')}</p>"


def hunt_findings(runs_dir: Path) -> list[dict[str, Any]]:
    """The findings of the hunts saved in ``runs_dir`` (``hunt-*/hunt.json``), in order."""
    from ..hunt import load_findings

    out: list[dict[str, Any]] = []
    if runs_dir.is_dir():
        for path in sorted(runs_dir.glob("hunt-*/hunt.json")):
            try:
                out.extend(load_findings(path))
            except (OSError, ValueError):
                continue
    return out


def _hunt_rows(findings: list[dict[str, Any]]) -> str:
    """The hunt's findings under the checklist's verdicts: which lifecycle
    leaks, and the item it is (or that it is on no item)."""
    if not findings:
        return ""
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(str(f.get('sequence')))}</code></td>"
        f"<td>{esc(', '.join(f'{m} {v:+.2g}/cycle' for m, v in (f.get('metrics') or {}).items()))}</td>"
        f"<td>{esc(str(f.get('confirmed')))}</td><td>{esc(str(f.get('where')))}</td></tr>"
        for f in findings)
    off = sum(1 for f in findings if not f.get("on_checklist"))
    return ("<h3>Found by the hunt</h3>"
            f"<p>Sequences the hunt found leaking (<a href='#06_hunt'>06_hunt</a>); {off} not on the checklist. "
            "Replay one as written: <code>leaklab run --scenario '&lt;sequence&gt;'</code>.</p>"
            "<table><tr><th>sequence</th><th>grows</th><th>confirmed</th><th>checklist</th></tr>"
            f"{rows}</table>")


def _with_extra_rows(table: str, findings: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The checklist's verdict table with a row per hunt finding no item
    covers (``H1``…), and those rows' verdicts."""
    from ..hunt import checklist_rows
    from .tables import VERDICT_COLORS

    rows = checklist_rows(findings)
    if not rows:
        return table, []
    esc = html.escape
    tr = "".join(
        f"<tr class='extra-row'><th>{esc(r['id'])}</th><td>{esc(r['title'])}</td>"
        f"<td style='background-color:{VERDICT_COLORS.get(r['verdict'], '#fff')}'>{esc(r['verdict'])}</td>"
        f"<td>{esc(str((r.get('evidence') or {}).get('answer', '')))}</td></tr>" for r in rows)
    at = table.rfind("</tbody>")
    at = at if at >= 0 else table.rfind("</table>")
    if at < 0:
        return table, []
    return table[:at] + tr + table[at:], [r["verdict"] for r in rows]


def _tagged_html(runs: Iterable[NotebookRun], tag: str) -> tuple[str, str] | None:
    """``(notebook, html)``: the last HTML output of the first cell tagged ``tag``."""
    for run in runs:
        for cell in run.nb.cells:
            if cell.cell_type != "code" or tag not in cell.get("metadata", {}).get("tags", []):
                continue
            for output in reversed(cell.get("outputs", [])):
                data = output.get("data", {})
                if "text/html" in data:
                    text = data["text/html"]
                    return run.name, "".join(text) if isinstance(text, list) else text
    return None


def table_data(runs: Iterable[NotebookRun]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """What the notebooks' tables carry (``tables.DATA_MIME`` outputs), by
    kind (``checklist``, ``run``, ``fix``, ``comparison``): ``(notebook,
    data)`` pairs in reading order."""
    from .tables import DATA_MIME

    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for run in runs:
        for cell in run.nb.cells:
            for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
                data = (output.get("data") or {}).get(DATA_MIME)
                if isinstance(data, Mapping) and data.get("kind"):
                    found.setdefault(str(data["kind"]), []).append((run.name, dict(data)))
    return found


def _first_screen(runs: list[NotebookRun], target: str, findings: list[dict[str, Any]]) -> str:
    """What leaks, why, what fixes it: the page's first screen (:mod:`.story`)."""
    from ..hunt import checklist_rows
    from .story import first_screen

    data = table_data(runs)
    checklist = next((d for _, d in data.get("checklist", [])), None)
    if checklist is not None and findings and not checklist.get("extra"):
        checklist = {**checklist, "extra": checklist_rows(findings)}
    if checklist is not None:  # the hunt's rows have no card: their evidence is the hunt's section
        checklist = {**checklist, "extra": [{"anchor": "06_hunt", **r} for r in checklist.get("extra") or []]}
    symptom_runs = data.get("run", [])
    symptom = next((d for n, d in symptom_runs if n.startswith("01")), symptom_runs[0][1] if symptom_runs else None)
    fix = next((d for _, d in data.get("fix", [])), None)
    comparison = next((d for _, d in data.get("comparison", [])), None)
    failures = [f"{r.name} failed ({r.error}): what it measures is missing below" for r in runs if not r.ok]
    screen = first_screen(checklist, target=target, symptom=(symptom or {}).get("summary"), fix=fix,
                          comparison=comparison, failures=failures)
    return screen.html


def _before_after(runs: list[NotebookRun]) -> str:
    """The comparison's table, when the report was built ``--against``: first."""
    found = _tagged_html([r for r in runs if r.params.get("against")], COMPARE_TABLE_TAG)
    if found is None:
        return ""
    name, table = found
    return ("<section id='before-after' class='ll-page' data-title='before and after'><h2>Before and after: your fix, measured</h2>"
            f"<p>The same experiments on the code before your change and after it, side by side "
            f"(<a href='#{html.escape(name)}'>{html.escape(name)}</a> has the per-cycle charts and the chains).</p>"
            f"{table}</section>")


def _combined(runs: list[NotebookRun], skipped: Mapping[str, str], findings: list[dict[str, Any]] | None = None) -> str:
    table, verdicts = _verdict_table(runs)
    if table is not None and findings:
        table, more = _with_extra_rows(table, findings)
        verdicts = verdicts + more
    parts = ["<section id='verdicts' class='ll-page' data-title='the verdicts'><h2>Verdicts: the checklist C1–C9, measured</h2>"]
    parts.extend(_failure(r) for r in runs if not r.ok)
    if table is None:
        parts.append("<p class='failure'>The checklist notebook did not produce its verdict table.</p>")
    else:
        parts.append(_summary_line(verdicts) + table)
        parts.append("<p>Each verdict's evidence is in the <a href='#03_checklist'>checklist</a> section; "
                     "how to read a verdict: <code>confirmed</code> the cause is present and measured, "
                     "<code>transient</code> it retains and then releases, <code>ruled_out</code> the experiment "
                     "could have shown it and did not.</p>")
    parts.append(_hunt_rows(list(findings or [])))
    parts.append("</section>")
    for run in runs:
        parts.append(f"<section id='{html.escape(run.name)}'><h2 class='nb-title'>{html.escape(_title(run.nb, run.name))}</h2>")
        parts.append(_params_line(run.params) + f"<p class='params'>page with code: <a href='{html.escape(run.name)}.html'>"
                     f"{html.escape(run.name)}.html</a> · {run.elapsed_s:.0f} s</p>")
        if not run.ok:
            parts.append(_failure(run))
        first = True
        for name, sub in notebook_pages(run.nb):
            body = notebook_html(sub, include_code=False)
            if not first and not re.search(r"<(img|svg|table|p|h[1-6]|div class='leaklab)", body):
                continue  # a page with nothing to show (the parameters, the imports)
            where = _title(run.nb, run.name) + ("" if name == _title(run.nb, run.name) else f": {name}")
            parts.append(f"<div class='ll-page' data-title='{html.escape(where)}'>{body}</div>")
            first = False
        parts.append("</section>")
    for name, why in skipped.items():
        parts.append(f"<section id='{html.escape(name)}'><h2 class='nb-title'>{html.escape(name)}</h2>"
                     f"<p>not run: {html.escape(why)}</p></section>")
    return "".join(parts)


# -- the build ------------------------------------------------------------------


class _Interrupts:
    """Ctrl-C (or SIGTERM) during a build cancels it; every kernel is shut
    down on the way out.

    nbclient installs its own SIGINT/SIGTERM handlers for each notebook
    (they shut that one kernel down and leave the build running into a dead
    kernel) and removes them when the notebook ends; so ours is put back
    right before each kernel starts and whenever a notebook ends.
    """

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.received = False

    def _on_signal(self) -> None:
        if not self.received and self.task is not None:
            self.received = True
            self.task.cancel()

    def take(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in stop_signals():  # Windows loops have no add_signal_handler: Ctrl-C stays KeyboardInterrupt
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal)

    def release(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in stop_signals():
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


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
    gate = asyncio.Semaphore(max(1, concurrency))
    interrupts = _Interrupts(asyncio.current_task())

    async def one(name: str) -> NotebookRun:
        async with gate:
            if on_start is not None:
                on_start(name)
            run = await execute_notebook(
                notebook_path(name, notebooks_dir or NOTEBOOKS_DIR),
                report_parameters(name, target, cycles, (params or {}).get(name), app_dir=app_dir,
                                  target_file=target_file, faults=faults, options=options,
                                  step_timeout_s=step_timeout_s),
                timeout=timeout, env=env, log_path=out / "logs" / f"{name}.log", on_kernel_start=interrupts.take,
            )
            interrupts.take()
        if on_progress is not None:
            on_progress(run)
        return run

    interrupts.take()
    try:
        runs = list(await asyncio.gather(*(one(n) for n in chosen)))
    except asyncio.CancelledError:
        if interrupts.received:
            raise KeyboardInterrupt from None
        raise
    finally:
        interrupts.release()
    pages: dict[str, Path] = {}
    nav = [("report.html", "report")] + [(f"{r.name}.html", r.name) for r in runs]
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    for run in runs:
        body = (_failure(run) if not run.ok else "") + _params_line(run.params) + notebook_html(run.nb, include_code=True)
        page = offline_page(_title(run.nb, run.name), body, subtitle=f"leaklab · {run.name} · {stamp}", nav=nav)
        pages[run.name] = out / f"{run.name}.html"
        _write(pages[run.name], page)
    elapsed = time.monotonic() - started
    shown_target = target_file if target_file is not None else target
    if app_dir is not None:
        shown_target = f"{target} ({Path(app_dir).expanduser().resolve()})"
    # the first screen (what leaks, why, the fix), then a report built
    # --against has the before/after table, then how the backend ran
    findings = hunt_findings(runs_dir)
    body = (_first_screen(runs, str(shown_target), findings) + _before_after(runs) + _setup_section(target_notes(runs_dir))
            + _combined(runs, skipped, findings))
    nav_combined = [("#first-screen", "summary")] + ([("#before-after", "before/after")] if against is not None else []) + \
        [("#verdicts", "verdicts")] + [(f"#{r.name}", r.name) for r in runs]
    subtitle = (f"target {shown_target} · built {stamp} in {elapsed:.0f} s on {os.cpu_count()} cores · "
                f"Python {sys.version.split()[0]}")
    path = out / "report.html"
    _write(path, offline_page("leaklab report", body, subtitle=subtitle, nav=nav_combined, walkthrough=True))
    return ReportBuild(path, pages, runs, skipped, time.monotonic() - started)


def target_notes(runs_dir: Path) -> list[str]:
    """What the target changed or decided to run the backend (engines pointed
    at the fake, MCP servers skipped...), from the saved runs' metadata, each
    note once, in the order first seen."""
    import json

    seen: dict[str, None] = {}
    if runs_dir.is_dir():
        for meta in sorted(runs_dir.glob("*/meta.json")):
            try:
                notes = json.loads(meta.read_text(encoding="utf-8")).get("target_notes") or []
            except (OSError, ValueError):
                continue
            for note in notes:
                # each run's fake server listens on a port of its own: one note for all
                seen.setdefault(re.sub(r"(http://127\.0\.0\.1:)\d+", r"\1PORT", str(note)), None)
    return list(seen)


def _setup_section(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return ("<section id='setup' class='ll-page' data-title='how leaklab ran it'><h2>How leaklab ran this backend</h2>"
            f"<p>What the target changed to run it here, offline (your files were not written):</p><ul>{items}</ul></section>")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_report(*args: Any, **kwargs: Any) -> ReportBuild:
    """Sync form of :func:`build_report_async` (owns its event loop)."""
    return asyncio.run(build_report_async(*args, **kwargs))
