"""Start a real p2sp server process, for tests and the benchmark.

One place knows how to run ``python -m p2sp.server`` as a child process:

- ``temporary_database()``: a database for one run, a SQLite file in a
  temporary directory or a fresh database made on a PostgreSQL server (and
  dropped afterwards). Any number of servers can be started on its URL.
- ``ServerProcess``: one server on a free loopback port (``--port 0``; the
  bound port is read from its "listening on HOST:PORT" log line), with extra
  ``P2SP_*`` settings, optionally from another source tree (``source``, put
  first on ``PYTHONPATH``) and with the open-files limit raised to the hard
  limit. ``start()`` returns once it serves; ``stop()`` sends SIGTERM (or the
  signal given) and SIGKILL if it will not go; ``kill()`` is ``kill -9``.
  Its output goes to ``WORKDIR/NAME.log``; ``log()`` is what the current run
  wrote (a server can be stopped and started again), ``log(all_runs=True)``
  all of it.
- ``scan_tracebacks(text)``: every traceback in a server log, each with the
  log record that introduced it. ``ServerProcess.tracebacks()`` scans the
  server's own log; ``traceback_problems(servers, expected)`` says which of
  them nobody declared (``ExpectedTraceback``) and which declared-once fault
  was not logged exactly once.

Only the standard library, SQLAlchemy's URL parser and (for PostgreSQL)
asyncpg are used: the benchmark imports this without pytest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from p2sp.client.client import Client

__all__ = [
    "HOST",
    "LISTENING",
    "ExpectedTraceback",
    "LaunchError",
    "LoggedTraceback",
    "ServerProcess",
    "StopTimeout",
    "check_postgres",
    "check_tracebacks",
    "create_database",
    "drop_database",
    "raise_nofile",
    "scan_tracebacks",
    "settings_env",
    "sqlite_url",
    "temporary_database",
    "traceback_problems",
    "with_database",
]

#: The server's log line once its port is open (``p2sp/server/server.py``).
LISTENING = re.compile(r"listening on (\S+):(\d+)")
#: Servers started here only ever listen on loopback.
HOST = "127.0.0.1"

T = TypeVar("T")


class LaunchError(RuntimeError):
    """The server would not start (or not run from the source asked for)."""


class StopTimeout(LaunchError):
    """The server outlived its stop signal's timeout and was killed with SIGKILL."""

    def __init__(self, message: str, returncode: int | None) -> None:
        super().__init__(message)
        self.returncode = returncode


def raise_nofile() -> tuple[int, int]:
    """Raise this process's open-files soft limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _preexec_raise_nofile() -> None:  # runs in the child between fork and exec
    raise_nofile()


def settings_env(**settings: Any) -> dict[str, str]:
    """``max_frame=4096`` -> ``{"P2SP_MAX_FRAME": "4096"}``."""
    return {f"P2SP_{key.upper()}": str(value) for key, value in settings.items()}


# --- databases --------------------------------------------------------------------------


def sqlite_url(directory: Path, filename: str = "p2sp.db") -> str:
    return f"sqlite+aiosqlite:///{Path(directory) / filename}"


def with_database(url: str, name: str) -> str:
    """The same server URL naming database ``name`` (query string kept)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _asyncpg_dsn(url: str) -> str:
    """SQLAlchemy URL -> a DSN asyncpg itself accepts."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end, also from a thread whose event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _pg_execute(url: str, sql: str, timeout: float) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=timeout)
    try:
        await conn.execute(sql, timeout=timeout)
    finally:
        await conn.close()


def check_postgres(url: str, timeout: float = 10.0) -> None:
    """Connect to a PostgreSQL server and run ``SELECT 1``; raises if that fails."""
    _run(_pg_execute(url, "SELECT 1", timeout))


def create_database(server_url: str, prefix: str = "p2sp_test_", timeout: float = 30.0) -> str:
    """Make a new, empty database on the PostgreSQL server of ``server_url`` (any
    database of it: the connection is made there); returns the new database's URL."""
    name = f"{prefix}{uuid.uuid4().hex[:16]}"
    _run(_pg_execute(server_url, f'CREATE DATABASE "{name}"', timeout))
    return with_database(server_url, name)


