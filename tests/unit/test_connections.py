"""ConnectionManager: one live session per user, delivery, and the slow-consumer rule."""

from __future__ import annotations

import asyncio

import pytest

from p2sp.common.message import decode_json
from p2sp.common.protocol import FrameDecoder
from p2sp.server.managers.connection import Connection, Session
from p2sp.server.managers.connections import ConnectionManager


class FakeTransport:
    """Holds written bytes as 'unsent' until drained, like a socket a client does not read."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.writes = 0
        self.closed = False
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return len(self.buffer)

    def write(self, data: bytes) -> None:
        self.buffer += data
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str):
        return ("127.0.0.1", 5555) if name == "peername" else None

    def pause_reading(self) -> None: ...

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...

    def resume_reading(self) -> None: ...

    def events(self) -> list[dict]:
        return [decode_json(p) for p in FrameDecoder().feed(bytes(self.buffer))]


class NullHandler:
    async def handle_frame(self, conn, payload) -> None: ...

    def connection_closed(self, conn) -> None: ...


@pytest.fixture
def manager() -> ConnectionManager:
    return ConnectionManager(idle_timeout=300)


def _conn(manager: ConnectionManager, limit: int = 1024) -> tuple[Connection, FakeTransport]:
    conn = Connection(manager, NullHandler(), max_frame=4096, send_buffer_limit=limit)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


async def test_newer_session_kicks_older(manager: ConnectionManager) -> None:
    a, ta = _conn(manager)
    b, _ = _conn(manager)
    manager.attach(a, Session(1, "u", "t1", False))
    manager.attach(b, Session(1, "u", "t2", False))
    assert manager.session_of(1) is b
    assert ta.closed and ta.events()[-1] == {
        "type": "kicked",
        "timestamp": ta.events()[-1]["timestamp"],
        "payload": {"reason": "logged_in_elsewhere"},
    }
    # The kicked connection's close must not end the newer session.
    assert manager.detach(a) is None
    assert manager.is_online(1)
    assert manager.detach(b) is not None and not manager.is_online(1)


async def test_slow_consumer_is_kicked_and_others_still_get_frames(
    manager: ConnectionManager,
) -> None:
    slow, ts = _conn(manager, limit=100)
    fast, tf = _conn(manager, limit=100)
    manager.attach(slow, Session(1, "slow", "t", False))
    manager.attach(fast, Session(2, "fast", "t", False))
    frame = b"x" * 60
    assert manager.deliver_many([1, 2], frame) == 2
    await asyncio.sleep(0)  # the loop pass ends: queued frames are written
    tf.buffer.clear()  # the fast client reads
    assert manager.deliver_many([1, 2], frame) == 1  # the slow one is over its limit
    assert ts.closed
    # The kick is written past the limit, as the last frame the client will get.
    assert FrameDecoder().feed(bytes(ts.buffer[60:]))
    assert decode_json(FrameDecoder().feed(bytes(ts.buffer[60:]))[0])["payload"] == {
        "reason": "slow_consumer"
    }
    assert slow.closing and not fast.closing
    await asyncio.sleep(0)
    tf.buffer.clear()
    assert manager.deliver(2, frame)
    assert not manager.deliver(1, frame)


async def test_frames_of_one_loop_pass_go_out_in_one_write(manager: ConnectionManager) -> None:
    """A fan-out gives a connection several frames in one pass: one system call."""
    conn, transport = _conn(manager, limit=10_000)
    other, tother = _conn(manager, limit=10_000)
    manager.attach(conn, Session(1, "a", "t", False))
    manager.attach(other, Session(2, "b", "t", False))
    for i in range(5):
        manager.deliver_many([1, 2], f"frame{i};".encode())
    assert transport.writes == tother.writes == 0  # nothing written mid-pass
    await asyncio.sleep(0)
    assert transport.writes == tother.writes == 1
    assert bytes(transport.buffer) == b"frame0;frame1;frame2;frame3;frame4;"
    # A kick still comes after what was queued before it.
    conn.send(b"last;")
    conn.kick("shutdown")
    assert bytes(transport.buffer).startswith(b"frame0;frame1;frame2;frame3;frame4;last;")
    assert transport.closed


async def test_send_after_close_is_refused(manager: ConnectionManager) -> None:
    conn, transport = _conn(manager)
    conn.kick("shutdown")
    assert transport.closed
    assert not conn.send(b"late")


async def test_requests_waiting_for_a_commit_are_bounded_per_connection(
    manager: ConnectionManager,
) -> None:
    """Pipelining has a limit: past MAX_IN_FLIGHT unanswered requests the
    connection's worker waits for one to be answered before the next."""
    import asyncio

    from p2sp.common.protocol import encode_frame
    from p2sp.server.managers.connection import MAX_IN_FLIGHT

    loop = asyncio.get_running_loop()
    started: list[asyncio.Future[None]] = []

    class Pipelining(NullHandler):
        async def handle_frame(self, conn, payload) -> None:
            fut = loop.create_future()
            started.append(fut)
            conn.track(fut)

    conn = Connection(manager, Pipelining(), max_frame=4096, send_buffer_limit=1 << 20)
    conn.connection_made(FakeTransport())  # type: ignore[arg-type]
    conn.data_received(b"".join(encode_frame(b"{}") for _ in range(MAX_IN_FLIGHT + 5)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(started) == MAX_IN_FLIGHT
    started[0].set_result(None)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(started) == MAX_IN_FLIGHT + 1
    for _ in range(2):  # the rest, and then those the worker starts meanwhile
        for fut in started:
            if not fut.done():
                fut.set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)
    await asyncio.wait_for(conn.drained(), 1)
    assert len(started) == MAX_IN_FLIGHT + 5
