"""Conversations, history pages and visible ranges against the real server.

Who may read what: members only (a non-member and an id that does not exist
get the same ``no_such_conversation``), a private group from the member's
join point, pages that together list every visible seq once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, ServerProcess

pytestmark = pytest.mark.timeout(180)


async def code_of(coro: Any) -> str:
    try:
        await coro
    except Exception as exc:
        return getattr(exc, "code", repr(exc))
    return "ok"


async def friends(server: ServerProcess, *names: str) -> list[Any]:
    """Registered, logged-in clients; the first is friends with all others."""
    made = []
    for name in names:
        c = server.client()
        await c.connect()
        await c.reg(name, PASSWORD)
        await c.login(name, PASSWORD)
        made.append(c)
    for other in names[1:]:
        await made[0].call("add", username=other)
    return made


async def close(*clients: Any) -> None:
    for c in clients:
        await c.close()


async def test_conversations_newest_first_with_unread_and_last_message(
    server: ServerProcess,
) -> None:
    alice, bob, carol = await friends(server, "alice", "bob", "carol")
    try:
        await bob.call("send", to="alice", text="one")
        await bob.call("send", to="alice", text="two")
        await carol.call("send", to="alice", text="from carol")
        group = await alice.call("newgroup", name="team")
        rows = (await alice.call("conversations"))["conversations"]
        kinds = [(r["kind"], r["peer"] or r["name"]) for r in rows]
        # newest activity first: the new group has none, so it comes last
        assert kinds[0] == ("direct", "carol") and kinds[1] == ("direct", "bob")
        assert ("group", "team") in kinds
        by_peer = {r["peer"]: r for r in rows if r["kind"] == "direct"}
        assert by_peer["bob"]["unread"] == 2 and by_peer["carol"]["unread"] == 1
        assert by_peer["bob"]["last_message"]["text"] == "two"
        team = next(r for r in rows if r["kind"] == "group")
        assert team["group_id"] == group["group_id"] and team["last_message"] is None
        # Own messages never count as unread.
        await alice.call("send", to="bob", text="mine")
        rows = (await alice.call("conversations"))["conversations"]
        assert next(r for r in rows if r["peer"] == "bob")["unread"] == 2
        # Paging: one row a page, no row twice, none missed.
        seen, before, before_id = [], None, None
        while True:
            page = await alice.call("conversations", limit=1, before=before, before_id=before_id)
            seen += [r["conversation_id"] for r in page["conversations"]]
            if not page["has_more"]:
                break
            last = page["conversations"][-1]
            before, before_id = last["last_activity"], last["conversation_id"]
        assert seen == [r["conversation_id"] for r in rows]
    finally:
        await close(alice, bob, carol)


async def test_history_pages_back_and_forth_without_overlap_or_gap(server: ServerProcess) -> None:
    alice, bob = await friends(server, "alice", "bob")
    try:
        for i in range(1, 26):
            await alice.call("send", to="bob", text=f"m{i}")
        latest = await bob.call("history", username="alice", limit=10)
        assert [m["text"] for m in latest["messages"]] == [f"m{i}" for i in range(16, 26)]
        assert latest["has_more"] and latest["first_seq"] == 1
        back, before = [], None
        while True:
            page = await bob.call("history", username="alice", before_seq=before, limit=7)
            back = [m["seq"] for m in page["messages"]] + back
            if not page["has_more"]:
                break
            before = page["messages"][0]["seq"]
        assert back == list(range(1, 26))
        forward, after = [], 0
        while True:
            page = await bob.call("history", username="alice", after_seq=after, limit=6)
            forward += [m["seq"] for m in page["messages"]]
            if not page["has_more"]:
                break
            after = page["messages"][-1]["seq"]
        assert forward == list(range(1, 26))
        # The same conversation by id and from the other side.
        cid = latest["conversation_id"]
        mine = await alice.call("history", conversation_id=cid, limit=3)
        assert [m["status"] for m in mine["messages"]] in (
            ["delivered"] * 3,
            ["sent"] * 3,
            ["read"] * 3,
        )
    finally:
        await close(alice, bob)


async def test_history_is_for_members_only_and_ids_cannot_be_probed(
    server: ServerProcess,
) -> None:
    alice, bob, eve = await friends(server, "alice", "bob", "eve")
    try:
        sent = await alice.call("send", to="bob", text="secret")
        group = await alice.call("newgroup", name="inner")
        cid = sent["conversation_id"]
        for kwargs in (
            {"conversation_id": cid},
            {"conversation_id": 999_999},
            {"group_id": group["group_id"]},
            {"group_id": cid},  # a direct chat named as a group
            {"username": "bob"},  # eve and bob never talked
            {"username": "nobody"},
        ):
            assert await code_of(eve.call("history", **kwargs)) == "no_such_conversation", kwargs
        assert await code_of(bob.call("history", group_id=cid)) == "no_such_conversation"
        for bad in (
            {},
            {"conversation_id": cid, "username": "alice"},
            {"conversation_id": cid, "limit": 201},
            {"conversation_id": cid, "limit": 0},
            {"conversation_id": cid, "before_seq": -1},
            {"conversation_id": cid, "before_seq": 2, "after_seq": 1},
        ):
            assert await code_of(bob.call("history", **bad)) == "invalid_request", bad
    finally:
        await close(alice, bob, eve)


async def test_a_private_group_is_visible_from_the_join_point(server: ServerProcess) -> None:
    alice, bob = await friends(server, "alice", "bob")
    try:
        gid = (await alice.call("newgroup", name="club"))["group_id"]
        for i in range(3):
            await alice.call("sendgroup", group_id=gid, text=f"before {i}")
        await alice.call("addgroupuser", group_id=gid, username="bob")
        await alice.call("sendgroup", group_id=gid, text="after")
        page = await bob.call("history", group_id=gid)
        assert [m["text"] for m in page["messages"]] == ["after"]
        assert page["first_seq"] == 4
        assert await code_of(bob.call("search", query="before")) == "ok"
        assert (await bob.call("search", query="before"))["results"] == []
        row = next(
            r for r in (await bob.call("conversations"))["conversations"] if r["kind"] == "group"
        )
        assert row["unread"] == 1
        # A public room is visible whole.
        room = (await alice.call("newgroup", name="lobby", public=True))["group_id"]
        await alice.call("sendgroup", group_id=room, text="welcome")
        await bob.call("joingroup", group_id=room)
        assert [m["text"] for m in (await bob.call("history", group_id=room))["messages"]] == [
            "welcome"
        ]
    finally:
        await close(alice, bob)


async def test_retention_keeps_what_a_member_has_not_received(server_factory) -> None:
    server = server_factory(max_messages_per_conversation=3, retention_interval=0.3)
    alice, bob = await friends(server, "alice", "bob")
    await bob.close()  # bob is offline: nothing he has not received may go
    try:
        for i in range(1, 9):
            await alice.call("send", to="bob", text=f"m{i}")
        cid = (await alice.call("history", username="bob"))["conversation_id"]
        await asyncio.sleep(1.0)
        page = await alice.call("history", conversation_id=cid, limit=50)
        assert [m["seq"] for m in page["messages"]] == list(range(1, 9))
        bob = server.client()
        await bob.connect()
        await bob.login("bob", PASSWORD)
        got: list[int] = []
        while len(got) < 8:  # the friend notice may come first, if bob had not acked it
            event = (await bob.next_event("message", timeout=10)).payload
            if event["conversation_id"] == cid:
                got.append(event["seq"])
        assert got == list(range(1, 9))
        await bob.call("ack", acks=[{"conversation_id": cid, "seq": 8}])
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            page = await alice.call("history", conversation_id=cid, limit=50)
            if [m["seq"] for m in page["messages"]] == [6, 7, 8]:
                break
            assert asyncio.get_running_loop().time() < deadline, page
            await asyncio.sleep(0.2)
        assert page["first_seq"] == 6
    finally:
        await close(alice, bob)
