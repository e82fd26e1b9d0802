"""``leaklab`` command line: a thin layer over the calls the notebooks make."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faults", default="none", help="fault ids: C1,...,C9, C8-proposed, all or none")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leaklab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the reference backend on 127.0.0.1 until Ctrl-C")
    _add_backend_args(p)
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=_cmd_serve)
    return parser


def _backend_app(args: argparse.Namespace):
    from .backend import UnknownFaultError, UnknownOptionError, create_app, parse_option_pairs

    try:
        return create_app(args.faults, parse_option_pairs(args.option))
    except (UnknownFaultError, UnknownOptionError) as exc:
        raise UsageError(str(exc)) from None


def _cmd_serve(args: argparse.Namespace) -> int:
    from .serving import serve

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = _backend_app(args)

    async def main() -> None:
        async with serve(app, port=args.port, uvicorn_options=app.state.uvicorn_options) as srv:
            faults = ",".join(sorted(app.state.faults)) or "none"
            print(f"leaklab reference backend (faults: {faults})", flush=True)
            print(srv.url("/client-ws"), flush=True)
            if app.state.enable_proxy:
                print(srv.url("/proxy-ws"), flush=True)
            print("Ctrl-C to stop", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``leaklab`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"leaklab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
