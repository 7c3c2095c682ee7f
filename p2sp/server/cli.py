"""``p2sp-server``: serve (the default), ``promote NAME``, ``demote NAME``.

The flags are the settings operators reach for most; every other setting
comes from ``P2SP_*`` variables or an env-style file (``--config``, else
``.env`` / ``wg.env``). Flags beat the environment, which beats files.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from pydantic import ValidationError

from p2sp import __version__
from p2sp.common.exceptions import ChatError
from p2sp.server.config import Settings, load_settings

log = logging.getLogger("p2sp.server")

#: Allocations (net of frees) between young-generation collections; CPython's default is 700.
GC_YOUNG_THRESHOLD = 50_000


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL (default sqlite+aiosqlite:///p2sp.db)"
    )
    parser.add_argument("--config", metavar="FILE", help="env-style settings file")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2sp-server",
        description="p2sp chat server. With no command, serves.",
    )
    parser.add_argument("--version", action="version", version=f"p2sp {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the server (the default)")
    for p in (parser, serve):
        p.add_argument("--host", help="address to listen on (default 0.0.0.0)")
        p.add_argument("--port", type=int, help="port to listen on (default 18888)")
        _common(p)
    for name, text in (
        ("promote", "make a user a server admin"),
        ("demote", "revoke server admin"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("username")
        _common(cmd)
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # SQLAlchemy and Alembic are chatty at INFO; their warnings still show.
    for noisy in ("sqlalchemy", "alembic", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def run(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def tune_gc() -> None:
    """Run the cyclic garbage collector less often, and never over start-up's objects.

    Serving a request allocates many short-lived containers (decoded frames,
    dicts, futures, coroutine frames) that reference counting frees at once;
    with CPython's default young-generation threshold of 700 the cyclic
    collector still ran so often that it was about 11 % of the server's CPU
    under load (perf, see bench/RESULTS.md). Collections stay automatic,
    just rarer; the modules and settings loaded at start are frozen out of
    every scan.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


async def _serve(settings: Settings) -> int:
    from p2sp.server.db.engine import DatabaseUnavailable
    from p2sp.server.server import ChatServer

    tune_gc()
    server = ChatServer(settings)
    try:
        await server.serve()
    except DatabaseUnavailable as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", settings.host, settings.port, exc.strerror or exc)
        return 2
    return 0


async def _set_admin(settings: Settings, username: str, is_admin: bool) -> int:
    from p2sp.server.server import build_database, build_user_service

    db = build_database(settings)
    try:
        await db.check()
        await db.upgrade()
        user = await build_user_service(settings, db).set_admin(username, is_admin)
    except ChatError as exc:
        print(f"p2sp-server: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    verb = "is now" if is_admin else "is no longer"
    print(f"{user.username} {verb} a server admin")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "database_url": args.database_url,
        "log_level": args.log_level,
    }
    try:
        settings = load_settings(args.config, **flags)
    except (ValidationError, FileNotFoundError) as exc:
        print(f"p2sp-server: bad settings: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    if args.command in ("promote", "demote"):
        return run(_set_admin(settings, args.username, args.command == "promote"))
    return run(_serve(settings))


if __name__ == "__main__":
    sys.exit(main())
