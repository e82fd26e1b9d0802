"""``leaklab record``: open the backend's own page in a browser, record every
frame it sends, write a scenario file that ``--scenario FILE`` replays
(:func:`format_recording`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from .common import TargetArgs, UsageError, add_json_arg, add_target_args, log_level

#: Where the file goes without ``-o``.
DEFAULT_OUTPUT = "recorded-scenario.json"


def add_parser(sub: Any) -> None:
    from ..driver.recording import DEFAULT_SCRIPT, WAIT_THRESHOLD_S

    p = sub.add_parser("record", help="open the backend's page in a browser, record what it sends, write a "
                                      "scenario file for --scenario FILE")
    add_target_args(p)
    g = p.add_argument_group("recording")
    g.add_argument("-o", "--output", default=DEFAULT_OUTPUT, metavar="FILE",
                   help=f"the scenario file to write: JSON, or YAML when it ends .yaml/.yml (default {DEFAULT_OUTPUT})")
    g.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    g.add_argument("--browser", dest="browser_path", default=None, metavar="PATH",
                   help="the browser (default: chromium, google-chrome or msedge on PATH; never downloaded)")
    g.add_argument("--headless", action="store_true",
                   help="no window: the page takes --script through its own controls (the default where there is "
                        "no display; with one, a window opens and you use the page until you close the tab or "
                        "press Enter here)")
    g.add_argument("--script", default=None, metavar="STEPS",
                   help=f"the steps a headless page takes (implies --headless; default {DEFAULT_SCRIPT})")
    g.add_argument("--wait-threshold", type=float, default=WAIT_THRESHOLD_S, metavar="SECONDS",
                   help=f"a quiet longer than this between two steps is kept as wait:S (default {WAIT_THRESHOLD_S:g})")
    add_json_arg(p)
    p.set_defaults(func=handle)


def has_display() -> bool:
    """Whether a browser window can be shown here."""
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _enter_pressed() -> asyncio.Future[None]:
    """Done when the user presses Enter (a daemon thread reads one line)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def read() -> None:
        try:
            sys.stdin.readline()
        except (OSError, ValueError):
            return
        try:
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))
        except RuntimeError:  # the recording already ended
            pass

    threading.Thread(target=read, name="leaklab-record-enter", daemon=True).start()
    return done


def handle(args: argparse.Namespace) -> int:
    from ..driver.browser import BrowserMissing, check_browser
    from ..driver.recording import DEFAULT_SCRIPT, record_page
    from ..driver.scenario_file import SUFFIXES, write_scenario_file
    from ..driver.scenarios import UnknownScenarioError, steps_scenario
    from ..serving import ServerStartError
    from ..session import LeakSession

    log_level(logging.WARNING)
    out = Path(args.output)
    if out.suffix.lower() not in SUFFIXES:
        raise UsageError(f"-o {args.output}: a scenario file's name ends .json, .yaml or .yml")
    if out.exists() and not args.force:
        raise UsageError(f"-o {args.output} exists: name another file, or add --force to overwrite it")
    if not args.wait_threshold > 0:
        raise UsageError("--wait-threshold must be a positive number of seconds")
    interactive = args.script is None and not args.headless and has_display()
    script = None if interactive else (args.script or DEFAULT_SCRIPT)
    if script is not None:
        try:
            steps_scenario(script)
        except UnknownScenarioError as exc:
            raise UsageError(f"--script: {exc}") from None
    ta = TargetArgs(args)
    try:
        browser = check_browser(args.browser_path)
    except BrowserMissing as exc:
        raise UsageError(str(exc)) from None
    timeout = ta.session_kwargs.get("step_timeout_s") or 30.0

    def opened(page: Any) -> None:
        print(f"recording {page.url}: use the page, then close its tab (or press Enter here)", flush=True)

    async def main() -> Any:
        session = LeakSession(ta.target, measure=False, runs_dir=False, progress=False)
        await session.start()
        try:
            assert session.server is not None
            until = _enter_pressed() if interactive and sys.stdin is not None and sys.stdin.isatty() else None
            return await record_page(
                session.server.host, session.server.port, ws_path=session.target.ws_path,
                proxy_path=session.target.proxy_path, characters=session.target.characters, target=ta.target.name,
                browser=browser, script=script, until=until, timeout_s=timeout,
                wait_threshold_s=args.wait_threshold, on_open=opened if interactive else None,
            )
        finally:
            await session.stop()

    try:
        recorded = asyncio.run(main())
    except ServerStartError as exc:
        print(f"leaklab: backend did not start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    except Exception as exc:  # a step of the script failed: say which, write nothing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        hint = ""
        if script is not None:
            from ..driver.browser import DEFAULT_SELECTORS

            hint = (f" (a headless recording drives the page through its own controls, "
                    f"{', '.join(DEFAULT_SELECTORS.values())}: record a page without them by hand, in a window)")
        print(f"leaklab: the recording failed, nothing written: {type(exc).__name__}: {first}{hint}", file=sys.stderr)
        return 1
    path = write_scenario_file(out, recorded)
    if args.json:
        print(json.dumps({"path": str(path), "steps": recorded.words(), "uncovered": recorded.uncovered,
                          "target": recorded.target, "recorded": recorded.recorded}, default=str))
    else:
        print(format_recording(recorded, path))
    return 0


def format_recording(recorded: Any, path: Path) -> str:
    """What the page did, as steps; what no step word covers; the file written."""
    sent = sum(1 for e in recorded.frames if e.get("event") == "sent")
    script = recorded.recorded.get("script")
    how = f"headless, the script {script}" if script else "by hand"
    lines = [f"recorded {recorded.recorded.get('page')} ({how}): {sent} frames sent",
             "steps: " + ", ".join(recorded.words())]
    if recorded.uncovered:
        counts = ", ".join(f"{kind} ×{n}" for kind, n in sorted(recorded.uncovered.items(), key=lambda kv: -kv[1]))
        lines.append(f"not covered by a step word (kept as raw frames, replayed as sent): {counts}")
    else:
        lines.append("every frame the page sent is covered by a step word")
    lines.append(f"written: {path}")
    lines.append(f"replay: leaklab run --scenario {path} (with the same target flags)")
    return "\n".join(lines)
