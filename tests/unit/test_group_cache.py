"""GroupService's caches never keep a group as it was before a change, and
fan-out reaches exactly the online members but the sender."""

from __future__ import annotations

import asyncio

from p2sp.server.managers.connection import Connection, Session
from p2sp.server.managers.connections import ConnectionManager
from p2sp.server.repository.groups import GroupRow
from p2sp.server.services.groups import GroupService
from tests.unit.test_connections import FakeTransport, NullHandler


class SlowRepo:
    def __init__(self) -> None:
        self.members = {1, 2}
        self.blocked = False
        self.release = asyncio.Event()

    async def member_ids(self, group_id: int) -> list[int]:
        snapshot = list(self.members)
        await self.release.wait()
        return snapshot

    async def get(self, group_id: int) -> GroupRow:
        blocked = self.blocked
        await self.release.wait()
        return GroupRow(group_id, "g", 1, "own", blocked, False, 50, None)


def service(repo: SlowRepo) -> GroupService:
    return GroupService(
        repo=repo,  # type: ignore[arg-type]
        directory=None,  # type: ignore[arg-type]
        messages=None,  # type: ignore[arg-type]
        writer=None,  # type: ignore[arg-type]
        router=None,  # type: ignore[arg-type]
        default_max_members=50,
        max_members_cap=100,
    )


async def test_a_load_overtaken_by_a_change_is_not_cached() -> None:
    repo = SlowRepo()
    groups = service(repo)
    members = asyncio.ensure_future(groups.member_set(7))
    row = asyncio.ensure_future(groups.group(7))
    await asyncio.sleep(0)
    repo.members.add(3)  # someone joins while the loads are in flight
    repo.blocked = True
    groups._changed(7)
    repo.release.set()
    assert await members == {1, 2}  # the caller gets what was read...
    assert not (await row).blocked
    assert await groups.member_set(7) == {1, 2, 3}  # ...but it was not kept
    assert (await groups.group(7)).blocked


def _online(manager: ConnectionManager, user_id: int) -> FakeTransport:
    conn = Connection(manager, NullHandler(), max_frame=4096, send_buffer_limit=1 << 20)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    manager.attach(conn, Session(user_id, f"u{user_id}", "t", False))
    return transport


async def test_deliver_group_reaches_online_members_but_the_sender() -> None:
    manager = ConnectionManager(idle_timeout=300)
    transports = {uid: _online(manager, uid) for uid in (1, 2, 3, 5000)}
    # Small group (walks the members) and big group (walks the sessions).
    for members in ({1, 2, 3, 4}, frozenset(range(1, 1000))):
        for t in transports.values():
            t.buffer.clear()
        assert manager.deliver_group(members, 1, b"frame") == 2
        await asyncio.sleep(0)  # queued frames are written when the loop pass ends
        assert [uid for uid, t in transports.items() if t.buffer] == [2, 3]
