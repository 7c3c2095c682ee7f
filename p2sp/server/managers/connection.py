"""One client connection: bytes in, frames out, nothing else.

An ``asyncio.Protocol`` rather than streams: writes must never wait (a
fan-out writes the same bytes to many sockets and moves on), and the only
question asked of a socket before writing is how much it still holds. That is
what makes "one slow client never slows the rest" cheap (docs/architecture.md,
"The promises and their tests"): a connection whose unsent bytes pass the limit
is kicked as a slow consumer instead of slowing anyone who writes to it.

Requests of one connection are handled one after another, in arrival order,
by a worker task that exists only while there is work; reading pauses while
too many decoded requests wait, so a flooding client is throttled by TCP.
A request whose answer waits only for the message writer's commit (send,
sendgroup, ack) is answered when that commit is done, while the worker goes
on: it has already taken its place in the commit order, so a client's
messages still commit in the order sent, several per batch.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from p2sp.common.exceptions import ProtocolError
from p2sp.common.message import event_frame
from p2sp.common.protocol import FrameDecoder

if TYPE_CHECKING:
    from p2sp.server.managers.connections import ConnectionManager

log = logging.getLogger(__name__)

#: Decoded requests a connection may have waiting before reading pauses.
INBOX_HIGH = 64
INBOX_LOW = 16
#: Requests of one connection waiting for their commit (``track``) before
#: the next request waits for one of them.
MAX_IN_FLIGHT = 64
#: How long a closing connection may take to flush before it is cut.
CLOSE_GRACE = 2.0
#: Unsent bytes above which a replay waits for the socket to drain.
WRITE_HIGH_WATER = 256 * 1024

_ids = itertools.count(1)


@dataclass(slots=True)
class Session:
    """Who a connection is logged in as; the token is checked on every request."""

    user_id: int
    username: str
    token: str
    is_admin: bool


class FrameHandler(Protocol):
    """What a connection hands its frames to (the server's message handler)."""

    async def handle_frame(self, conn: Connection, payload: bytes) -> None: ...

    def connection_closed(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """A client's socket, its frame decoder, its session and its send limit."""

    def __init__(
        self,
        manager: ConnectionManager,
        handler: FrameHandler,
        *,
        max_frame: int,
        send_buffer_limit: int,
    ) -> None:
        self.id = next(_ids)
        self.manager = manager
        self.handler = handler
        self.decoder = FrameDecoder(max_frame)
        self.send_buffer_limit = send_buffer_limit
        self.session: Session | None = None
        self.peer_ip = ""
        self.transport: asyncio.Transport | None = None
        self.closing = False
        self.last_activity = 0.0
        self._loop = asyncio.get_running_loop()
        self._inbox: collections.deque[bytes] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        self._paused = False
        self._eof = False
        #: Requests answered when their commit is done (created on first use:
        #: most connections are idle).
        self._in_flight: set[asyncio.Future[Any]] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        #: Frames queued in this pass of the loop (``send``).
        self._out: list[bytes] = []
        #: While the login replay runs, live deliveries are not written (they
        #: would overtake older replayed messages); ``missed`` tells the
        #: replay to look again before it hands over to live delivery.
        self.replaying = False
        self.missed = False
        #: conversation id -> highest seq sent to this connection: what it may
        #: ``ack`` without the database being asked.
        self.delivered: dict[int, int] = {}

    def __repr__(self) -> str:
        who = self.session.username if self.session else "-"
        return f"<Connection #{self.id} {self.peer_ip} user={who}>"

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self.peer_ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self.last_activity = self._loop.time()
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)  # type: ignore[attr-defined]
        self.manager.add(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_activity = self._loop.time()
        try:
            frames = self.decoder.feed(data)
        except ProtocolError as exc:
            log.info("%r: protocol error %s: %s", self, exc.code, exc.message)
            self.close_with_error(exc.code, exc.message)
            return
        if not frames:
            return
        self._inbox.extend(frames)
        if self._worker is None:
            self._worker = self._loop.create_task(self._work())
        if len(self._inbox) >= INBOX_HIGH and not self._paused:
            self._paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        # Half-closed by the client: answer what it already sent, then close.
        self._eof = True
        if self._worker is None:
            self._close_when_answered()
        return True

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def writable(self) -> None:
        """Wait until the socket has taken most of what was written (replay pacing)."""
        await self._writable.wait()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._writable.set()  # release a replay waiting to write
        self._inbox.clear()
        self._out = []
        self.manager.remove(self)
        self.handler.connection_closed(self)

    # -- requests ---------------------------------------------------------------

    async def _work(self) -> None:
        inbox = self._inbox
        try:
            while inbox and not self.closing:
                try:
                    await self.handler.handle_frame(self, inbox.popleft())
                except Exception:
                    # The handler answers every fault itself; reaching here is
                    # a bug. Close this connection rather than leave it hung.
                    log.exception("%r: request handling crashed", self)
                    self.close_with_error("internal_error", "the server failed; reconnect")
                in_flight = self._in_flight
                if in_flight and len(in_flight) >= MAX_IN_FLIGHT:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                if self._paused and len(inbox) <= INBOX_LOW and not self.closing:
                    self._paused = False
                    self.transport.resume_reading()  # type: ignore[union-attr]
        finally:
            self._worker = None
            if self._eof:
                self._close_when_answered()

    def _close_when_answered(self) -> None:
        """Close after the last answers still waiting for a commit are written."""
        if self.transport is None:
            return
        if not self._in_flight:
            self.flush()
            self.transport.close()
            return
        waiting = asyncio.ensure_future(asyncio.wait(list(self._in_flight)))
        # The answers' own callbacks were added first, so they have run by now.
        waiting.add_done_callback(lambda _: self._close_now())

    def _close_now(self) -> None:
        if self.transport is not None:
            self.flush()
            self.transport.close()

    def track(self, future: asyncio.Future[Any]) -> None:
        """Count a request that is answered when ``future`` is done (pipelining:
        the worker goes on with the next request meanwhile, up to ``MAX_IN_FLIGHT``)."""
        if self._in_flight is None:
            self._in_flight = set()
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)

    async def drained(self) -> None:
        """Wait until the requests already received have been handled and answered."""
        worker = self._worker
        if worker is not None:
            await asyncio.shield(worker)
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))

    # -- output -------------------------------------------------------------------

    def send(self, frame: bytes) -> bool:
        """Queue one frame; never waits. False when the frame will not be delivered.

        Frames queued in one pass of the event loop go out together, in one
        system call, when the pass ends (``flush``): uvloop writes at once on
        every ``transport.write``, and a fan-out or a commit's callbacks give a
        connection several frames in the same pass. A client that has let more
        than ``send_buffer_limit`` bytes pile up is kicked as a slow consumer:
        what it missed waits in the database. The limit applies to what the
        socket has not taken: frames still queued for this pass are not yet
        the client's fault (a replay page queues hundreds at once).
        """
        transport = self.transport
        if self.closing or transport is None:
            return False
        if transport.get_write_buffer_size() + len(frame) > self.send_buffer_limit:
            log.warning("%r: send buffer over %d bytes, kicking", self, self.send_buffer_limit)
            self.kick("slow_consumer")
            return False
        if not self._out:
            self.manager.flush_soon(self)
        self._out.append(frame)
        return True

    def flush(self) -> None:
        """Write the frames ``send`` queued, as one write."""
        out = self._out
        if not out:
            return
        self._out = []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def send_message(self, frame: bytes, conversation_id: int, seq: int) -> bool:
        """``send`` a message event and remember that it was given (for acks)."""
        if self.send(frame):
            if seq > self.delivered.get(conversation_id, 0):
                self.delivered[conversation_id] = seq
            return True
        return False

    def kick(self, reason: str) -> None:
        """Send ``kicked`` with a reason and close (docs/protocol.md, "Events")."""
        self._final(event_frame("kicked", {"reason": reason}))

    def close_with_error(self, code: str, message: str) -> None:
        """Send an ``error`` event and close: the stream cannot go on."""
        self._final(event_frame("error", {"code": code, "message": message}))

    def _final(self, frame: bytes) -> None:
        if self.closing or self.transport is None:
            return
        self.flush()  # what was queued before goes first
        self.closing = True
        self._inbox.clear()
        transport = self.transport
        transport.write(frame)  # past the limit on purpose: it is the last frame
        transport.close()
        # close() waits for the buffer to flush; a peer that never reads
        # would hold it forever, so cut it after a grace period.
        self._loop.call_later(CLOSE_GRACE, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if self.transport is not None and self.manager.contains(self):
            self.transport.abort()
