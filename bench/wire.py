"""The load generator's clients: raw ``asyncio.Protocol`` objects, no SDK.

``P2Conn`` speaks p2sp frames with ``p2sp.common`` (``FrameDecoder``,
``request_frame``) and decodes each frame into one flat msgspec Struct that
holds only the fields the benchmark reads. ``IrcConn`` speaks IRC lines to
ngircd. Both hand what they receive to a *sink* (the worker that owns them)
and never wait for anything themselves: a reader that falls behind would be
measured as a slow server (or kicked as a slow consumer).

Requests are matched to responses by id with a plain callback
``cb(conn, payload, now_ns, *args)``; ``call()`` wraps that in a future for
the setup steps, where convenience matters more than speed.
"""

from __future__ import annotations

import asyncio
import collections
from time import monotonic_ns
from typing import Any

import msgspec

from p2sp.common.exceptions import ProtocolError
from p2sp.common.message import request_frame
from p2sp.common.protocol import FrameDecoder

PASSWORD = "bench-password-1"
#: the generator accepts any frame the server may send (replay pages, big lists)
MAX_FRAME = 16 * 1024 * 1024


class Incoming(msgspec.Struct):
    """The union of every payload field the benchmark looks at; the rest is skipped."""

    id: int | None = None
    status: str | None = None
    code: str | None = None
    message: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"{}")
    conversation_id: int | None = None
    seq: int | None = None
    text: str | None = None
    count: int | None = None
    reason: str | None = None
    replay: bool = False


class InFrame(msgspec.Struct):
    type: str
    payload: Incoming


_decode_frame = msgspec.json.Decoder(InFrame).decode
_decode_any = msgspec.json.Decoder().decode


class RequestFailed(Exception):
    def __init__(self, action: str, payload: Incoming) -> None:
        super().__init__(f"{action}: {payload.status}/{payload.code}: {payload.message}")
        self.payload = payload


class Sink:
    """What a connection reports to; the worker overrides what it measures."""

    protocol_errors = 0
    decode_errors = 0

    def on_message(self, conn: P2Conn, p: Incoming, now: int) -> None:
        pass

    def on_sync_done(self, conn: P2Conn, p: Incoming, now: int) -> None:
        fut = conn.synced
        if fut is not None and not fut.done():
            fut.set_result(p.count)

    def on_kicked(self, conn: Any, reason: str | None) -> None:
        pass

    def on_error_event(self, conn: Any, p: Incoming) -> None:
        pass

    def on_lost(self, conn: Any, exc: Exception | None) -> None:
        pass

    def after_batch(self, conn: P2Conn) -> None:
        pass


def _resolve(conn: P2Conn, p: Incoming, now: int, fut: asyncio.Future[Incoming]) -> None:
    if not fut.done():
        fut.set_result(p)


