"""``python -m bench read``: how fast a real server reads a large history.

A real server process (``bench.servers.P2spServer``, the launcher's
``ServerProcess``) runs on a database made by ``bench/gendb.py`` (1,000,000
messages of 1,000 users by default). Clients log in as the hub
(``user0001``: a direct chat with everyone and every group) and as
``--pool`` (8) other users, then send one request at a time and time each
from the call to its response. ``--client raw`` (the default) writes the
request frames itself (``p2sp.common``'s ``request_frame`` and
``FrameDecoder``) and decodes responses with msgspec alone, so the figure is
the server's and the wire's; ``--client sdk`` uses ``p2sp.client.Client``
(``await client.call(...)``), whose own handling of a response is then
counted too (the report shows the client's CPU per request either way).

- ``conversations``: the hub's first page of 50, ``--requests`` times; and
  ``--walks`` walks through all of the hub's conversations, 50 a page,
  paging with ``before`` / ``before_id`` (every page timed, and each walk);
- ``history``: pages of 200, in walks of up to ``--pages`` pages back
  (``before_seq`` = the first seq of the page before) starting at a random
  seq, or at the newest message for a quarter of the walks; the
  conversation is one of the pool's, chosen with a weight of its
  ``last_seq`` (a random message's conversation);
- ``search``, 3+ characters: the most common words of the vocabulary
  (``common``), words in about one message in a thousand (``medium``) and
  the rare marker words (``rare``); then 1-character and 2-character
  queries (``short-1``, ``short-2``), which no index serves (the server
  scans the newest messages); half of the requests by the hub, half by the
  others of the pool.

Each kind is warmed up first (a tenth of its requests, not counted). For
each: latency percentiles (p50, p90, p99, max), the server's CPU over the
kind's requests (from /proc), its RSS; on PostgreSQL also the CPU of every
``postgres`` process of the machine over the same window (other users of
that PostgreSQL server count too), and the CPU of other processes. ``--explain``
then shows the query plan of every statement the server runs for these
requests, built by the server's own repository code
(``p2sp/server/repository/history.py``, ``search.py``) and timed in the
database directly; on PostgreSQL also the prepared statement run eight times
in a row (as asyncpg runs it: from the sixth run PostgreSQL may switch to a
generic plan) and the generic plan's time, with the plan when it is slower.

Databases: by default a temporary SQLite file, generated for the run and
deleted after it; ``--postgres SERVER_URL`` generates into a fresh database
on that PostgreSQL server (``p2sp.launcher.temporary_database``) and drops
it afterwards; ``--database-url URL`` reads one generated before (its
manifest: ``--manifest``, default beside a SQLite file). ``--keep-db FILE``
generates a SQLite file (or reuses it when its manifest is there) and keeps
it for the next run. See docs/benchmark.md, "Reading a large history".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy.sql.elements import TextClause

if __package__ in (None, ""):  # run as ``python bench/readbench.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import gendb
from bench.run import ROOT, command_line, git, machine
from bench.servers import CLK_TCK, P2spServer, ServerError, export_source, machine_busy_seconds
from p2sp.client.client import Client, RequestError
from p2sp.common.message import request_frame
from p2sp.common.protocol import FrameDecoder
from p2sp.launcher import temporary_database

#: Server settings: no per-address limit on the pool's logins.
SERVER_ENV = {
    "P2SP_LOG_LEVEL": "INFO",
    "P2SP_SCRYPT_N": str(gendb.SCRYPT.n),
    "P2SP_REG_MAX_PER_IP": "10000000",
    "P2SP_LOGIN_MAX_FAILURES_PER_IP": "10000000",
}
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
HISTORY_PAGE = 200
CONVERSATIONS_PAGE = 50
SEARCH_LIMIT = 20
#: Queries too short for a trigram: the server scans the newest messages.
SHORT_QUERIES = {"short-1": ["好", "会", "z"], "short-2": ["ok", "我们", "测试", "qa"]}

#: (kind, what, statistic, limit in ms) - the project's read targets.
TARGETS = [
    ("history", "history page of 200", "p99", 20.0),
    ("conversations-first", "conversations, user with 1,000 (first page)", "p99", 50.0),
    ("conversations-walk", "conversations, user with 1,000 (every page)", "p99", 50.0),
    ("search-common", "search 3+ chars, common word", "p50", 50.0),
    ("search-common", "search 3+ chars, common word", "p99", 200.0),
    ("search-medium", "search 3+ chars, medium word", "p50", 50.0),
    ("search-medium", "search 3+ chars, medium word", "p99", 200.0),
    ("search-rare", "search 3+ chars, rare word", "p50", 50.0),
    ("search-rare", "search 3+ chars, rare word", "p99", 200.0),
]


class BenchError(RuntimeError):
    pass


# --- figures ------------------------------------------------------------------------------


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the samples at or below it."""
    rank = max(1, min(len(sorted_ms), int(q * len(sorted_ms) + 0.999999)))
    return sorted_ms[rank - 1]


