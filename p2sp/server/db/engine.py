"""Database engines: one writer, readers beside it, for SQLite and PostgreSQL.

SQLite allows one writer at a time per file. Rather than let several pooled
connections queue on the file lock (and fail with "database is locked" once
``busy_timeout`` runs out), every write goes through a single connection, so
writes queue in the pool instead - cheaply, and in order - and batched group
commits share one fsync. WAL mode lets the separate reader connections run
beside that writer without blocking it or being blocked.

PostgreSQL has no such limit, so ``reader`` and ``writer`` are the same engine
there; callers still pick the right one so the split costs nothing to keep.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event, text
from sqlalchemy import util as sa_util
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from p2sp.server.db import migrate

log = logging.getLogger(__name__)

#: ``synchronous`` levels that keep the "nothing acknowledged is lost" promise
#: in WAL mode: NORMAL survives a process crash (the default), FULL and EXTRA
#: also a power cut. OFF is refused on purpose.
SQLITE_SYNCHRONOUS_LEVELS: Final = ("NORMAL", "FULL", "EXTRA")

#: How long a SQLite connection waits on a lock held by another process (the
#: admin CLI, a second server) before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS: Final = 5000

#: SQLite reads run on aiosqlite threads in this one process; past a few of
#: them more connections add threads, not throughput.
SQLITE_MAX_READERS: Final = 4

#: asyncpg waits 60 s for a connection by default; a server that cannot reach
#: its database should say so sooner.
PG_CONNECT_TIMEOUT_S: Final = 10

# Runs a coroutine from sync code inside SQLAlchemy's async greenlet (the
# connect hook); the name changed in SQLAlchemy 2.1.
_await = getattr(sa_util, "await_", None) or sa_util.await_only

#: See Database.check(): time for aiosqlite's worker thread to wind down.
AIOSQLITE_SETTLE_S: Final = 0.05

_PG_SCHEMES: Final = frozenset({"postgres", "postgresql", "cockroachdb"})


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or used at startup.

    The message names the database (password hidden) and the cause, so an
    operator can act on it without a traceback.
    """


def normalize_url(url: str | URL) -> URL:
    """Turn a URL as users paste it into one the async engines accept.

    ``postgres://``, ``postgresql://`` (what hosting providers print) and
    ``cockroachdb://`` (what the original P2SP cluster used) become
    ``postgresql+asyncpg://``; a bare ``sqlite://`` becomes
    ``sqlite+aiosqlite://``. libpq's ``sslmode`` query parameter becomes
    asyncpg's ``ssl``, which takes the same values.
    """
    parsed = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend in _PG_SCHEMES:
        if backend != "postgresql" or not driver:
            parsed = parsed.set(drivername="postgresql+asyncpg")
        if parsed.drivername == "postgresql+asyncpg" and "sslmode" in parsed.query:
            query = dict(parsed.query)
            sslmode = query.pop("sslmode")
            query.setdefault("ssl", sslmode)
            parsed = parsed.set(query=query)
    elif backend == "sqlite" and not driver:
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def redact_url(url: str | URL) -> str:
    """The URL fit for logs and error messages: password replaced by ``***``."""
    return make_url(url).render_as_string(hide_password=True)


def _is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