class P2Conn(asyncio.Protocol):
    """One simulated p2sp user."""

    def __init__(self, sink: Sink, idx: int, name: str) -> None:
        self.sink = sink
        self.idx = idx
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.decoder = FrameDecoder(MAX_FRAME)
        self.waiting: dict[int, tuple[Any, tuple[Any, ...]]] = {}
        self.next_id = 0
        self.token: str | None = None
        self.closed = False
        self.synced: asyncio.Future[int | None] | None = None
        # receiving: highest message number seen per sender, pending acks
        self.last: dict[int, int] = {}
        self.ack_pending: dict[int, int] = {}
        self.ack_count = 0
        self.ack_inflight = False
        # sending
        self.remaining = 0
        self.inflight = 0
        self.sent_n = 0
        self.backlog: collections.deque[int] = collections.deque()
        self.peers: list[int] | None = None
        self.t_mark = 0

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            payloads = self.decoder.feed(data)
        except ProtocolError:
            self.sink.protocol_errors += 1
            self.transport.abort()  # type: ignore[union-attr]
            return
        sink = self.sink
        for raw in payloads:
            try:
                frame = _decode_frame(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                sink.decode_errors += 1
                continue
            kind = frame.type
            p = frame.payload
            if kind == "message":
                sink.on_message(self, p, monotonic_ns())
            elif kind == "response":
                entry = self.waiting.pop(p.id, None)  # type: ignore[arg-type]
                if entry is not None:
                    entry[0](self, p, monotonic_ns(), *entry[1])
            elif kind == "sync_done":
                sink.on_sync_done(self, p, monotonic_ns())
            elif kind == "kicked":
                sink.on_kicked(self, p.reason)
            elif kind == "error":
                sink.on_error_event(self, p)
        sink.after_batch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed = self.closed
        self.closed = True
        waiting, self.waiting = self.waiting, {}
        for cb, args in waiting.values():
            if cb is _resolve and not args[0].done():
                args[0].set_exception(ConnectionError("connection lost"))
        if self.synced is not None and not self.synced.done():
            self.synced.set_exception(ConnectionError("connection lost"))
        if not was_closed:
            self.sink.on_lost(self, exc)

    # -- requests -------------------------------------------------------------------

    def request(self, action: str, data: dict[str, Any] | None, cb: Any, *args: Any) -> int:
        self.next_id += 1
        rid = self.next_id
        self.waiting[rid] = (cb, args)
        self.transport.write(request_frame(action, rid, data, self.token))  # type: ignore[union-attr]
        return rid

    async def call(
        self, action: str, data: dict[str, Any] | None = None, timeout: float = 120.0
    ) -> Incoming:
        """Send a request and wait for its response; raise RequestFailed unless ok."""
        fut: asyncio.Future[Incoming] = asyncio.get_running_loop().create_future()
        self.request(action, data, _resolve, fut)
        p = await asyncio.wait_for(fut, timeout)
        if p.status != "ok":
            raise RequestFailed(action, p)
        return p

    async def login(self, password: str = PASSWORD, timeout: float = 120.0) -> int | None:
        """Log in and wait for ``sync_done``; returns its count."""
        self.synced = asyncio.get_running_loop().create_future()
        p = await self.call("login", {"username": self.name, "password": password}, timeout)
        self.token = _decode_any(p.data)["auth_token"]
        return await asyncio.wait_for(self.synced, timeout)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


# --- IRC ------------------------------------------------------------------------


class IrcSink:
    protocol_errors = 0

    def on_irc_message(self, conn: IrcConn, text: bytes, now: int) -> None:
        pass

    def on_pong(self, conn: IrcConn, now: int) -> None:
        pass

    def on_lost(self, conn: Any, exc: Exception | None) -> None:
        pass


class IrcConn(asyncio.Protocol):
    """One simulated IRC user: registration, PRIVMSG, and PING used as a send ack."""

    def __init__(self, sink: IrcSink, idx: int, nick: str) -> None:
        self.sink = sink
        self.idx = idx
        self.name = nick
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.closed = False
        self._waiter: tuple[Any, asyncio.Future[tuple[bytes, bytes]]] | None = None
        self.last: dict[int, int] = {}
        # sending: PONGs come back in order, one per PRIVMSG
        self.pongs: collections.deque[tuple[int, int]] = collections.deque()
        self.fail_next = 0
        self.remaining = 0
        self.inflight = 0
        self.sent_n = 0
        self.backlog: collections.deque[int] = collections.deque()
        self.peers: list[int] | None = None
        self.errors: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        lines = (self.buf + data).split(b"\r\n")
        self.buf = lines.pop()
        sink = self.sink
        for line in lines:
            if not line:
                continue
            rest = line.partition(b" ")[2] if line[0] == 58 else line  # skip ":prefix"
            cmd, _, params = rest.partition(b" ")
            if cmd == b"PRIVMSG":
                sink.on_irc_message(self, params.partition(b" :")[2], monotonic_ns())
            elif cmd == b"PONG":
                sink.on_pong(self, monotonic_ns())
            elif cmd == b"PING":
                self.transport.write(b"PONG " + params + b"\r\n")  # type: ignore[union-attr]
            elif cmd == b"401":  # no such nick: the PONG that follows is a failed send
                self.fail_next += 1
            else:
                if cmd == b"ERROR" or (cmd[:1] in b"45" and len(cmd) == 3):
                    self.errors.append(line)
                waiter = self._waiter
                if waiter is not None and waiter[0](cmd, params) and not waiter[1].done():
                    waiter[1].set_result((cmd, params))

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed = self.closed
        self.closed = True
        if self._waiter is not None and not self._waiter[1].done():
            self._waiter[1].set_exception(ConnectionError("connection lost"))
        if not was_closed:
            self.sink.on_lost(self, exc)

    def write(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]

    async def expect(
        self, send: bytes, cmds: set[bytes], timeout: float, accept: Any = None
    ) -> tuple[bytes, bytes]:
        """Write ``send``; wait for a line whose command is in ``cmds`` (and ``accept``s)."""
        fut: asyncio.Future[tuple[bytes, bytes]] = asyncio.get_running_loop().create_future()

        def wanted(cmd: bytes, params: bytes) -> bool:
            return cmd in cmds and (accept is None or accept(cmd, params))

        self._waiter = (wanted, fut)
        self.write(send)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiter = None

    async def register(self, oper: tuple[str, str], timeout: float = 60.0) -> None:
        """NICK/USER, then OPER and user mode +F (no flood throttling)."""
        nick = self.name.encode()
        cmd, params = await self.expect(
            b"NICK %s\r\nUSER %s 0 * :p2sp bench\r\n" % (nick, nick),
            {b"001", b"432", b"433", b"ERROR"},
            timeout,
        )
        if cmd != b"001":
            raise ConnectionError(f"IRC registration of {self.name} refused: {cmd!r} {params!r}")
        cmd, params = await self.expect(
            b"OPER %s %s\r\n" % (oper[0].encode(), oper[1].encode()),
            {b"381", b"464", b"491", b"ERROR"},
            timeout,
        )
        if cmd != b"381":
            raise ConnectionError(f"OPER refused: {cmd!r} {params!r}")
        cmd, params = await self.expect(
            b"MODE %s +F\r\n" % nick,
            {b"MODE", b"481", b"501", b"502"},
            timeout,
            # the +o of OPER may come as a MODE line too: wait for the one with F
            accept=lambda cmd, params: cmd != b"MODE" or b"F" in params.rpartition(b" ")[2],
        )
        if cmd != b"MODE" or b"F" not in params:
            raise ConnectionError(f"MODE +F refused: {cmd!r} {params!r}")

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