def drop_database(database_url: str, server_url: str, timeout: float = 30.0) -> None:
    """Drop ``database_url``'s database, connected through ``server_url`` (another
    database on the same server), closing whatever connections it still has."""
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    _run(_pg_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', timeout))


@contextlib.contextmanager
def temporary_database(
    postgres_url: str | None = None, directory: Path | None = None, prefix: str = "p2sp_test_"
) -> Iterator[str]:
    """The URL of a new, empty database, removed on exit.

    With ``postgres_url``: a fresh database on that PostgreSQL server, dropped
    afterwards (``WITH (FORCE)``: servers still connected do not keep it).
    Without: a SQLite file in ``directory`` (left there; the directory is the
    caller's) or in a temporary directory of its own, deleted afterwards.
    """
    if postgres_url is not None:
        url = create_database(postgres_url, prefix)
        try:
            yield url
        finally:
            drop_database(url, postgres_url)
    elif directory is not None:
        yield sqlite_url(directory)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="p2sp-db-"))
        try:
            yield sqlite_url(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# --- tracebacks in a log ----------------------------------------------------------------

#: The start of a log record: ``%(asctime)s %(levelname)s ...`` (``p2sp/server/cli.py``).
RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d+ +[A-Z]+\b")
_HEADER = re.compile(r"(?:Exception Group )?Traceback \(most recent call last\):")
_CHAINED = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
#: Exception groups draw their sub-exceptions inside ``|`` margins, between
#: ``+----- 1 -----`` separators, and open with ``+ Exception Group Traceback``.
_GROUP_START = re.compile(r" *\+ Exception Group Traceback")
_GROUP_SEPARATOR = re.compile(r" *\+[-+]+(?: .*)?")
_GROUP_LINE = re.compile(r"( *)[|+] ?(.*)")


@dataclass(frozen=True)
class LoggedTraceback:
    """One traceback in a log, and the log record that introduced it."""

    #: the record's text (its first line and any further lines before the
    #: traceback), or "" when no record did (an uncaught exception's report)
    record: str
    #: the traceback's own lines, chained exceptions included
    text: str
    #: every exception line (``module.Type: message``) in the order printed:
    #: for a chain the cause first, the exception that escaped last
    exceptions: tuple[str, ...]
    #: 1-based line of the log where the traceback begins
    line: int
    #: the exception that escaped (the last top-level one), or "" if cut short
    exception: str = ""

    def matches(self, pattern: str) -> bool:
        """``pattern`` (a regular expression) is found in one of its exception lines."""
        regex = re.compile(pattern)
        return any(regex.search(line) for line in self.exceptions)

    def __str__(self) -> str:
        return f"{self.record}\n{self.text}" if self.record else self.text


def _exceptions(block: list[str]) -> tuple[tuple[str, ...], str]:
    """The exception lines of a traceback block, and the top-level one that escaped."""
    found: list[tuple[bool, str]] = []  # (top level?, line)
    waiting = False  # inside a section whose exception line is still to come
    top = True  # that section is not a sub-exception of a group
    in_group = False  # margins are read only once an exception group has begun
    for raw in block:
        content = raw
        if in_group or _GROUP_START.match(raw):
            if _GROUP_SEPARATOR.fullmatch(raw):
                waiting, top = True, False  # a sub-exception, with or without a traceback
                continue
            margin = _GROUP_LINE.fullmatch(raw)
            if margin:
                content, in_group = margin.group(2), True
                if _HEADER.match(content):
                    waiting, top = True, bool(_GROUP_START.match(raw))  # "+": the group itself
                    continue
        if _HEADER.match(content):
            waiting, top = True, True
        elif not content.strip() or content[0] in " \t" or content.strip() in _CHAINED:
            continue  # frames, source lines, carets, blank lines, chain sentences
        elif waiting:
            found.append((top, content.rstrip()))
            waiting = False
        # else: a further line of a multi-line exception message
    lines = tuple(line for _, line in found)
    escaped = [line for top, line in found if top]
    return lines, (escaped or [""])[-1]


def scan_tracebacks(text: str) -> list[LoggedTraceback]:
    """Every traceback in a server log, in order.

    A traceback runs from its ``Traceback (most recent call last):`` line to
    the next log record; chained exceptions ("During handling of the above
    exception" / "The above exception was the direct cause") and exception
    groups belong to it. A new top-level ``Traceback`` line that no such
    sentence introduces starts another one. The record that introduced a
    traceback is the log record just before it, with any lines that followed
    that record (a traceback right after another one, or before the first
    record, has none).
    """
    lines = text.splitlines()
    found: list[LoggedTraceback] = []
    record: list[str] = []  # the current log record's lines, until a traceback begins
    block: list[str] | None = None
    start = 0
    last_text = ""  # the previous non-blank line

    def close() -> None:
        if block is not None:
            exceptions, exception = _exceptions(block)
            found.append(
                LoggedTraceback(
                    record="\n".join(record).rstrip(),
                    text="\n".join(block).rstrip(),
                    exceptions=exceptions,
                    line=start,
                    exception=exception,
                )
            )

    for number, line in enumerate(lines, 1):
        if RECORD.match(line):
            close()
            block, record = None, [line]
        elif _HEADER.match(line) or _GROUP_START.match(line):
            top_level = not line.startswith(" ")
            if block is None:
                block, start = [line], number
            elif top_level and last_text not in _CHAINED:
                close()  # a traceback of its own, which no record introduced
                block, start, record = [line], number, []
            else:
                block.append(line)
        elif block is not None:
            block.append(line)
        elif record:
            record.append(line)
        if line.strip():
            last_text = line.strip()
    close()
    return found


@dataclass(frozen=True)
class ExpectedTraceback:
    """A server fault a test causes on purpose: tracebacks whose exception line
    matches ``pattern`` (a regular expression) are allowed; with ``once``, the
    log must show exactly one of them."""

    pattern: str
    once: bool = False


def _tally(
    tracebacks: Iterable[LoggedTraceback], expected: Sequence[Sequence[ExpectedTraceback]]
) -> tuple[list[LoggedTraceback], list[list[int]]]:
    """The tracebacks no expectation matches, and how many each one matched."""
    counts = [[0] * len(group) for group in expected]
    undeclared = []
    for tb in tracebacks:
        declared = False
        for group, group_counts in zip(expected, counts, strict=True):
            for i, exp in enumerate(group):
                if tb.matches(exp.pattern):
                    group_counts[i] += 1
                    declared = True
        if not declared:
            undeclared.append(tb)
    return undeclared, counts


def _count_problems(
    expected: Sequence[ExpectedTraceback], counts: list[int], who: str
) -> list[str]:
    return [
        f"{who}expected a traceback matching {exp.pattern!r} once, the log shows it {n} times"
        for exp, n in zip(expected, counts, strict=True)
        if exp.once and n != 1
    ]


def _undeclared(tb: LoggedTraceback, who: str) -> str:
    return f"{who}a traceback nobody declared (log line {tb.line}):\n{tb}"


def check_tracebacks(
    tracebacks: Sequence[LoggedTraceback], expected: Sequence[ExpectedTraceback] = ()
) -> list[str]:
    """What is wrong with one log's tracebacks: each one no expectation matches,
    and each ``once`` expectation not matched exactly once. Empty = all is well."""
    undeclared, (counts,) = _tally(tracebacks, [expected])
    return [_undeclared(tb, "") for tb in undeclared] + _count_problems(expected, counts, "")


def traceback_problems(
    servers: Iterable[ServerProcess], expected: Sequence[ExpectedTraceback] = ()
) -> list[str]:
    """``check_tracebacks`` over several servers' whole logs (every run).

    ``expected`` holds for all of them together (a ``once`` fault is logged
    once by one of the servers); each server's own ``expect_traceback()``
    declarations hold for its own log.
    """
    problems: list[str] = []
    shared_counts = [0] * len(expected)
    for server in servers:
        own = server.expected_tracebacks
        undeclared, (own_counts, counts) = _tally(server.tracebacks(), [own, expected])
        shared_counts = [a + b for a, b in zip(shared_counts, counts, strict=True)]
        who = f"{server.name} ({server.log_path}): "
        problems += [_undeclared(tb, who) for tb in undeclared]
        problems += _count_problems(own, own_counts, who)
    return problems + _count_problems(expected, shared_counts, "")


# --- the server process -----------------------------------------------------------------


class ServerProcess:
    """``python -m p2sp.server`` on a free loopback port, its output in a log file.

    ``database_url`` may be shared: start several on it for a cluster.
    ``env`` holds extra environment variables (``P2SP_*`` settings: see
    ``settings_env``); the caller's own ``P2SP_*`` variables are not passed
    on, so a developer's shell does not change a test. ``source`` is a
    directory holding a ``p2sp`` package to run instead of the installed one.
    ``name`` names the log file (``WORKDIR/NAME.log``): give each server
    sharing a ``workdir`` its own.
    """

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        *,
        name: str = "server",
        source: Path | None = None,
        host: str = HOST,
        port: int = 0,
        args: Sequence[str] = (),
        raise_limits: bool = True,
        python: str = sys.executable,
    ) -> None:
        self.database_url = database_url
        self.workdir = Path(workdir)
        self.env: dict[str, str] = dict(env or {})
        self.name = name
        #: a directory holding a ``p2sp`` package to run instead of the installed one
        self.source = source
        self.host = host
        #: the port to ask for (0: any free one); ``port`` is the one bound
        self.requested_port = port
        self.port = 0
        self.args = list(args)
        self.raise_limits = raise_limits
        self.python = python
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"{name}.log"
        self._log_offset = 0
        #: faults declared with ``expect_traceback`` (checked by ``traceback_problems``)
        self.expected_tracebacks: list[ExpectedTraceback] = []

    # -- starting and stopping

    def command(self) -> list[str]:
        return [
            self.python,
            "-m",
            "p2sp.server",
            "--host",
            self.host,
            "--port",
            str(self.requested_port),
            "--database-url",
            self.database_url,
            *self.args,
        ]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("P2SP_")}
        if self.source is not None:
            env["PYTHONPATH"] = str(self.source)
        env.update(self.env)
        return env

    def _check_source(self, env: dict[str, str]) -> None:
        assert self.source is not None
        check = subprocess.run(
            [self.python, "-c", "import p2sp; print(p2sp.__file__)"],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if not check.stdout.startswith(str(self.source)):
            raise LaunchError(f"the server would not run from {self.source}: {check}")

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start the server and wait until it listens; returns ``self``."""
        if self.alive():
            raise LaunchError(f"{self.name} is already running (pid {self.pid})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        if self.source is not None:
            self._check_source(env)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.port = 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_preexec_raise_nofile if self.raise_limits else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log())
            if match:
                self.port = int(match.group(2))
                return self
            if self.proc.poll() is not None:
                raise LaunchError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        self.kill()
        raise LaunchError(f"{self.name} did not start in {timeout} s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Send ``sig`` and wait; returns the exit code (None if never started).

        A server still running after ``timeout`` seconds is killed (SIGKILL)
        and ``StopTimeout`` raised.
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise StopTimeout(
                    f"{self.name} still ran {timeout} s after signal {sig}; killed",
                    self.proc.returncode,
                ) from None
        return self.proc.returncode

    def kill(self) -> None:
        """``kill -9``, at once (a crash, for fault tests; teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def __enter__(self) -> ServerProcess:
        return self if self.alive() else self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()

    def client(self, **kwargs: Any) -> Client:
        """An SDK client for this server (not connected yet)."""
        from p2sp.client.client import Client

        return Client(self.host, self.port, **kwargs)

    # -- the log

    def log(self, all_runs: bool = False) -> str:
        """What the server wrote since its last start (every run's: ``all_runs``)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(0 if all_runs else self._log_offset)
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def tracebacks(self, all_runs: bool = True) -> list[LoggedTraceback]:
        """The tracebacks in the log, of every run (only the last: ``all_runs=False``)."""
        return scan_tracebacks(self.log(all_runs=all_runs))

    def expect_traceback(self, pattern: str, once: bool = False) -> ExpectedTraceback:
        """Declare a fault this server is made to log on purpose (see ``ExpectedTraceback``)."""
        expected = ExpectedTraceback(pattern, once)
        self.expected_tracebacks.append(expected)
        return expected

    def __repr__(self) -> str:
        state = f"pid {self.pid} on {self.host}:{self.port}" if self.alive() else "stopped"
        return f"<{type(self).__name__} {self.name} {state}>"
