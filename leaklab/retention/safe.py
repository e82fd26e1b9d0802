"""Reprs that are safe to show: bounded, never raising, secrets redacted.

Every string the retention layer puts in a label, a table or a picture goes
through :func:`safe_repr` or :func:`redact`: a chain label may quote a dict
key or an object's repr, and a notebook or HTML report is shared with people
who must not see an API key.
"""

from __future__ import annotations

import html as _html
import re
import reprlib
from typing import Any

__all__ = ["SECRET_NAME", "is_secret_name", "redact", "safe_repr"]

#: Names whose values are replaced by ``'***'`` (matched anywhere in a key or
#: attribute name, case-insensitive: ``OPENAI_API_KEY``, ``access_token``).
SECRET_NAME = r"(?:api[_-]?key|apikey|token|passw(?:or)?d|secret|authori[sz]ation|credential)"

_NAME_RE = re.compile(SECRET_NAME, re.IGNORECASE)
# ``api_key='…'``, ``'token': "…"``, ``password=hunter2``: the value may be
# quoted (possibly cut by truncation, hence the optional closing quote) or bare.
_ASSIGN_RE = re.compile(
    r"""(?P<name>['"]?[\w\-]*""" + SECRET_NAME + r"""[\w\-]*['"]?)(?P<sep>\s*[:=]\s*)"""
    r"""(?P<value>[bru]{0,2}'(?:[^'\\]|\\.)*'?|[bru]{0,2}"(?:[^"\\]|\\.)*"?|[^\s,)}\]>]+)""",
    re.IGNORECASE,
)
_SK_RE = re.compile(r"\bsk-[A-Za-z0-9_\-]{3,}")
_BEARER_RE = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE)
# Reprs longer than this are not redacted in full: a multi-megabyte repr is
# cut first (the kept part is still redacted).
_REDACT_SCAN = 8192
_FILL = "…"


def is_secret_name(name: object) -> bool:
    """Whether a key or attribute name looks like it holds a secret."""
    return isinstance(name, str) and _NAME_RE.search(name) is not None


def redact(text: str) -> str:
    """Replace secret-looking values in ``text`` by ``'***'``.

    Covers ``name=value`` / ``'name': value`` pairs whose name matches
    :data:`SECRET_NAME`, ``sk-…`` style keys and ``Bearer …`` credentials.
    """
    # Bearer first: "Authorization: Bearer xyz" must lose xyz, not just "Bearer".
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} ***", text)
    text = _ASSIGN_RE.sub(lambda m: f"{m.group('name')}{m.group('sep')}'***'", text)
    return _SK_RE.sub("sk-***", text)


class _RedactingRepr(reprlib.Repr):
    """``reprlib`` bounds containers; this subclass also redacts, *before*
    truncating, so a cut never leaves half a key visible."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdeque = 8
        self.maxstring = self.maxother = max(20, limit)

    def _cut(self, s: str, n: int) -> str:
        return s if len(s) <= n else s[: max(0, n - 1)] + _FILL

    def repr_str(self, x: str, level: int) -> str:
        return self._cut(redact(repr(x[:_REDACT_SCAN])), self.maxstring)

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            s = repr(x)
        except Exception:
            return _fallback(x)
        if not isinstance(s, str):
            return _fallback(x)
        return self._cut(redact(s[:_REDACT_SCAN]), self.maxother)

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        parts = []
        for i, (k, v) in enumerate(x.items()):
            if i >= self.maxdict:
                parts.append("...")
                break
            key = self.repr1(k, level - 1)
            value = "'***'" if is_secret_name(k) else self.repr1(v, level - 1)
            parts.append(f"{key}: {value}")
        return "{" + ", ".join(parts) + "}"


def _fallback(obj: Any) -> str:
    try:
        return f"<{type(obj).__qualname__} object (repr failed)>"
    except Exception:
        return "<object (repr failed)>"


def safe_repr(obj: Any, limit: int = 120, *, html: bool = False) -> str:
    """A bounded, redacted repr that never raises.

    Args:
        obj: anything; its ``__repr__`` may raise or be huge.
        limit: maximum length of the result (``…`` marks a cut).
        html: HTML-escape the result (for tables and inline SVG).

    Returns:
        The repr with secret values replaced by ``'***'``.
    """
    try:
        text = _RedactingRepr(limit).repr(obj)
    except Exception:
        text = _fallback(obj)
    text = redact(text)
    if len(text) > limit:
        text = redact(text[: max(0, limit - 1)]) + _FILL
    return _html.escape(text, quote=True) if html else text
