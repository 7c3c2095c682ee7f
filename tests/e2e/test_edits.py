"""Replies, edits and retractions against the real server: who may change
what and until when, and that a retraction erases the text everywhere."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from tests.e2e.conftest import ServerProcess, db_execute, table
from tests.e2e.test_history import close, code_of, friends

pytestmark = pytest.mark.timeout(180)


async def event_of_type(client: Any, type_: str, timeout: float = 10.0) -> dict[str, Any]:
    while True:
        event = await client.next_event("message", timeout=timeout)
        if event.payload["type"] == type_:
            return event.payload


async def stored_texts(server: ServerProcess) -> list[str]:
    m, v = table("messages"), table("message_versions")
    rows = await db_execute(server.database_url, select(m.c.content))
    versions = await db_execute(server.database_url, select(v.c.text))
    return [r[0] for r in rows or []] + [r[0] for r in versions or []]


async def test_reply_carries_an_excerpt_and_stays_in_its_conversation(
    server: ServerProcess,
) -> None:
    alice, bob, carol = await friends(server, "alice", "bob", "carol")
    try:
        long = "x" * 150
        first = await alice.call("send", to="bob", text=long)
        other = await alice.call("send", to="carol", text="elsewhere")
        reply = await bob.call("send", to="alice", text="answer", reply_to=first["message_id"])
        event = await event_of_type(alice, "text")
        assert event["reply_to"] == {
            "message_id": first["message_id"],
            "seq": first["seq"],
            "from": "alice",
            "text": "x" * 100,
        }
        assert reply["seq"] == 2
        # Another conversation's message, an unknown id, a message one cannot see.
        for bad in (other["message_id"], 999_999):
            assert (
                await code_of(bob.call("send", to="alice", text="no", reply_to=bad))
                == "no_such_message"
            )
        gid = (await alice.call("newgroup", name="g"))["group_id"]
        assert (
            await code_of(
                alice.call("sendgroup", group_id=gid, text="no", reply_to=first["message_id"])
            )
            == "no_such_message"
        )
        m = table("messages")
        rows = await db_execute(server.database_url, select(m.c.content).where(m.c.content == "no"))
        assert rows == []  # refused sends stored nothing
    finally:
        await close(alice, bob, carol)


async def test_edit_rules_and_what_everyone_sees(server: ServerProcess) -> None:
    alice, bob = await friends(server, "alice", "bob")
    try:
        sent = await alice.call("send", to="bob", text="helo wrold")
        mid = sent["message_id"]
        edited = await alice.call("edit", message_id=mid, text="hello world")
        assert edited["seq"] == 2 and edited["edited_at"] >= sent["sent_at"]
        event = await event_of_type(bob, "edit")
        assert (event["target_id"], event["text"], event["seq"]) == (mid, "hello world", 2)
        page = (await bob.call("history", username="alice"))["messages"]
        assert page[0]["text"] == "hello world" and page[0]["edited_at"] == edited["edited_at"]
        assert [m["type"] for m in page] == ["text", "edit"]
        versions = (await bob.call("edits", message_id=mid))["versions"]
        assert [v["text"] for v in versions] == ["helo wrold", "hello world"]
        assert versions[0]["edited_at"] is None
        # Someone else's message, an edit event itself, a notice, bad input.
        assert await code_of(bob.call("edit", message_id=mid, text="mine now")) == "not_permitted"
        edit_event = page[1]["message_id"]
        assert await code_of(alice.call("edit", message_id=edit_event, text="x")) in (
            "not_permitted",
        )
        assert await code_of(alice.call("edit", message_id=999_999, text="x")) == "no_such_message"
        assert await code_of(alice.call("edit", message_id=mid, text="")) == "invalid_request"
        eve = (await friends(server, "eve"))[0]
        assert await code_of(eve.call("edits", message_id=mid)) == "no_such_message"
        assert await code_of(eve.call("retract", message_id=mid)) == "no_such_message"
        await eve.close()
        # Search finds the latest text only.
        assert [r["message_id"] for r in (await bob.call("search", query="hello"))["results"]] == [
            mid
        ]
        assert (await bob.call("search", query="wrold"))["results"] == []
    finally:
        await close(alice, bob)


async def test_retraction_erases_the_text_versions_and_excerpts(server: ServerProcess) -> None:
    alice, bob = await friends(server, "alice", "bob")
    try:
        sent = await alice.call("send", to="bob", text="wrong chat entirely")
        mid = sent["message_id"]
        await alice.call("edit", message_id=mid, text="still the wrong chat")
        await bob.call("send", to="alice", text="what?", reply_to=mid)
        gone = await alice.call("retract", message_id=mid)
        assert gone["seq"] == 4
        event = await event_of_type(bob, "retract")
        assert (event["target_id"], event["text"]) == (mid, "")
        page = (await bob.call("history", username="alice"))["messages"]
        assert page[0]["retracted"] and page[0]["text"] == ""
        assert page[2]["reply_to"]["text"] == ""
        assert page[1]["type"] == "edit" and page[1]["text"] == ""  # the edit's text too
        assert (await bob.call("edits", message_id=mid))["versions"] == []
        assert (await bob.call("search", query="wrong"))["results"] == []
        assert not any("wrong" in t for t in await stored_texts(server))
        assert await code_of(alice.call("edit", message_id=mid, text="x")) == "message_retracted"
        assert await code_of(alice.call("retract", message_id=mid)) == "message_retracted"
        # A retraction is itself unread for nobody.
        row = next(
            r for r in (await bob.call("conversations"))["conversations"] if r["peer"] == "alice"
        )
        assert row["unread"] == 0
    finally:
        await close(alice, bob)


async def test_windows_and_moderators(server_factory) -> None:
    server = server_factory(edit_window=1, retract_window=1)
    alice, bob, carol = await friends(server, "alice", "bob", "carol")
    try:
        gid = (await alice.call("newgroup", name="mods"))["group_id"]
        for name in ("bob", "carol"):
            await alice.call("addgroupuser", group_id=gid, username=name)
        await alice.call("setgrouprole", group_id=gid, username="carol", role="admin")
        old = await bob.call("sendgroup", group_id=gid, text="old news")
        direct = await alice.call("send", to="bob", text="old direct")
        await asyncio.sleep(1.3)
        mid = old["message_id"]
        assert await code_of(bob.call("edit", message_id=mid, text="x")) == "edit_window_passed"
        assert await code_of(bob.call("retract", message_id=mid)) == "retract_window_passed"
        assert (
            await code_of(alice.call("retract", message_id=direct["message_id"]))
            == "retract_window_passed"
        )
        # The group's admin retracts any message of the group, at any time.
        assert await code_of(carol.call("retract", message_id=mid)) == "ok"
        # A plain member may not retract someone else's.
        fresh = await carol.call("sendgroup", group_id=gid, text="by carol")
        assert await code_of(bob.call("retract", message_id=fresh["message_id"])) == (
            "not_permitted"
        )
    finally:
        await close(alice, bob, carol)
    off = server_factory(edit_window=0)
    dave, erin = await friends(off, "dave", "erin")
    try:
        sent = await dave.call("send", to="erin", text="typo")
        assert await code_of(dave.call("edit", message_id=sent["message_id"], text="t")) == (
            "edit_window_passed"
        )
    finally:
        await close(dave, erin)


async def test_a_server_admin_retracts_anywhere(server: ServerProcess) -> None:
    from sqlalchemy import update

    alice, bob, root = await friends(server, "alice", "bob", "root")
    users = table("users")
    await db_execute(
        server.database_url,
        update(users).where(users.c.username == "root").values(is_admin=True),
    )
    try:
        sent = await alice.call("send", to="bob", text="needs moderation")
        assert await code_of(root.call("retract", message_id=sent["message_id"])) == "ok"
        page = (await bob.call("history", username="alice"))["messages"]
        assert page[0]["retracted"]
    finally:
        await close(alice, bob, root)


async def test_an_offline_member_learns_of_edits_in_order(server: ServerProcess) -> None:
    alice, bob = await friends(server, "alice", "bob")
    await bob.close()
    try:
        sent = await alice.call("send", to="bob", text="draft")
        await alice.call("edit", message_id=sent["message_id"], text="final")
        bob = server.client()
        await bob.connect()
        await bob.login("bob", "correct horse")
        seen, targets = [], []
        while len(seen) < 3:
            p = (await bob.next_event("message", timeout=10)).payload
            seen.append((p["type"], p["text"], p["replay"]))
            targets.append(p["target_id"])
        assert targets[1:] == [None, sent["message_id"]]
        # replayed in its current state, then the edit event itself
        assert seen[1:] == [("text", "final", True), ("edit", "final", True)]
    finally:
        await close(alice, bob)
