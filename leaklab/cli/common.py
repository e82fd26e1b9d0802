"""What every command shares: the target flags and their one reading,
``--json``, the usage error, printing a result."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Callable


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def add_backend_args(p: Any) -> None:
    """``--faults`` and ``--option``: the reference backend's switches (on a
    parser or an argument group)."""
    p.add_argument("--faults", default="none", help="fault ids: C1,...,C9, C8-proposed, all or none (reference backend)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)")


def add_target_args(p: argparse.ArgumentParser) -> None:
    """The flags every command that runs a backend takes, with one meaning."""
    g = p.add_argument_group("target (the backend to run in-process)")
    g.add_argument("--target", default=None,
                   help="'reference' (default), 'olv' (with --app-dir), a target file (.toml/.yaml) "
                        "or 'package.module:factory'")
    g.add_argument("--app-dir", default=None, metavar="DIR",
                   help="your app folder, for --target olv (overrides a target file's app_dir)")
    g.add_argument("--target-file", default=None, metavar="FILE", help="a target file (TOML or YAML); same as --target FILE")
    add_backend_args(g)
    g.add_argument("--watch", action="append", default=[], metavar="TYPE",
                   help="another type to count: ClassName or package.module:Qualname (repeatable)")
    g.add_argument("--step-timeout", type=float, default=None, metavar="SECONDS",
                   help="bound on every protocol step (default: 60 s for the first cycle, then 4x the slowest connect)")
    g.add_argument("--runs-dir", default=None, metavar="DIR",
                   help="where runs are saved (default $LEAKLAB_RUNS_DIR or ./leaklab-runs)")


def add_client_args(p: argparse.ArgumentParser) -> None:
    """What opens each tab: ``--client browser`` runs the backend's own page in
    a browser already on the machine (``--browser PATH`` names one)."""
    g = p.add_argument_group("client (what opens each tab)")
    g.add_argument("--client", choices=("synthetic", "browser"), default="synthetic",
                   help="synthetic (default): WebSocket clients doing what the page does; browser: the backend's "
                        "own page in headless Chromium (pip install 'leaklab[browser]'; a browser already installed)")
    g.add_argument("--browser", default=None, metavar="PATH",
                   help="the browser for --client browser (default: chromium, google-chrome or msedge on PATH)")


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")


def at_least_one(value: int | None, flag: str) -> None:
    """``--cycles``, ``--jobs``: a count given must be 1 or more."""
    if value is not None and value < 1:
        raise UsageError(f"{flag} must be at least 1")


def check_scenario(scenario: str) -> None:
    """A scenario name or step list, checked before any backend starts."""
    from ..driver.scenarios import UnknownScenarioError, get_scenario

    try:
        get_scenario(scenario)
    except UnknownScenarioError as exc:
        raise UsageError(str(exc)) from None


class TargetArgs:
    """What the target flags say, checked once: the same for every command."""

    def __init__(self, args: argparse.Namespace) -> None:
        from ..backend import UnknownFaultError, UnknownOptionError, parse_option_pairs
        from ..targets import UnknownTargetError, resolve_target

        if "" not in sys.path:
            sys.path.insert(0, "")  # `--target mypkg.app:factory` from the current folder, as python -m does
        if args.step_timeout is not None and not args.step_timeout > 0:
            raise UsageError("--step-timeout must be a positive number of seconds")
        try:
            self.options = parse_option_pairs(args.option)
        except UnknownOptionError as exc:
            raise UsageError(str(exc)) from None
        self.faults = args.faults
        self.watch = {w.rpartition(":")[2].rpartition(".")[2]: w for w in args.watch}
        self.app_dir = args.app_dir
        self.target_file = args.target_file
        self.name = args.target or ("reference" if args.target_file is None else None)
        try:
            self.target = resolve_target(self.name, app_dir=self.app_dir, target_file=self.target_file,
                                         faults=self.faults, options=self.options, watch=self.watch)
        except (UnknownFaultError, UnknownOptionError, UnknownTargetError) as exc:
            raise UsageError(str(exc)) from None
        self.session_kwargs = {"step_timeout_s": args.step_timeout, "runs_dir": args.runs_dir}
        if getattr(args, "client", "synthetic") != "synthetic" or getattr(args, "browser", None):
            if getattr(args, "client", "synthetic") != "browser":
                raise UsageError("--browser names the browser of --client browser: add --client browser")
            from ..driver.browser import BrowserMissing, PageMissing, check_browser, check_page

            try:
                check_browser(args.browser)
                check_page(self.target.page_dir, self.target.page_hint)
            except (BrowserMissing, PageMissing) as exc:
                raise UsageError(str(exc)) from None
            self.session_kwargs.update(client="browser", browser=args.browser)


def print_result(result: Any, as_json: bool, text: Callable[[Any], str]) -> int:
    """One JSON object (``--json``) or the command's text form; exit 0."""
    print(json.dumps(result.as_dict(), default=str) if as_json else text(result))
    return 0


def log_level(level: int) -> None:
    """The command's logging: records at ``level`` and above, one line each."""
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def num(x: object) -> str:
    """A number in a text table: ``-`` for none, two decimals below 1000."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.2f}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)
