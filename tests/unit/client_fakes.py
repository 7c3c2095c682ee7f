"""A tiny fake p2sp server speaking real frames, for the SDK's and the terminal's unit tests.

The fake is scripted per test (``on_request``) so each test can make the
server misbehave in exactly one way: answer out of order, drop the
connection, kick, go silent, send garbage. Test modules define their own
``server`` / ``make_client`` fixtures with ``start_fake_server`` and
``client_factory``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from p2sp.client import Client, Event
from p2sp.common.message import decode_json, event_frame, response_frame
from p2sp.common.protocol import FrameDecoder

Envelope = dict[str, Any]


class FakeConn:
    """One accepted connection, as the test sees it."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.requests: list[Envelope] = []

    def respond(
        self,
        request: Envelope,
        data: dict[str, Any] | None = None,
        *,
        status: str = "ok",
        code: str = "ok",
        message: str = "",
    ) -> None:
        rid = request["payload"]["id"]
        self.writer.write(response_frame(rid, status, code, message, data))  # type: ignore[arg-type]

    def push(self, name: str, payload: dict[str, Any]) -> None:
        self.writer.write(event_frame(name, payload))

    def close(self) -> None:
        self.writer.close()


Handler = Callable[[FakeConn, Envelope], Awaitable[None]]


class FakeServer:
    """``asyncio.start_server`` on port 0 that decodes frames and asks ``on_request``."""

    def __init__(self, on_request: Handler | None = None) -> None:
        self.on_request: Handler = on_request or self.default
        self.conns: list[FakeConn] = []
        self.new_conns: asyncio.Queue[FakeConn] = asyncio.Queue()
        self.requests: list[Envelope] = []
        self.logins = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in self.conns:
                conn.writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def default(self, conn: FakeConn, req: Envelope) -> None:
        """ok to everything; login hands out tok-1, tok-2 ... one per login."""
        action = req["type"]
        data = req["payload"].get("data", {})
        if action == "login":
            self.logins += 1
            conn.respond(
                req,
                {
                    "auth_token": f"tok-{self.logins}",
                    "user_id": 7,
                    "username": data["username"],
                    "is_admin": data["username"] == "root",
                },
            )
        elif action == "reg":
            conn.respond(req, {"user_id": 7})
        elif action == "echo":
            conn.respond(req, {"echo": data, "token": req["payload"].get("auth_token")})
        elif action == "hang":
            pass  # never answers
        elif action == "drop":
            conn.close()
        else:
            conn.respond(req)

    def actions(self, name: str) -> list[Envelope]:
        return [r for r in self.requests if r["type"] == name]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = FakeConn(writer)
        self.conns.append(conn)
        self.new_conns.put_nowait(conn)
        decoder = FrameDecoder()
        try:
            while data := await reader.read(65536):
                for payload in decoder.feed(data):
                    envelope = decode_json(payload)
                    conn.requests.append(envelope)
                    self.requests.append(envelope)
                    await self.on_request(conn, envelope)
        except ConnectionError:
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def running_server() -> AsyncIterator[FakeServer]:
    """A started ``FakeServer``, stopped afterwards (the ``server`` fixtures)."""
    srv = FakeServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@contextlib.asynccontextmanager
async def client_factory(server: FakeServer) -> AsyncIterator[Callable[..., Client]]:
    """``make(**options)``: a Client of ``server`` with quick retries, closed afterwards."""
    clients: list[Client] = []

    def make(**options: Any) -> Client:
        options.setdefault("reconnect_delay", 0.01)
        options.setdefault("reconnect_max_delay", 0.05)
        options.setdefault("request_timeout", 2.0)
        client = Client("127.0.0.1", server.port, **options)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.close()


async def types_until(client: Client, last: str, timeout: float = 3.0) -> list[Event]:
    """Every event up to and including the first of type ``last``."""
    seen: list[Event] = []
    async with asyncio.timeout(timeout):
        async for event in client.events():
            seen.append(event)
            if event.type == last:
                return seen
    raise AssertionError(f"events ended before {last!r}: {[e.type for e in seen]}")


# --- requests -------------------------------------------------------------


def msg(conv: int, seq: int, **extra: Any) -> dict[str, Any]:
    """A ``message`` event payload, as the server sends it."""
    return {
        "conversation_id": conv,
        "seq": seq,
        "message_id": conv * 1000 + seq,
        "kind": "direct",
        "from": "alice",
        "to": "bob",
        "text": f"c{conv} m{seq}",
        "type": "text",
        "sent_at": 1_700_000_000_000,
        "system": False,
        "replay": False,
        "reply_to": None,
        "target_id": None,
        "edited_at": None,
        "retracted": False,
        "attachments": [],
        **extra,
    }


def change(conv: int, seq: int, target_seq: int, text: str = "", **extra: Any) -> dict[str, Any]:
    """An edit (with ``text``) or, without it, a retraction of message ``target_seq``."""
    return msg(
        conv,
        seq,
        type="edit" if text else "retract",
        text=text,
        target_id=conv * 1000 + target_seq,
        sent_at=1_700_000_000_000 + seq,
        **extra,
    )


def positions(events: list[Event]) -> list[tuple[int, int]]:
    return [(e.payload["conversation_id"], e.payload["seq"]) for e in events if e.type == "message"]


def ack_payloads(server: FakeServer) -> list[list[dict[str, Any]]]:
    return [r["payload"]["data"]["acks"] for r in server.actions("ack")]


async def wait_for(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class RecordingTerminal:
    """A terminal for ClientApp: lines are recorded, secrets come from a list."""

    def __init__(self, *secrets: str) -> None:
        self.lines: list[str] = []
        self.secrets = list(secrets)
        self.prompts: list[str] = []

    def show(self, line: str) -> None:
        self.lines.append(line)

    async def read_secret(self, prompt: str) -> str | None:
        self.prompts.append(prompt)
        return self.secrets.pop(0) if self.secrets else None
