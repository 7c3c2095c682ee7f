"""End-to-end fixtures: the real server as a subprocess, real sockets, real clients.

Every e2e test runs once per database (``database_url`` is parametrized over
SQLite and PostgreSQL). Servers are started by ``p2sp.launcher``: on port 0
(the bound port is read from the log, so parallel runs never race for a
port), each with its own log file in the test's ``tmp_path``. Any number of
servers can share the test's database (``server_factory()`` again).

A test fails when a server it started logged a traceback it did not declare.
A test that causes a server fault on purpose declares it, for every server
of the test with ``@pytest.mark.expect_traceback("SomeError", once=True)``
or ``server_factory.expect_traceback(...)``, for one server with
``server.expect_traceback(...)``; ``once`` also fails the test unless the
log shows that fault exactly once (see ``p2sp.launcher.ExpectedTraceback``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from p2sp import launcher
from p2sp.client.client import Client
from p2sp.common.message import decode_json, request_frame
from p2sp.common.protocol import FrameDecoder
from p2sp.launcher import ExpectedTraceback

LISTENING = launcher.LISTENING
#: scrypt at a cost that keeps a test's logins fast; production default is 2**14.
#: Registration is limited per address (default 20 per 10 min); every test client
#: comes from 127.0.0.1, so the tests raise it and test the limit on its own.
TEST_ENV = {"P2SP_SCRYPT_N": "1024", "P2SP_LOG_LEVEL": "INFO", "P2SP_REG_MAX_PER_IP": "100000"}
PASSWORD = "correct horse"


class ServerProcess(launcher.ServerProcess):
    """``p2sp.launcher.ServerProcess`` with the tests' settings (``TEST_ENV``)
    under those given: ``python -m p2sp.server`` on a free port, its log in
    ``WORKDIR/NAME.log``."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(database_url, workdir, {**TEST_ENV, **(env or {})}, **kwargs)


class ServerFactory:
    """``server_factory(**settings)`` starts a server on the test's database
    (``max_frame=4096`` sets ``P2SP_MAX_FRAME``); call it again for more
    servers on the same database (``database_url=`` for another one). Each
    gets its own log: ``server.log``, ``server-2.log``... (or ``name=``)."""

    def __init__(
        self, database_url: str, workdir: Path, expected: Iterable[ExpectedTraceback] = ()
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.started: list[ServerProcess] = []
        #: faults declared for every server of the test (markers, ``expect_traceback``)
        self.expected: list[ExpectedTraceback] = list(expected)

    def __call__(
        self, *, name: str | None = None, database_url: str | None = None, **settings: Any
    ) -> ServerProcess:
        name = name or ("server" if not self.started else f"server-{len(self.started) + 1}")
        if any(s.name == name for s in self.started):
            raise ValueError(f"a server named {name!r} was started already")
        proc = ServerProcess(
            database_url or self.database_url,
            self.workdir,
            launcher.settings_env(**settings),
            name=name,
        )
        self.started.append(proc)
        return proc.start()

    def expect_traceback(self, pattern: str, once: bool = False) -> None:
        """Declare a fault any server of the test logs on purpose."""
        self.expected.append(ExpectedTraceback(pattern, once))

    def finish(self) -> list[str]:
        """Kill every server; what their logs show that the test did not declare."""
        for proc in self.started:
            proc.kill()
        return launcher.traceback_problems(self.started, self.expected)


def _declared(node: pytest.Item) -> list[ExpectedTraceback]:
    """``@pytest.mark.expect_traceback(PATTERN, ..., once=False)`` on the test."""
    return [
        ExpectedTraceback(pattern, bool(mark.kwargs.get("once", False)))
        for mark in node.iter_markers("expect_traceback")
        for pattern in mark.args
    ]


@pytest.fixture
def server_factory(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ServerFactory]:
    """Start servers on the test's database with extra settings; all killed after.

    Teardown fails the test if a server's log (every run of it) shows a
    traceback the test did not declare, or a ``once`` fault not exactly once.
    """
    factory = ServerFactory(database_url, tmp_path, _declared(request.node))
    yield factory
    problems = factory.finish()
    if problems:
        # A server fault surfaced only in the log still fails the test.
        pytest.fail("server log:\n\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    """A running server with default settings on a fresh database."""
    return server_factory()


@pytest.fixture
async def clients(server: ServerProcess) -> AsyncIterator[Callable[..., Any]]:
    """``await clients()`` -> a connected SDK client; all closed after the test."""
    made: list[Client] = []

    async def make(**kwargs: Any) -> Client:
        client = server.client(**kwargs)
        await client.connect()
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def user(clients: Callable[..., Any]) -> Callable[..., Any]:
    """``await user("alice")`` -> a client registered and logged in as that name."""

    async def make(name: str, password: str = PASSWORD, **kwargs: Any) -> Client:
        client = await clients(**kwargs)
        await client.reg(name, password)
        await client.login(name, password)
        return client

    return make


async def db_execute(database_url: str, statement: Any) -> list[Any] | None:
    """Run one SQL statement against a server's database, as an operator would
    (rows for a SELECT, else None), in a transaction of its own."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(statement)
            return list(result.all()) if result.returns_rows else None
    finally:
        await engine.dispose()


def table(name: str) -> Any:
    """A table of the server's schema, for ``db_execute``."""
    from p2sp.server.db.models import Base

    return Base.metadata.tables[name]


class RawConnection:
    """A plain socket that speaks bytes, for feeding the server bad input."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder(16 * 1024 * 1024)
        self.frames: list[dict[str, Any]] = []
        self._next_id = 0

    @classmethod
    async def open(cls, server: ServerProcess) -> RawConnection:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(
        self, action: str, data: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Send a well-formed request and return its response payload."""
        self._next_id += 1
        await self.send(request_frame(action, self._next_id, data, token))
        return await self.response(self._next_id)

    async def response(self, request_id: int | None, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            frame = await self.next_frame(timeout)
            if frame["type"] == "response" and frame["payload"]["id"] == request_id:
                return frame["payload"]

    async def next_frame(self, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while not self.frames:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("server closed the connection")
                self.frames.extend(decode_json(p) for p in self.decoder.feed(data))
        return self.frames.pop(0)

    async def closed_by_server(self, timeout: float = 10.0) -> bool:
        """True once the server has closed the connection (frames before it are kept)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    data = await self.reader.read(65536)
                    if not data:
                        return True
                    self.frames.extend(decode_json(p) for p in self.decoder.feed(data))
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


@pytest.fixture
async def raw(server: ServerProcess) -> AsyncIterator[Callable[..., Any]]:
    """``await raw()`` -> a RawConnection to the server; all closed after."""
    made: list[RawConnection] = []

    async def make() -> RawConnection:
        conn = await RawConnection.open(server)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        await conn.close()
