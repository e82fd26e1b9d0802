"""The page: executed notebooks as HTML fragments, and one offline page
around them.

:func:`notebook_html` exports cells with nbconvert's ``basic`` template (no
page, no script; pictures as ``data:`` URIs or inline SVG). :func:`offline_page`
wraps a body in the page skeleton (``templates/page.html``) with its styles
(``templates/report.css``, pygments') and, for the walkthrough, one inline
script (``templates/walkthrough.js``), all inlined: the page needs nothing
but itself. :func:`external_assets` checks that, from the parsed page.
"""

from __future__ import annotations

import copy
import html
import string
from collections.abc import Iterable
from html.parser import HTMLParser

import nbformat

from .notebooks import FIRST_SCREEN_TAG, INJECTED_TAG
from .style import template

__all__ = ["external_assets", "for_html", "notebook_html", "offline_page", "render_cells"]


def for_html(nb: nbformat.NotebookNode, *, keep_injected: bool, drop_title: bool = False) -> nbformat.NotebookNode:
    """A copy for export: stderr streams (progress bars, backend logs)
    dropped; without ``keep_injected`` the injected parameters and the cells
    tagged ``first-screen`` too (the report opens with that screen); with
    ``drop_title`` the first ``# heading`` (the page gives it)."""
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


def render_cells(nb: nbformat.NotebookNode, *, include_code: bool = True) -> str:
    """A notebook's cells as they are, as an HTML fragment (see :func:`notebook_html`)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=not include_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    return body


def notebook_html(nb: nbformat.NotebookNode, *, include_code: bool = True) -> str:
    """A notebook's cells as an HTML fragment (nbconvert ``basic`` template:
    no page, no script; pictures as ``data:`` URIs or inline SVG).

    Args:
        nb: an executed notebook.
        include_code: show code cells' source (the per-notebook pages do; the
            combined report shows prose and evidence only, without the
            notebook's title, which its section gives).
    """
    return render_cells(for_html(nb, keep_injected=include_code, drop_title=not include_code), include_code=include_code)


def _pygments_css() -> str:
    try:
        from pygments.formatters import HtmlFormatter
    except ImportError:  # pragma: no cover - nbconvert depends on pygments
        return ""
    return HtmlFormatter(style="default").get_style_defs(".highlight")


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
        links += template("walkthrough_start.html").strip()
    styles = ["report.css", "walkthrough.css"] if walkthrough else ["report.css"]
    return string.Template(template("page.html")).substitute(
        title=esc(title),
        style="".join("\n" + template(name) for name in styles) + _pygments_css(),
        subtitle=f"<p>{esc(subtitle)}</p>" if subtitle else "",
        nav=f"<nav>{links}</nav>" if links else "",
        bar=template("walkthrough_bar.html").strip() if walkthrough else "",
        body=body,
        script=f"<script>\n{template('walkthrough.js')}</script>" if walkthrough else "",
    )


_URL_ATTRIBUTES = frozenset({"src", "href", "srcset", "poster", "data"})


def _remote(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://", "//"))


def _css_references(css: str) -> list[str]:
    """``@import`` rules and ``url()`` values that reach the network, in CSS."""
    low = css.lower()
    found = ["@import"] * low.count("@import")
    at = low.find("url(")
    while at >= 0:
        end = low.find(")", at)
        value = css[at + 4:end if end >= 0 else len(css)]
        if _remote(value.strip().strip("\"'")):
            found.append(f"url({value})")
        at = low.find("url(", at + 4)
    return found


class _Assets(HTMLParser):
    """Network references of a parsed page: URL attributes (``src``,
    ``href``, ``srcset``, ``poster``, ``data``, ``xlink:href``) and, in
    ``<style>`` elements and ``style`` attributes, ``url()`` and ``@import``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in _URL_ATTRIBUTES or name.endswith(":href"):
                urls = [part.strip().partition(" ")[0] for part in value.split(",")] if name == "srcset" else [value]
                self.found.extend(f'{name}="{url.strip()}"' for url in urls if _remote(url))
            elif name == "style":
                self.found.extend(_css_references(value))
        self.in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.found.extend(_css_references(data))


def external_assets(page: str) -> list[str]:
    """Network references in a page (``src``/``href``/``url()`` to http(s) or
    protocol-relative URLs, ``@import``): the report must have none."""
    parser = _Assets()
    parser.feed(page)
    parser.close()
    return parser.found