def summary(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"count": 0}
    s = sorted(ms)
    return {
        "count": len(s),
        "mean": round(statistics.fmean(s), 3),
        "p50": round(percentile(s, 0.50), 3),
        "p90": round(percentile(s, 0.90), 3),
        "p99": round(percentile(s, 0.99), 3),
        "max": round(s[-1], 3),
    }


def postgres_cpu_seconds() -> float:
    """CPU seconds of every process named ``postgres`` on the machine (from /proc)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name != "postgres":
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


@dataclass
class Kind:
    """The samples of one kind of request, and the server's figures over them."""

    name: str
    what: str
    ms: list[float] = field(default_factory=list)
    by_who: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)

    def add(self, ms: float, who: str | None = None) -> None:
        self.ms.append(ms)
        if who is not None:
            self.by_who.setdefault(who, []).append(ms)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"what": self.what, "latency_ms": summary(self.ms)}
        if len(self.by_who) > 1:
            out["by_user"] = {who: summary(ms) for who, ms in sorted(self.by_who.items())}
        out.update(self.notes)
        out["server"] = self.server
        return out


class Window:
    """The server's (and PostgreSQL's) CPU and memory over one kind's requests."""

    def __init__(self, server: P2spServer, postgres: bool) -> None:
        assert server.stats is not None
        self.stats = server.stats
        self.postgres = postgres

    def __enter__(self) -> Window:
        self.t = time.monotonic()
        self.own = time.process_time()
        self.busy = machine_busy_seconds()
        self.cpu = self.stats.cpu_seconds()
        self.pg = postgres_cpu_seconds() if self.postgres else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.t
        self.cpu = self.stats.cpu_seconds() - self.cpu
        self.own = time.process_time() - self.own
        self.busy = machine_busy_seconds() - self.busy
        if self.postgres:
            self.pg = postgres_cpu_seconds() - self.pg
        mem = self.stats.memory_kb()
        self.rss_mb = mem.get("VmRSS", 0) / 1024
        self.hwm_mb = mem.get("VmHWM", 0) / 1024

    def figures(self, requests: int) -> dict[str, Any]:
        out = {
            "seconds": round(self.seconds, 2),
            "cpu_s": round(self.cpu, 2),
            "cpu_ms_per_request": round(1000 * self.cpu / max(1, requests), 2),
            "cpu_share": round(self.cpu / max(1e-9, self.seconds), 3),
            "rss_mb": round(self.rss_mb, 1),
            "peak_rss_mb": round(self.hwm_mb, 1),
            "client_cpu_ms_per_request": round(1000 * self.own / max(1, requests), 2),
        }
        if self.postgres:
            out["postgres_cpu_s"] = round(self.pg, 2)
            out["postgres_cpu_ms_per_request"] = round(1000 * self.pg / max(1, requests), 2)
        other = self.busy - self.cpu - self.own - (self.pg if self.postgres else 0.0)
        out["other_processes_cpu_share"] = round(max(0.0, other) / max(1e-9, self.seconds), 3)
        return out


# --- clients ------------------------------------------------------------------------------


class RawClient:
    """Requests as frames on a plain asyncio stream (``p2sp.common``'s
    ``request_frame`` and ``FrameDecoder``), one at a time; responses decoded
    with msgspec and nothing else, events skipped. What it measures is the
    server and the wire, not an SDK's handling of the response."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.token: str | None = None
        self._ids = itertools.count(1)
        self._decoder = FrameDecoder(16 * 1024 * 1024)
        self._ready: list[bytes] = []

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def call(self, action: str, **data: Any) -> dict[str, Any]:
        rid = next(self._ids)
        self.writer.write(request_frame(action, rid, data, self.token))
        async with asyncio.timeout(self.timeout):
            while True:
                while self._ready:
                    envelope = msgspec.json.decode(self._ready.pop(0))
                    body = envelope.get("payload") or {}
                    if envelope.get("type") != "response" or body.get("id") != rid:
                        continue  # an event, or nothing we wait for
                    if body.get("status") != "ok":
                        raise BenchError(f"{action}: {body.get('code')}: {body.get('message')}")
                    return body.get("data") or {}
                chunk = await self.reader.read(1 << 20)
                if not chunk:
                    raise BenchError(f"{action}: the server closed the connection")
                self._ready.extend(self._decoder.feed(chunk))

    async def login(self, username: str, password: str) -> dict[str, Any]:
        data = await self.call("login", username=username, password=password)
        self.token = data["auth_token"]
        return data

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


# --- the pool of users --------------------------------------------------------------------


@dataclass
class Member:
    """One logged-in user and the conversations they are a member of."""

    name: str
    client: Client | RawClient
    conversations: list[dict[str, Any]] = field(default_factory=list)


async def timed(call: Awaitable[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    t = time.perf_counter_ns()
    data = await call
    return (time.perf_counter_ns() - t) / 1e6, data


async def all_conversations(
    client: Client | RawClient, limit: int
) -> tuple[list[dict[str, Any]], list[float]]:
    """Every conversation of the user, paging with before/before_id; and each page's ms."""
    out: list[dict[str, Any]] = []
    pages: list[float] = []
    cursor: dict[str, Any] = {}
    while True:
        ms, data = await timed(client.call("conversations", limit=limit, **cursor))
        pages.append(ms)
        rows = data["conversations"]
        out.extend(rows)
        if not data["has_more"] or not rows:
            return out, pages
        last = rows[-1]
        cursor = {"before": last["last_activity"], "before_id": last["conversation_id"]}


