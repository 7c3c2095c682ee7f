"""Receipt events are coalesced: at most one per member and conversation per
interval, carrying the latest cursors, to the right audience only."""

from __future__ import annotations

import asyncio
from typing import Any

from p2sp.common.message import decode_json
from p2sp.server.repository.history import MemberView
from p2sp.server.services.receipts import ReceiptService


class FakeRouter:
    def __init__(self) -> None:
        self.sent: list[tuple[list[int], dict[str, Any]]] = []

    def deliver_many(self, user_ids: Any, frame: bytes, *_: Any) -> int:
        self.sent.append((sorted(user_ids), decode_json(frame[12:])["payload"]))
        return len(self.sent[-1][0])


class FakeRepo:
    def __init__(self, kind: str, members: list[int]) -> None:
        self.kind, self.members = kind, members

    async def conversation_info(self, cid: int) -> MemberView:
        return MemberView(cid, self.kind, "g", False, False, 10, "", 0, 0, 0)

    async def member_ids(self, cid: int) -> list[int]:
        return self.members

    async def membership(self, user_id: int, cid: int) -> MemberView:
        return MemberView(cid, self.kind, "g", False, False, 10, "member", 0, 4, 2)


def service(kind: str, members: list[int], limit: int = 20) -> tuple[ReceiptService, FakeRouter]:
    router = FakeRouter()

    async def group_members(cid: int) -> frozenset[int]:
        return frozenset(members)

    svc = ReceiptService(
        repo=FakeRepo(kind, members),  # type: ignore[arg-type]
        history=None,  # type: ignore[arg-type]
        writer=None,  # type: ignore[arg-type]
        router=router,  # type: ignore[arg-type]
        group_members=group_members,
        group_limit=limit,
        interval=0.2,
    )
    return svc, router


async def test_moves_within_the_interval_become_one_event_with_the_latest_values() -> None:
    svc, router = service("direct", [1, 2])
    svc.moved(1, "alice", 7, 3, 1)
    await asyncio.sleep(0.01)
    for seq in (4, 5, 6):
        svc.moved(1, "alice", 7, seq, seq - 1)
    await asyncio.sleep(0.01)
    assert len(router.sent) == 1  # the first at once, the rest wait
    await asyncio.sleep(0.3)
    await svc.stop()
    assert [p for _, p in router.sent] == [
        {"conversation_id": 7, "username": "alice", "delivered_seq": 3, "read_seq": 1},
        {"conversation_id": 7, "username": "alice", "delivered_seq": 6, "read_seq": 5},
    ]
    assert all(to == [2] for to, _ in router.sent)  # the peer only, never the mover


async def test_an_ack_without_a_known_read_cursor_asks_the_database_once() -> None:
    svc, router = service("direct", [1, 2])
    svc.moved(1, "alice", 7, 3, -1)
    await asyncio.sleep(0.05)
    await svc.stop()
    assert router.sent[0][1]["read_seq"] == 2 and router.sent[0][1]["delivered_seq"] == 4


async def test_big_groups_and_inboxes_get_no_receipts() -> None:
    svc, router = service("group", [1, 2, 3], limit=2)
    svc.moved(1, "alice", 9, 3, 3)
    inbox, inbox_router = service("system", [1])
    inbox.moved(1, "alice", 5, 3, 3)
    await asyncio.sleep(0.05)
    await svc.stop()
    await inbox.stop()
    assert router.sent == [] and inbox_router.sent == []
    small, small_router = service("group", [1, 2, 3], limit=3)
    small.moved(1, "alice", 9, 3, 3)
    await asyncio.sleep(0.05)
    await small.stop()
    assert small_router.sent[0][0] == [2, 3]
