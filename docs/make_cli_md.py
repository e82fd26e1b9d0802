"""Write docs/cli.md from the parser's own ``--help`` texts.

    python docs/make_cli_md.py          # rewrites docs/cli.md

``tests/test_docs.py`` checks that the committed page is what this writes,
so a changed flag without a regenerated page fails the suite.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().with_name("cli.md")
#: the width the help is wrapped at, whatever the terminal
WIDTH = "100"


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its sub-commands only there
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def render() -> str:
    """The page: ``leaklab --help``, then each command's, in the parser's order."""
    from leaklab.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        parser = build_parser()
        parts = [
            "# Command reference\n",
            "[Documentation](index.md) · generated from `leaklab <command> --help` by `python docs/make_cli_md.py`;",
            "`tests/test_docs.py` checks it matches.\n",
            "## leaklab\n", "```", parser.format_help().rstrip(), "```\n",
        ]
        for name, sub in _commands(parser).items():
            parts += [f"## leaklab {name}\n", "```", sub.format_help().rstrip(), "```\n"]
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


if __name__ == "__main__":
    PAGE.write_text(render(), encoding="utf-8")
    print(f"wrote {PAGE}", file=sys.stderr)
