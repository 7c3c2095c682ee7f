"""The login replay's handover to live delivery, made deterministic with a fake store.

The dangerous moment is a message committed while the replay's last query is
in flight: the query's snapshot does not contain it, and its live delivery is
held back because the replay is still running. The replay must notice and
look again, or that message is silently skipped until the next login.
"""

from __future__ import annotations

import asyncio

from p2sp.common.message import decode_json
from p2sp.common.protocol import FrameDecoder
from p2sp.server.events import MessageView, message_event
from p2sp.server.managers.connection import Connection, Session
from p2sp.server.managers.connections import ConnectionManager
from p2sp.server.managers.replay import Replayer
from tests.unit.test_connections import FakeTransport, NullHandler


def view(seq: int) -> MessageView:
    return MessageView(7, seq, 100 + seq, "direct", "alice", f"m{seq}", "text", 0, recipient="bob")


class RacingStore:
    """Answers pages from a list; on the 2nd query a message commits mid-query."""

    def __init__(self, manager: ConnectionManager) -> None:
        self.manager = manager
        self.committed = [view(1)]
        self.calls = 0

    async def pending(
        self, user_id: int, username: str, after_id: int, limit: int
    ) -> list[MessageView]:
        self.calls += 1
        snapshot = [v for v in self.committed if v.message_id > after_id][:limit]
        if self.calls == 2:
            # Commit m2 now, after this query's snapshot was taken; the writer's
            # commit callback tries to deliver it live.
            self.committed.append(view(2))
            self.manager.deliver(1, message_event(view(2)))
        return snapshot


def frames(transport: FakeTransport) -> list[dict]:
    return [decode_json(p) for p in FrameDecoder().feed(bytes(transport.buffer))]


async def test_a_message_committed_during_the_last_query_is_replayed() -> None:
    manager = ConnectionManager(idle_timeout=300)
    conn = Connection(manager, NullHandler(), max_frame=4096, send_buffer_limit=1 << 20)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    session = Session(1, "bob", "t", False)
    manager.attach(conn, session)
    store = RacingStore(manager)

    count = await Replayer(store).replay(conn, session)  # type: ignore[arg-type]
    await asyncio.sleep(0)  # queued frames are written when the loop pass ends

    out = frames(transport)
    assert [(f["type"], f["payload"].get("seq")) for f in out] == [
        ("message", 1),
        ("message", 2),
        ("sync_done", None),
    ]
    assert all(f["payload"]["replay"] for f in out[:2])  # m2 came by replay, not live
    assert count == 2 and out[-1]["payload"] == {"count": 2}
    assert not conn.replaying
    # After the handover, live delivery goes straight out.
    manager.deliver(1, message_event(view(3)))
    await asyncio.sleep(0)
    assert frames(transport)[-1]["payload"]["seq"] == 3


async def test_replay_stops_when_the_connection_closes() -> None:
    manager = ConnectionManager(idle_timeout=300)
    conn = Connection(manager, NullHandler(), max_frame=4096, send_buffer_limit=1 << 20)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    session = Session(1, "bob", "t", False)
    manager.attach(conn, session)
    conn.kick("shutdown")
    assert await Replayer(RacingStore(manager)).replay(conn, session) == 0  # type: ignore[arg-type]
    assert not conn.replaying
