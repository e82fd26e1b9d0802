"""``leaklab serve``: the reference backend on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from .common import UsageError, add_backend_args, log_level


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the reference backend on 127.0.0.1 until Ctrl-C")
    add_backend_args(p)
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=handle)


def backend_app(args: argparse.Namespace) -> Any:
    """The reference app with the ``--faults`` and ``--option`` given."""
    from ..backend import UnknownFaultError, UnknownOptionError, create_app, parse_option_pairs

    try:
        return create_app(args.faults, parse_option_pairs(args.option))
    except (UnknownFaultError, UnknownOptionError) as exc:
        raise UsageError(str(exc)) from None


def handle(args: argparse.Namespace) -> int:
    from ..serving import serve

    log_level(logging.INFO if args.verbose else logging.WARNING)
    app = backend_app(args)

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
