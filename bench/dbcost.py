"""``python -m bench.dbcost``: what one database round trip costs the server's process.

The load benchmark shows the server spending most of its CPU around the
database. This measures the unit of that cost in isolation, on the server's
own ``Database`` (same engines, pool and hooks as ``p2sp.server``), against a
temporary SQLite file: a trivial statement (``SELECT 1``) through

- ``sqlite3`` directly (the floor),
- ``aiosqlite`` without SQLAlchemy (one hop to its thread per call),
- SQLAlchemy's async engine on an open connection,
- ``reader.connect()`` + statement (what a read in a repository does),
- ``writer.begin()`` + statement + commit (what a write does),

each as wall time and as this process's CPU time per operation (all threads).
Run it on a quiet machine; it takes a few seconds. ``--database-url`` measures
another database (PostgreSQL through asyncpg).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text

from p2sp.server.db.engine import Database


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _measure(label: str, n: int, op: Callable[[], Awaitable[None]]) -> None:
    for _ in range(min(200, n)):  # warm caches and pools
        await op()
    t0, c0 = time.perf_counter(), _cpu()
    for _ in range(n):
        await op()
    wall = (time.perf_counter() - t0) / n * 1e6
    cpu = (_cpu() - c0) / n * 1e6
    print(f"{label:52} {wall:8.1f} µs wall {cpu:8.1f} µs CPU")


async def run(url: str | None, n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="p2sp-dbcost-"))
    if url is None:
        path = tmp / "cost.db"
        url = f"sqlite+aiosqlite:///{path}"
        raw = sqlite3.connect(path)
        t0, c0 = time.perf_counter(), _cpu()
        for _ in range(n):
            raw.execute("SELECT 1").fetchall()
        print(
            f"{'sqlite3, SELECT 1 (no asyncio)':52} {(time.perf_counter() - t0) / n * 1e6:8.1f} "
            f"µs wall {(_cpu() - c0) / n * 1e6:8.1f} µs CPU"
        )
        raw.close()
        import aiosqlite

        async with aiosqlite.connect(path) as conn:

            async def plain() -> None:
                async with conn.execute("SELECT 1") as cur:
                    await cur.fetchall()

            await _measure("aiosqlite, execute + fetchall (no SQLAlchemy)", n, plain)
    db = Database.from_url(url)
    await db.check()
    await db.upgrade()
    stmt = text("SELECT 1")
    try:
        async with db.reader.connect() as conn:

            async def on_open() -> None:
                (await conn.execute(stmt)).all()

            await _measure("SQLAlchemy async, open connection, SELECT 1", n, on_open)

        async def read() -> None:
            async with db.reader.connect() as conn:
                (await conn.execute(stmt)).all()

        async def write() -> None:
            async with db.writer.begin() as conn:
                await conn.execute(stmt)

        await _measure("reader.connect() + SELECT 1", n, read)
        await _measure("writer.begin() + SELECT 1 + COMMIT", n, write)
    finally:
        await db.dispose()
    print(f"database: {db.safe_url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbcost", description=__doc__)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("-n", type=int, default=3000, help="operations per measurement")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(run(args.database_url, args.n))
    except ImportError:  # pragma: no cover
        asyncio.run(run(args.database_url, args.n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
