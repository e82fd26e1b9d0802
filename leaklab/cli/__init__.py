"""``leaklab`` command line: a thin layer over the calls the notebooks make."""

# One module per command, each owning its sub-parser (``add_parser``), its
# handler (``handle``) and the text form it prints (``format_*``); what they
# share (the target flags and their one reading, ``--json``, the usage error)
# is in ``common``. A command module imports ``common`` and the packages it
# calls, never this one: the parser is assembled here.
#
#     serve      the reference backend until Ctrl-C
#     run        cycles measured, the verdict table     format_summary, format_lifecycle, format_survivors
#     why        the retention chains of the survivors  format_why
#     checklist  C1-C9 with measured verdicts           format_checklist
#     hunt       the leaking lifecycles, minimised      format_hunt
#     compare    before/after your change               format_comparison
#     record     the page's frames -> a scenario file   format_recording
#     report     the notebooks -> one HTML file

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import checklist, compare, hunt, notebooks, record, report, run, serve, why
from .checklist import format_checklist
from .common import TargetArgs, UsageError
from .compare import format_comparison
from .hunt import format_hunt
from .run import format_lifecycle, format_summary, format_survivors
from .why import format_why

#: The subcommands, in the order ``leaklab --help`` lists them.
COMMANDS = (serve, run, why, checklist, hunt, compare, record, report, notebooks)


def build_parser() -> argparse.ArgumentParser:
    """The ``leaklab`` parser: each command module adds its sub-parser, with
    its handler as ``func``."""
    parser = argparse.ArgumentParser(prog="leaklab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _own_interrupts() -> None:
    # A shell starts background jobs with SIGINT ignored, and asyncio only
    # turns Ctrl-C into a clean cancellation when the default handler is in
    # place: restore it, and let SIGTERM take the same clean path.
    from .._platform import stop_as_interrupt

    stop_as_interrupt()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``leaklab`` console script."""
    _own_interrupts()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"leaklab: error: {exc}", file=sys.stderr)
        return 2


__all__ = ["COMMANDS", "TargetArgs", "UsageError", "build_parser", "format_checklist", "format_comparison",
           "format_hunt", "format_lifecycle", "format_summary", "format_survivors", "format_why", "main"]
