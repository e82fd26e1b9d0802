"""Python version differences, in one place (leaklab supports 3.10-3.13)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised in the Python 3.10 environment
    import tomli as tomllib

__all__ = ["chdir", "task_cancelling", "tomllib"]


@contextlib.contextmanager
def chdir(path: str | os.PathLike[str]) -> Iterator[None]:
    """``contextlib.chdir`` (3.11+): the current directory is ``path`` inside."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def task_cancelling(task: Any) -> int:
    """``Task.cancelling()`` (3.11+); 0 where the loop does not count
    cancellation requests (3.10)."""
    method = getattr(task, "cancelling", None)
    return method() if method is not None else 0
