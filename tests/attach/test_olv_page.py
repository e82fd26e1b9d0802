"""The test app's page is the reference's page under the app's own title.

Upstream serves its page from the app folder's ``frontend/`` (the test app's
server mounts it and does not start without it), and the test app is used in
place, not only through the ``olv_app`` fixture's copy: the benchmarks
(``benchmarks/hunt.py``, ``checklist_matrix.py``, ``fix_tracing.py``) and the
docs' commands (``--app-dir tests/attach/olv_app``, ``--against
tests/attach/olv_app``) run it from the checkout. So the page stays committed
in both places, with one source: ``leaklab/backend/frontend/index.html``;
the copy may differ in its ``<title>`` line only (the page shows its title
from ``document.title``)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "leaklab" / "backend" / "frontend" / "index.html"
COPY = ROOT / "tests" / "attach" / "olv_app" / "frontend" / "index.html"
#: the one declared difference: the page's title
TITLE = re.compile(r"^<title>[^<]*</title>$")


def test_the_test_apps_page_is_the_references_but_for_its_title():
    ours, theirs = REFERENCE.read_text(encoding="utf-8").splitlines(), COPY.read_text(encoding="utf-8").splitlines()
    assert len(ours) == len(theirs), "the test app's page has lines the reference's has not: copy the reference's"
    differ = [(n, a, b) for n, (a, b) in enumerate(zip(ours, theirs), 1) if a != b]
    titles = ("<title>leaklab reference backend</title>", "<title>Open-LLM-VTuber</title>")
    assert [(a, b) for _, a, b in differ] == [titles], (
        f"{COPY} differs from {REFERENCE} beyond its <title>: lines {[n for n, _, _ in differ]}; "
        "change the reference's page, then copy it over, keeping the title")
    assert all(TITLE.match(a) and TITLE.match(b) for _, a, b in differ)
