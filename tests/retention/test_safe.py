"""Reprs, labels, tables and pictures: never raise, escaped, secrets redacted."""

from __future__ import annotations

import os
import stat
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leaklab.retention import analyze_survivors, chain_to_dot, render_chain, safe_repr
from leaklab.retention import render as render_mod

KEY = "sk-proj-Abc123XYZ789secret"


class Settings:
    def __init__(self) -> None:
        self.api_key = KEY

    def __repr__(self) -> str:
        return f"Settings(api_key={self.api_key!r}, password='hunter22', model='<fake>')"


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_safe_repr_redacts_secret_keys_attributes_and_sk_keys():
    # GIVEN dicts, reprs and strings carrying secrets
    cases = [
        {"api_key": "abc", "Authorization": "Bearer abcdefgh", "token": 123, "keep": "visible"},
        Settings(),
        f"the key is {KEY}",
        "Authorization: Bearer abcdef123456",
    ]
    # WHEN shown
    shown = [safe_repr(c, limit=500) for c in cases]
    # THEN no secret survives, other values do
    for text in shown:
        assert KEY not in text and "hunter22" not in text and "abcdef" not in text
    assert "'api_key': '***'" in shown[0] and "'token': '***'" in shown[0] and "'visible'" in shown[0]
    assert "api_key='***'" in shown[1] and "password='***'" in shown[1] and "model='<fake>'" in shown[1]
    assert "sk-***" in shown[2]


def test_safe_repr_never_raises_bounds_and_escapes():
    assert "repr failed" in safe_repr(Hostile())
    assert len(safe_repr(list(range(10_000)), limit=50)) <= 50
    assert safe_repr("<script>", html=True) == "&#x27;&lt;script&gt;&#x27;"


def test_a_secret_cut_by_truncation_is_still_redacted():
    # GIVEN a long repr whose secret straddles the limit
    text = safe_repr({"x": "y" * 30, "api_key": KEY}, limit=60)
    assert KEY[:8] not in text


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(max_size=40), suffix=st.text(max_size=40), limit=st.integers(min_value=5, max_value=200))
def test_sk_keys_never_show_whatever_surrounds_them(prefix, suffix, limit):
    text = safe_repr(prefix + " " + KEY + " " + suffix, limit=limit)
    assert "Abc123XYZ" not in text and len(text) <= limit


@pytest.fixture
def module():
    mod = types.ModuleType("leaklab_test_safe_module")
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]
    mod.__dict__.clear()


class Context:
    pass


def _report_with_hostile_keys(mod):
    # Dict keys are quoted in labels: make them secrets and markup.
    mod.by_token = {KEY: Context()}
    mod.by_markup = {"<img src=x onerror=alert(1)>": Context()}
    return analyze_survivors({"Context": [*mod.by_token.values(), *mod.by_markup.values()]})


def test_labels_table_svg_and_dot_are_redacted_and_escaped(module, monkeypatch):
    # GIVEN a report whose chains quote a secret and some markup
    report = _report_with_hostile_keys(module)
    labels = " ".join(e.label for g in report.groups for e in g.chain.edges)
    assert KEY not in labels and "sk-***" in labels
    assert "<img src=x onerror=alert(1)>" in labels  # plain text keeps it readable
    # WHEN rendered as HTML table, pure-Python SVG and DOT
    monkeypatch.setattr(render_mod.shutil, "which", lambda name: None)
    table = report._repr_html_()
    pictures = [render_chain(g) for g in report.groups]
    dots = [chain_to_dot(g) for g in report.groups]
    # THEN nothing is raw markup and nothing is the secret
    for out in [table, *(p.data for p in pictures), *(p._repr_html_() for p in pictures), *dots]:
        assert KEY not in out
        assert "<img" not in out
    assert any("&lt;img src=x onerror=alert(1)&gt;" in p.data for p in pictures)
    assert all(p.engine == "python" and p._repr_svg_().startswith("<svg") for p in pictures)


def test_graphviz_is_used_when_a_dot_binary_exists(tmp_path, monkeypatch):
    # GIVEN a stand-in `dot` that echoes its input inside an <svg>
    fake = tmp_path / "dot"
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write('<svg>' + sys.stdin.read() + '</svg>')\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    group = {"type": "ServiceContext", "count": 3, "root_kind": "pending_task",
             "chain": [{"kind": "task", "label": "Task <x> & co", "where": "a.py:1"}]}
    # WHEN rendered
    picture = render_chain(group)
    # THEN graphviz got the escaped DOT
    assert picture.engine == "graphviz"
    assert "Task &lt;x&gt; &amp; co" in picture.data and "ServiceContext × 3" in picture.data


def test_png_without_graphviz_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(render_mod.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="dot"):
        render_chain([{"kind": "task", "label": "x", "where": None}], fmt="png")