class Database:
    """The engines of one database, plus startup chores (migrate, check).

    Built once in the composition root (``server.py``) and handed to the
    repositories, which use ``writer`` for anything that writes and ``reader``
    for plain reads.
    """

    url: str
    safe_url: str
    dialect: str
    writer: AsyncEngine
    reader: AsyncEngine

    def __init__(self, url: URL, dialect: str, writer: AsyncEngine, reader: AsyncEngine) -> None:
        self.url = url.render_as_string(hide_password=False)
        self.safe_url = redact_url(url)
        self.dialect = dialect
        self.writer = writer
        self.reader = reader
        #: A SQLite database file (not ``:memory:``, not a ``file:`` URI): the
        #: message writer may open its own plain connection to it.
        self.sqlite_file: str | None = None
        self.sqlite_synchronous = "NORMAL"

    def connect_sqlite(self) -> sqlite3.Connection:
        """A plain ``sqlite3`` connection to ``sqlite_file``, set up as the
        writer engine's are (autocommit mode: the caller says BEGIN IMMEDIATE).

        For the message writer's own thread: a whole batch then costs one
        hand-off to that thread instead of several per statement (aiosqlite).
        Both writing connections take the write lock with ``BEGIN
        IMMEDIATE`` and wait ``busy_timeout`` for each other.
        """
        if self.sqlite_file is None:
            raise ValueError(f"{self.safe_url} is not a SQLite file")
        conn = sqlite3.connect(self.sqlite_file, isolation_level=None, check_same_thread=False)
        cursor = conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            cursor.execute(f"PRAGMA synchronous={self.sqlite_synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()
        return conn

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        sqlite_synchronous: str = "NORMAL",
        pool_size: int = 10,
        echo: bool = False,
    ) -> Database:
        """Build the engines for ``url`` (no connection is made yet).

        ``sqlite_synchronous`` applies to SQLite only; ``pool_size`` is the
        PostgreSQL pool size and caps SQLite's reader pool (SQLite's writer
        always has exactly one connection).
        """
        parsed = normalize_url(url)
        backend = parsed.get_backend_name()
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        if backend == "sqlite":
            return cls._sqlite(parsed, sqlite_synchronous, pool_size, echo)
        if backend == "postgresql":
            return cls._postgresql(parsed, pool_size, echo)
        raise ValueError(
            f"unsupported database URL {redact_url(parsed)}: "
            "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST/DB"
        )

    @classmethod
    def _sqlite(cls, url: URL, synchronous: str, pool_size: int, echo: bool) -> Database:
        level = synchronous.strip().upper()
        if level not in SQLITE_SYNCHRONOUS_LEVELS:
            raise ValueError(
                f"sqlite_synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS_LEVELS)}, "
                f"not {synchronous!r}"
            )
        if _is_memory_sqlite(url):
            # Each connection to ":memory:" is a database of its own, so the
            # only way to share one is one connection for everything.
            engine = create_async_engine(
                url,
                echo=echo,
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
            )
            _install_sqlite_hooks(engine, level, wal=False, read_only=False)
            return cls(url, "sqlite", engine, engine)

        database = url.database or ""
        if not database.startswith("file:"):
            directory = Path(database).expanduser().parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"cannot create directory {directory} for database {redact_url(url)}: {exc}"
                ) from exc
        writer = create_async_engine(url, echo=echo, pool_size=1, max_overflow=0)
        _install_sqlite_hooks(writer, level, wal=True, read_only=False)
        reader = create_async_engine(
            url, echo=echo, pool_size=min(pool_size, SQLITE_MAX_READERS), max_overflow=0
        )
        _install_sqlite_hooks(reader, level, wal=True, read_only=True)
        db = cls(url, "sqlite", writer, reader)
        if not database.startswith("file:"):
            db.sqlite_file = str(Path(database).expanduser())
            db.sqlite_synchronous = level
        return db

    @classmethod
    def _postgresql(cls, url: URL, pool_size: int, echo: bool) -> Database:
        connect_args: dict[str, Any] = {}
        if "timeout" not in url.query:
            connect_args["timeout"] = PG_CONNECT_TIMEOUT_S
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
        return cls(url, "postgresql", engine, engine)

    async def upgrade(self) -> None:
        """Bring the schema to the newest migration; a no-op when it is there already."""
        await migrate.upgrade(self)

    async def check(self, timeout: float = 15.0) -> None:
        """Run ``SELECT 1`` on every engine, so a bad URL fails at startup, clearly.

        Raises :class:`DatabaseUnavailable` naming the database (without its
        password) and the underlying error.
        """
        engines = [self.writer] if self.reader is self.writer else [self.writer, self.reader]
        try:
            async with asyncio.timeout(timeout):
                for engine in engines:
                    async with engine.connect() as conn:
                        await conn.execute(text("SELECT 1"))
        except TimeoutError as exc:
            raise DatabaseUnavailable(
                f"database {self.safe_url} did not answer within {timeout:g} s"
            ) from exc
        except Exception as exc:  # any failure to connect means the same to the operator
            if self.dialect == "sqlite":
                # aiosqlite stops the worker thread of a failed connect without
                # awaiting it; let it finish before the caller exits and closes
                # the loop, or the thread dies with "Event loop is closed".
                await asyncio.sleep(AIOSQLITE_SETTLE_S)
            raise DatabaseUnavailable(
                f"cannot use database {self.safe_url}: {self._describe(exc)}"
            ) from exc

    def _describe(self, exc: BaseException) -> str:
        """The root cause of a connection failure, with the password scrubbed out."""
        cause: BaseException = getattr(exc, "orig", None) or exc
        # SQLAlchemy's asyncpg adapter wraps the driver's own, better-named error.
        cause = cause.__cause__ or cause
        message = str(cause).split("\n(Background on this error", 1)[0].strip()
        description = f"{type(cause).__name__}: {message}" if message else type(cause).__name__
        password = make_url(self.url).password
        if password:
            description = description.replace(str(password), "***")
        return description

    async def dispose(self) -> None:
        """Close every pooled connection (at shutdown, and between tests)."""
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL mode (persistent), retrying while it is being created.

    Entering WAL needs an exclusive lock, and SQLite returns "database is
    locked" at once - without its busy handler, to avoid a deadlock - when
    another connection is writing the brand-new file (two processes starting on
    a fresh database). Once the file is in WAL mode the check below skips all
    of this, so the retry only ever runs on first creation.
    """
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            mode = str(cursor.fetchone()[0]).lower()
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            log.debug("waiting to switch SQLite to WAL mode: %s", exc)
        _await(asyncio.sleep(delay))  # we run in SQLAlchemy's greenlet: yield to the loop
        delay = min(delay * 2, 0.2)
    if mode != "wal":
        log.warning("SQLite refused WAL mode (journal_mode=%s); reads will block writes", mode)


def _install_sqlite_hooks(
    engine: AsyncEngine, synchronous: str, *, wal: bool, read_only: bool
) -> None:
    """Set each new connection's pragmas and take over BEGIN from the sqlite3 module.

    Python's sqlite3 (before 3.12's ``autocommit``) never emits BEGIN before a
    SELECT or SAVEPOINT, which breaks repeatable reads and savepoints; the
    SQLAlchemy-documented fix is to switch that off and emit BEGIN ourselves.
    The writer uses ``BEGIN IMMEDIATE``: it takes the write lock up front, so a
    competing process (the admin CLI) makes it wait ``busy_timeout`` instead of
    failing mid-transaction. Readers are ``query_only`` so a stray write on
    them fails loudly instead of contending with the writer for the lock.
    """
    begin_sql = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if wal:
                _enable_wal(cursor)
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            if read_only:
                cursor.execute("PRAGMA query_only=ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin_sql)


__all__ = [
    "PG_CONNECT_TIMEOUT_S",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_MAX_READERS",
    "SQLITE_SYNCHRONOUS_LEVELS",
    "Database",
    "DatabaseUnavailable",
    "normalize_url",
    "redact_url",
]