# --- the kinds of request -----------------------------------------------------------------


async def run_conversations(
    hub: Member, requests: int, walks: int, window: Callable[[], Window]
) -> list[Kind]:
    first = Kind("conversations-first", f"hub's first page of {CONVERSATIONS_PAGE}")
    for _ in range(max(1, requests // 10)):
        await hub.client.call("conversations", limit=CONVERSATIONS_PAGE)
    with window() as w:
        for _ in range(requests):
            ms, data = await timed(hub.client.call("conversations", limit=CONVERSATIONS_PAGE))
            first.add(ms)
    first.server = w.figures(requests)
    first.notes["rows_per_page"] = len(data["conversations"])

    walk = Kind("conversations-walk", f"hub's every page of {CONVERSATIONS_PAGE}, walking")
    totals: list[float] = []
    rows = 0
    await all_conversations(hub.client, CONVERSATIONS_PAGE)  # warm-up
    with window() as w:
        for _ in range(walks):
            found, pages = await all_conversations(hub.client, CONVERSATIONS_PAGE)
            rows = len(found)
            for ms in pages:
                walk.add(ms)
            totals.append(sum(pages))
    walk.server = w.figures(len(walk.ms))
    walk.notes["walks"] = walks
    walk.notes["conversations"] = rows
    walk.notes["pages_per_walk"] = len(walk.ms) // max(1, walks)
    walk.notes["walk_ms"] = summary(totals)
    return [first, walk]


def pick_conversation(rng: random.Random, pool: list[Member]) -> tuple[Member, dict[str, Any]]:
    """A pool member's conversation, weighted by its last_seq (a random message's)."""
    choices = [(m, c) for m in pool for c in m.conversations if c["last_seq"] > 0]
    weights = [c["last_seq"] for _, c in choices]
    return rng.choices(choices, weights=weights)[0]


async def run_history(
    pool: list[Member], requests: int, pages: int, seed: int, window: Callable[[], Window]
) -> Kind:
    rng = random.Random(seed)
    kind = Kind("history", f"history pages of {HISTORY_PAGE}, walks of up to {pages} back")
    sizes: list[int] = []

    async def walk(budget: int, record: bool) -> int:
        member, conv = pick_conversation(rng, pool)
        data: dict[str, Any] = {"conversation_id": conv["conversation_id"], "limit": HISTORY_PAGE}
        if rng.random() >= 0.25:
            data["before_seq"] = rng.randint(1, conv["last_seq"] + 1)
        done = 0
        for _ in range(min(pages, budget)):
            ms, out = await timed(member.client.call("history", **data))
            done += 1
            if record:
                kind.add(ms, "hub" if member is pool[0] else "others")
                sizes.append(len(out["messages"]))
            if not out["has_more"] or not out["messages"]:
                break
            data["before_seq"] = out["messages"][0]["seq"]
        return done

    left = max(1, requests // 10)
    while left > 0:
        left -= await walk(left, record=False)
    walks = 0
    with window() as w:
        left = requests
        while left > 0:
            left -= await walk(left, record=True)
            walks += 1
    kind.server = w.figures(len(kind.ms))
    kind.notes["walks"] = walks
    kind.notes["messages_per_page"] = round(statistics.fmean(sizes), 1) if sizes else 0
    kind.notes["full_pages"] = sum(1 for n in sizes if n == HISTORY_PAGE)
    return kind


def search_words(manifest: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """Query words of each tier, with the number of messages holding each."""
    words = manifest["words"]
    text_messages = manifest["messages"]["types"].get("text", manifest["messages"]["total"])
    long = [(w, n) for w, n in words.items() if len(w) >= 3 and "'" not in w]
    long.sort(key=lambda x: -x[1])
    target = text_messages / 1000  # about one message in a thousand
    medium = sorted(long, key=lambda x: abs(x[1] - target))[:6]
    return {
        "search-common": long[:6],
        "search-medium": sorted(medium, key=lambda x: -x[1]),
        "search-rare": sorted(manifest["markers"].items(), key=lambda x: -x[1]),
    }


async def run_search(
    pool: list[Member],
    name: str,
    words: list[str],
    requests: int,
    seed: int,
    window: Callable[[], Window],
    counts: dict[str, int] | None = None,
) -> Kind:
    rng = random.Random(seed)
    what = ", ".join(f"{w} ({counts[w]:,} msgs)" if counts else w for w in words)
    kind = Kind(name, f"search {what}")
    hits: list[int] = []
    by_query: dict[str, list[float]] = {}
    more = 0

    async def one(i: int, record: bool) -> None:
        nonlocal more
        member = pool[0] if i % 2 == 0 else rng.choice(pool[1:])
        query = rng.choice(words)
        ms, out = await timed(member.client.call("search", query=query, limit=SEARCH_LIMIT))
        if record:
            kind.add(ms, "hub" if member is pool[0] else "others")
            by_query.setdefault(query, []).append(ms)
            hits.append(len(out["results"]))
            more += bool(out["has_more"])
            folded = query.casefold()
            bad = [r for r in out["results"] if folded not in r["text"].casefold()]
            if bad:
                raise BenchError(f"search {query!r} returned a message without it: {bad[0]}")

    for i in range(max(1, requests // 10)):
        await one(i, record=False)
    with window() as w:
        for i in range(requests):
            await one(i, record=True)
    kind.server = w.figures(requests)
    kind.notes["results_per_request"] = round(statistics.fmean(hits), 1) if hits else 0
    kind.notes["full_pages"] = more
    kind.notes["by_query"] = {
        q: {"count": len(ms), "p50": summary(ms)["p50"], "p99": summary(ms)["p99"]}
        for q, ms in by_query.items()
    }
    return kind


# --- the run ------------------------------------------------------------------------------


@contextlib.contextmanager
def database(args: argparse.Namespace, tmp: Path) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(url, manifest, generated now) of the database the run reads."""
    gen = {
        "users": args.users,
        "groups": args.groups,
        "messages": args.messages,
        "seed": args.seed,
        "workdir": tmp,
    }
    if args.database_url:
        path = args.manifest or gendb.default_manifest(args.database_url)
        if path is None or not path.exists():
            raise BenchError(f"no manifest for {args.database_url} (--manifest FILE)")
        yield args.database_url, json.loads(path.read_text()), False
    elif args.postgres:
        with temporary_database(args.postgres, prefix="p2sp_read_") as url:
            yield url, gendb.generate(url, **gen), True
    else:
        db = args.keep_db or tmp / "read.db"
        url = f"sqlite+aiosqlite:///{db.resolve()}"
        path = gendb.default_manifest(url)
        assert path is not None
        if args.keep_db and path.exists():
            yield url, json.loads(path.read_text()), False
        else:
            if db.exists():
                raise BenchError(f"{db} exists without its manifest: remove it or name another")
            yield url, gendb.generate(url, **gen), True


def pool_names(manifest: dict[str, Any], seed: int, size: int) -> list[str]:
    """The hub, then ``size`` other users picked with ``seed``."""
    rng = random.Random(seed)
    n_users = manifest["users"]["count"]
    others = rng.sample(range(2, n_users + 1), min(size, n_users - 1))
    return [manifest["hub"]["username"], *(f"user{i:04d}" for i in others)]


async def measure(
    args: argparse.Namespace,
    server: P2spServer,
    manifest: dict[str, Any],
    postgres: bool,
    report: dict[str, Any],
) -> None:
    names = pool_names(manifest, args.seed, args.pool)
    pool: list[Member] = []
    t = time.monotonic()
    try:
        for name in names:
            client: Client | RawClient
            if args.client == "sdk":
                client = Client(
                    server.host,
                    server.port,
                    auto_ack=False,
                    request_timeout=args.request_timeout,
                    ping_interval=3600,
                )
            else:
                client = RawClient(server.host, server.port, args.request_timeout)
            await client.connect()
            pool.append(Member(name, client))
            await client.login(name, manifest["password"])
        for m in pool:
            m.conversations, _ = await all_conversations(m.client, 200)
        report["setup"] = {
            "users": names,
            "conversations": {m.name: len(m.conversations) for m in pool},
            "seconds": round(time.monotonic() - t, 1),
        }
        print(
            f"logged in {len(pool)} users ({names[0]} with {len(pool[0].conversations):,} "
            f"conversations) in {time.monotonic() - t:.1f} s",
            flush=True,
        )

        def window() -> Window:
            return Window(server, postgres)

        kinds: list[Kind] = []
        only = set(args.only or [])

        def wanted(name: str) -> bool:
            return not only or any(name.startswith(o) for o in only)

        def done(k: Kind) -> None:
            kinds.append(k)
            print(render_kind(k.name, k.report()), flush=True)

        if wanted("conversations"):
            for k in await run_conversations(pool[0], args.requests, args.walks, window):
                done(k)
        if wanted("history"):
            done(await run_history(pool, args.requests, args.pages, args.seed + 1, window))
        tiers = search_words(manifest)
        report["search_words"] = {k: dict(v) for k, v in tiers.items()}
        for i, (name, words) in enumerate(tiers.items()):
            if wanted(name):
                counts = dict(words)
                k = await run_search(
                    pool, name, list(counts), args.requests, args.seed + 10 + i, window, counts
                )
                done(k)
        for i, (name, queries) in enumerate(SHORT_QUERIES.items()):
            if wanted(f"search-{name}"):
                k = await run_search(
                    pool, f"search-{name}", queries, args.requests, args.seed + 20 + i, window
                )
                done(k)
        report["kinds"] = {k.name: k.report() for k in kinds}
    finally:
        for m in pool:
            with contextlib.suppress(Exception):
                await m.client.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="p2sp-read-"))
    report: dict[str, Any] = {
        "mode": "read",
        "command": command_line(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_server_changes": bool(git("status", "--porcelain", "--", "p2sp")),
        "machine": machine(),
        "client": args.client,
    }
    try:
        with database(args, tmp) as (url, manifest, generated):
            postgres = not url.startswith("sqlite")
            report["database"] = {
                "kind": "PostgreSQL" if postgres else "SQLite",
                "url": manifest.get("database", url),
                "generated_now": generated,
                "generated_in_s": manifest.get("generated_in_s"),
                "manifest": {k: v for k, v in manifest.items() if k not in ("words", "password")},
            }
            if not postgres:
                db_file = Path(gendb.sqlite_path(url))
                report["database"]["file_mb"] = round(db_file.stat().st_size / 2**20, 1)
            report["pool"] = pool_names(manifest, args.seed, args.pool)
            if args.explain_only:
                report["plans"] = explain(url, manifest, report)
                print(render_plans(report["plans"]), flush=True)
                return report
            source = None
            if args.server_rev:
                rev = git("rev-parse", "--short", args.server_rev)
                if not rev:
                    raise BenchError(f"--server-rev {args.server_rev}: no such commit")
                source = tmp / f"server-{rev}"
                export_source(ROOT, rev, source)
                report["commit"], report["uncommitted_server_changes"] = rev, False
                report["server_source"] = f"git archive {rev} (clean export)"
            else:
                report["server_source"] = "working tree"
            server = P2spServer(tmp, url, dict(SERVER_ENV), source)
            t = time.monotonic()
            server.start(timeout=120)
            report["server"] = {"env": SERVER_ENV, "start_s": round(time.monotonic() - t, 2)}
            try:
                asyncio.run(measure(args, server, manifest, postgres, report))
            except (BenchError, ServerError, RequestError, OSError) as exc:
                raise BenchError(
                    f"{type(exc).__name__}: {exc}\n--- server log ---\n{server.log_tail()}"
                ) from exc
            finally:
                report["server_exit_code"] = server.stop()
                report["server_log"] = server.log_findings()
                if report["server_log"]["tracebacks"]:
                    report["server_traceback"] = server.first_traceback()
            if args.explain:
                report["plans"] = explain(url, manifest, report)
                print(render_plans(report["plans"]), flush=True)
    finally:
        if args.keep:
            report["workdir"] = str(tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report["targets"] = targets(report)
    return report


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, what, stat, limit in TARGETS:
        kind = report.get("kinds", {}).get(name)
        if kind is None:
            continue
        value = kind["latency_ms"].get(stat)
        out.append(
            {
                "kind": name,
                "target": f"{what}: {stat} <= {limit:g} ms",
                "measured_ms": value,
                "met": value is not None and value <= limit,
            }
        )
    return out


# --- the server's statements and their plans --------------------------------------------


class _NoRows:
    def all(self) -> list[Any]:
        return []

    def first(self) -> None:
        return None

    def scalar_one_or_none(self) -> None:
        return None

    def __iter__(self) -> Iterator[Any]:
        return iter(())


class _Capture:
    """Stands in for ``p2sp.server.db.engine.Database``: the repositories build
    their statements as the server does and hand them here, where they are kept."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.reader = self
        self.writer = self
        self.statements: list[Any] = []

    def connect(self) -> _Capture:
        return self

    async def __aenter__(self) -> _Capture:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def execute(self, stmt: Any, *args: Any, **kwargs: Any) -> _NoRows:
        if args and isinstance(stmt, TextClause):
            stmt = stmt.bindparams(**args[0])  # a text statement's values come separately
        self.statements.append(stmt)
        return _NoRows()


def _on_database(url: str, read: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``read(conn, *args)`` run on a connection of its own to ``url``."""
    from p2sp.server.db.engine import Database

    async def run(conn: Any, *args: Any) -> Any:
        db = Database.from_url(url)
        try:
            async with db.reader.connect() as real:
                return await read(real, *args)
        finally:
            await db.dispose()

    return run


def server_statements(
    dialect: str,
    calls: list[tuple[str, Callable[[Any, Any], Awaitable[Any]]]],
    url: str,
) -> list[dict[str, Any]]:
    """What each call to the server's repositories (``HistoryRepository``,
    ``SearchRepository``) executes: ``label``, ``sql`` with the values inlined
    and, for PostgreSQL, ``prepared`` (``$n`` placeholders, as asyncpg sends
    it) with its ``params`` and the ``settings`` (``SET LOCAL ...``) the call
    made before it in its transaction. The search's own read of the caller's
    conversations and its planner estimate (``SearchRepository._scope`` and
    ``_common``) are made in the database at ``url``, as the capture has no
    rows: the statements kept are those the server runs for what it learns.
    """
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

    from p2sp.server.repository.history import HistoryRepository
    from p2sp.server.repository.search import SearchRepository

    compiler = sqlite.dialect() if dialect == "sqlite" else pg_asyncpg.dialect()
    out = []
    for label, call in calls:
        db = _Capture(dialect)
        search = SearchRepository(db)  # type: ignore[arg-type]

        for name in ("_scope", "_common"):  # their reads go to the real database
            setattr(search, name, _on_database(url, getattr(SearchRepository, name)))
        asyncio.run(call(HistoryRepository(db), search))  # type: ignore[arg-type]
        settings = [str(st) for st in db.statements if str(st).startswith("SET ")]
        kept = [st for st in db.statements if not str(st).startswith(("SET ", "EXPLAIN "))]
        for i, stmt in enumerate(kept):
            found: dict[str, Any] = {
                "label": label if len(kept) == 1 else f"{label} [{i + 1}]",
                "sql": str(stmt.compile(dialect=compiler, compile_kwargs={"literal_binds": True})),
            }
            if dialect != "sqlite":
                c = stmt.compile(dialect=compiler, compile_kwargs={"render_postcompile": True})
                found["prepared"] = str(c)
                found["params"] = [c.params[name] for name in c.positiontup or ()]
                found["settings"] = settings
            out.append(found)
    return out


def plan_inputs(url: str, manifest: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """Ids and values for the statements: the hub's largest conversation, a
    conversation cursor 500 rows down the hub's list (or half way), a pool
    user's id."""
    sql_big = (
        "SELECT c.id, c.last_seq FROM conversations c JOIN conversation_members m "
        "ON m.conversation_id = c.id WHERE m.user_id = {hub} ORDER BY c.last_seq DESC LIMIT 1"
    )
    sql_cursor = (
        "SELECT coalesce(c.last_activity, 0), c.id FROM conversations c "
        "JOIN conversation_members m ON m.conversation_id = c.id WHERE m.user_id = {hub} "
        "ORDER BY coalesce(c.last_activity, 0) DESC, c.id DESC LIMIT 1 OFFSET {offset}"
    )
    sql_direct = (
        "SELECT c.id, c.last_seq FROM conversations c JOIN conversation_members m "
        "ON m.conversation_id = c.id WHERE m.user_id = {hub} AND c.kind = 'direct' "
        "ORDER BY c.last_seq DESC LIMIT 1"
    )
    hub = manifest["hub"]["user_id"]
    first_user = manifest["users"]["first_id"]
    pool = report["pool"]
    other = first_user + int(pool[1][4:]) - 1 if len(pool) > 1 else first_user + 1
    offset = min(500, manifest["hub"]["conversations"] // 2)
    queries = [q.format(hub=hub, offset=offset) for q in (sql_big, sql_cursor, sql_direct)]
    rows = fetch(url, queries)
    (big,), (cursor,), (direct,) = rows
    return {
        "hub": hub,
        "other": other,
        "big": {"conversation_id": big[0], "last_seq": big[1]},
        "direct": {"conversation_id": direct[0], "last_seq": direct[1]},
        "cursor": (cursor[0], cursor[1]),
        "offset": offset,
    }


def fetch(url: str, queries: list[str]) -> list[list[tuple[Any, ...]]]:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(f"file:{gendb.sqlite_path(url)}?mode=ro", uri=True)
        try:
            return [conn.execute(q).fetchall() for q in queries]
        finally:
            conn.close()

    async def pg() -> list[list[tuple[Any, ...]]]:
        import asyncpg

        conn = await asyncpg.connect(gendb.asyncpg_dsn(url))
        try:
            return [[tuple(r) for r in await conn.fetch(q)] for q in queries]
        finally:
            await conn.close()

    return asyncio.run(pg())


def explain(url: str, manifest: dict[str, Any], report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each statement the server runs for the benchmark's requests: its plan
    (SQLite: ``EXPLAIN QUERY PLAN``; PostgreSQL: ``EXPLAIN (ANALYZE, BUFFERS)``)
    and its time run directly in the database (median of 5, ms)."""
    v = plan_inputs(url, manifest, report)
    hub, other, big, direct = v["hub"], v["other"], v["big"], v["direct"]
    words = report.get("search_words") or search_words(manifest)
    common, medium, rare = (
        next(iter(dict(words[k]))) for k in ("search-common", "search-medium", "search-rare")
    )
    middle = big["last_seq"] // 2

    def search(user: int, query: str) -> Callable[[Any, Any], Awaitable[Any]]:
        return lambda h, s: s.search(
            user, query, conversation_id=None, sender_id=None, before_id=None, limit=SEARCH_LIMIT
        )

    calls: list[tuple[str, Callable[[Any, Any], Awaitable[Any]]]] = [
        ("conversations: hub, first page", lambda h, s: h.conversation_list(hub, 51, None)),
        (
            f"conversations: hub, page after {v['offset']}",
            lambda h, s: h.conversation_list(hub, 51, v["cursor"]),
        ),
        (
            f"history: membership (conversation {big['conversation_id']})",
            lambda h, s: h.membership(hub, big["conversation_id"]),
        ),
        (
            f"history: page of 200 before seq {middle} of {big['last_seq']}",
            lambda h, s: h.page(
                big["conversation_id"], 1, before_seq=middle, after_seq=None, limit=HISTORY_PAGE
            ),
        ),
        (
            "history: direct chat peer's cursors",
            lambda h, s: h.cursors_of_others(direct["conversation_id"], hub),
        ),
        (f"search: hub, common {common!r}", search(hub, common)),
        (f"search: hub, medium {medium!r}", search(hub, medium)),
        (f"search: hub, rare {rare!r}", search(hub, rare)),
        (f"search: user {other}, common {common!r}", search(other, common)),
        (f"search: user {other}, rare {rare!r}", search(other, rare)),
        ("search: hub, 1 character '好'", search(hub, "好")),
        (f"search: user {other}, 2 characters 'ok'", search(other, "ok")),
    ]
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    statements = server_statements(dialect, calls, url)
    if dialect == "sqlite":
        return _explain_sqlite(url, statements)
    return asyncio.run(_explain_postgres(url, statements))


def _median_ms(run: Callable[[], Any], times: int = 5) -> float:
    found = []
    for _ in range(times):
        t = time.perf_counter()
        run()
        found.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(found), 2)


def _explain_sqlite(url: str, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{gendb.sqlite_path(url)}?mode=ro", uri=True)
    out = []
    try:
        for st in statements:
            sql = st["sql"]
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            depth: dict[int, int] = {0: 0}
            plan = []
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, 0) + 1
                plan.append("  " * (depth[node] - 1) + detail)
            ms = _median_ms(lambda sql=sql: conn.execute(sql).fetchall())
            out.append({"label": st["label"], "sql": sql, "plan": plan, "ms": ms})
    finally:
        conn.close()
    return out


#: Executions of one prepared statement timed as the server's driver runs
#: them: PostgreSQL plans the first five for their values (custom plans) and
#: may switch to one plan for any values (generic) from the sixth on.
PREPARED_RUNS = 8


def _literal(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "NULL"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + "]::integer[]"
    return "'" + str(value).replace("'", "''") + "'"


async def _explain_postgres(url: str, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Custom plan (values inlined, ``EXPLAIN (ANALYZE, BUFFERS)``), the generic
    plan of the prepared statement (``plan_cache_mode = force_generic_plan``,
    ``EXPLAIN ANALYZE EXECUTE``) when it differs in time, and the prepared
    statement run ``PREPARED_RUNS`` times in a row, as the server runs it."""
    import asyncpg

    conn = await asyncpg.connect(gendb.asyncpg_dsn(url))
    out = []
    try:
        for n, st in enumerate(statements):
            sql = st["sql"]
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            found = []
            for _ in range(5):
                t = time.perf_counter()
                await conn.fetch(sql)
                found.append((time.perf_counter() - t) * 1000)
            item: dict[str, Any] = {
                "label": st["label"],
                "sql": sql,
                "plan": [r[0] for r in rows],
                "ms": round(statistics.median(found), 2),
            }
            prepared = await conn.prepare(st["prepared"])
            runs = []
            for _ in range(PREPARED_RUNS):
                t = time.perf_counter()
                async with conn.transaction():  # as the server: its settings, then the statement
                    for setting in st["settings"]:
                        await conn.execute(setting)
                    await prepared.fetch(*st["params"])
                runs.append(round((time.perf_counter() - t) * 1000, 2))
            item["prepared_runs_ms"] = runs
            name = f"p2sp_read_{n}"
            await conn.execute(f"PREPARE {name} AS {st['prepared']}")
            args = ", ".join(_literal(v) for v in st["params"])
            async with conn.transaction():
                await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                generic = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE {name}({args})")
            await conn.execute(f"DEALLOCATE {name}")
            lines = [r[0] for r in generic]
            item["generic_ms"] = next(
                (
                    float(x.split(":")[1].split()[0])
                    for x in lines
                    if x.startswith("Execution Time")
                ),
                None,
            )
            if item["generic_ms"] is not None and item["generic_ms"] > 2 * item["ms"] + 5:
                item["generic_plan"] = lines
            out.append(item)
    finally:
        await conn.close()
    return out


def render_plans(plans: list[dict[str, Any]]) -> str:
    lines = ["", "query plans (statements built by the server's repositories, values inlined):"]
    for p in plans:
        lines.append(f"--- {p['label']}: {p['ms']} ms in the database")
        if "prepared_runs_ms" in p:
            lines.append(
                f"    prepared, {PREPARED_RUNS} runs in a row (as the server runs it): "
                f"{p['prepared_runs_ms']} ms; generic plan {p['generic_ms']} ms"
            )
        lines.extend(f"    {line}" for line in p["plan"])
        if "generic_plan" in p:
            lines.append("    generic plan (what the prepared statement switches to):")
            lines.extend(f"      {line}" for line in p["generic_plan"])
    return "\n".join(lines)


# --- the report ---------------------------------------------------------------------------


def render_kind(name: str, k: dict[str, Any]) -> str:
    lat = k["latency_ms"]
    s = k["server"]
    lines = [
        f"{name:<20} n={lat['count']:<5} p50 {lat['p50']:8.2f}  p90 {lat['p90']:8.2f}  "
        f"p99 {lat['p99']:8.2f}  max {lat['max']:8.2f} ms   {k['what']}"
    ]
    for who, sub in k.get("by_user", {}).items():
        lines.append(
            f"{'  ' + who:<20} n={sub['count']:<5} p50 {sub['p50']:8.2f}  p90 {sub['p90']:8.2f}  "
            f"p99 {sub['p99']:8.2f}  max {sub['max']:8.2f} ms"
        )
    extra = {
        key: v for key, v in k.items() if key not in ("what", "latency_ms", "by_user", "server")
    }
    server = (
        f"server {s['cpu_ms_per_request']} ms CPU/request ({s['cpu_share']:.0%} of a core), "
        f"RSS {s['rss_mb']} MB (peak {s['peak_rss_mb']}); "
        f"client {s['client_cpu_ms_per_request']} ms CPU/request; "
        f"other processes {s['other_processes_cpu_share']:.0%} of a core"
    )
    if "postgres_cpu_ms_per_request" in s:
        server += f"; postgres processes {s['postgres_cpu_ms_per_request']} ms CPU/request"
    lines.append(f"{'':<20} {server}")
    if extra:
        lines.append(f"{'':<20} {json.dumps(extra, ensure_ascii=False)}")
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    db = report["database"]
    m = db["manifest"]
    lines = [
        f"read benchmark on {db['kind']} ({db['url']}), {report['date']}",
        f"server     : {report['server_source']} at {report['commit']}"
        + (" with uncommitted changes in p2sp/" if report["uncommitted_server_changes"] else ""),
        f"database   : {m['messages']['total']:,} messages, {m['users']['count']:,} users, "
        f"{m['conversations']['direct']:,} direct chats, {m['conversations']['group']} groups; "
        f"hub {m['hub']['username']} in {m['hub']['conversations']:,} conversations"
        + (f"; file {db['file_mb']} MB" if "file_mb" in db else "")
        + (f"; generated in {db['generated_in_s']} s" if db.get("generated_in_s") else ""),
        "client     : "
        + (
            "p2sp.client.Client (the SDK), one request at a time"
            if report["client"] == "sdk"
            else "raw frames (p2sp.common framing, msgspec decoding), one request at a time"
        ),
        f"machine    : {report['machine']['cpus']} CPUs, load before "
        f"{report['machine']['loadavg_before']}, calibration "
        f"{report['machine']['calibration_ms']} ms",
        "",
    ]
    for name, k in report.get("kinds", {}).items():
        lines.append(render_kind(name, k))
    log = report.get("server_log", {})
    lines.append("")
    lines.append(
        f"server log : {log.get('warnings', 0)} warnings, {log.get('errors', 0)} errors, "
        f"{log.get('tracebacks', 0)} tracebacks; exit code {report.get('server_exit_code')}"
    )
    for t in report.get("targets", []):
        mark = "met" if t["met"] else "NOT met"
        lines.append(f"target     : {t['target']}: {t['measured_ms']} ms - {mark}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench read",
        description="Latency of conversations, history and search on a large generated history.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="a database generated before (python -m bench gendb)")
    where.add_argument(
        "--postgres",
        nargs="?",
        const=PG_SERVER,
        metavar="SERVER_URL",
        help=f"generate into a fresh database on this PostgreSQL server (default {PG_SERVER}), "
        "dropped afterwards",
    )
    where.add_argument(
        "--keep-db", type=Path, metavar="FILE", help="SQLite file to generate (or reuse) and keep"
    )
    p.add_argument("--manifest", type=Path, help="the manifest of --database-url")
    p.add_argument("--messages", type=int, default=1_000_000, help="when generating")
    p.add_argument("--users", type=int, default=1000, help="when generating")
    p.add_argument("--groups", type=int, default=50, help="when generating")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--requests", type=int, default=300, help="timed requests per kind")
    p.add_argument("--walks", type=int, default=15, help="walks through the hub's conversations")
    p.add_argument("--pages", type=int, default=5, help="history pages per walk back")
    p.add_argument("--pool", type=int, default=8, help="users besides the hub")
    p.add_argument("--request-timeout", type=float, default=120.0)
    p.add_argument(
        "--client",
        choices=("raw", "sdk"),
        default="raw",
        help="raw: frames and msgspec only (the server's latency); sdk: p2sp.client.Client",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="KIND",
        help="only kinds starting with this (conversations, history, search-common, ...)",
    )
    p.add_argument("--explain", action="store_true", help="query plans of the server's statements")
    p.add_argument(
        "--explain-only",
        action="store_true",
        help="only the query plans (no server, no requests): a database generated before",
    )
    p.add_argument(
        "--server-rev", help="run the server from this commit (clean export), not the tree"
    )
    p.add_argument("--json", type=Path, help="write the whole report here")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run(args)
    except (BenchError, ServerError) as exc:
        print(f"read benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if not args.explain_only:
        print()
        print(render(report), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
