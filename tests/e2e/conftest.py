"""End-to-end fixtures: the real server as a subprocess, real sockets, real clients.

Every e2e test runs once per database (``database_url`` is parametrized over
SQLite and PostgreSQL). The server listens on port 0 and the fixture reads the
bound port from its log, so parallel runs never race for a port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from p2sp.client.client import Client
from p2sp.common.message import decode_json, request_frame
from p2sp.common.protocol import FrameDecoder

LISTENING = re.compile(r"listening on (\S+):(\d+)")
#: scrypt at a cost that keeps a test's logins fast; production default is 2**14.
TEST_ENV = {"P2SP_SCRYPT_N": "1024", "P2SP_LOG_LEVEL": "INFO"}
PASSWORD = "correct horse"


class ServerProcess:
    """``python -m p2sp.server`` on a free port, with its log in a file."""

    def __init__(self, database_url: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.env = {**TEST_ENV, **(env or {})}
        self.host = "127.0.0.1"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"
        self._log_offset = 0

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("P2SP_")}
        env.update(self.env)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "p2sp.server",
                "--host",
                self.host,
                "--port",
                "0",
                "--database-url",
                self.database_url,
            ],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log())
            if match:
                self.port = int(match.group(2))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """This run's log (since the last start)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(self._log_offset)
            return f.read().decode("utf-8", "replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the server and wait; returns its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kwargs: Any) -> Client:
        return Client(self.host, self.port, **kwargs)


@pytest.fixture
def server_factory(database_url: str, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers on the test's database with extra settings; all stopped after."""
    started: list[ServerProcess] = []

    def make(**env: Any) -> ServerProcess:
        proc = ServerProcess(
            database_url, tmp_path, {f"P2SP_{k.upper()}": str(v) for k, v in env.items()}
        )
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.kill()
        if "Traceback" in proc.log():
            # A server fault surfaced only in the log still fails the test.
            pytest.fail(f"server logged a traceback:\n{proc.log()}")


@pytest.fixture
def server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
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
