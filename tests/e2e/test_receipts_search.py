"""Read cursors, receipt events and search against the real server."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ServerProcess
from tests.e2e.test_history import close, code_of, friends

pytestmark = pytest.mark.timeout(180)


async def receipt(client, timeout: float = 10.0) -> dict:
    return (await client.next_event("receipt", timeout=timeout)).payload


async def test_read_moves_both_cursors_and_tells_the_peer(server: ServerProcess) -> None:
    alice, bob = await friends(server, "alice", "bob")
    try:
        sent = [await alice.call("send", to="bob", text=f"n{i}") for i in range(5)]
        cid = sent[0]["conversation_id"]
        assert (await bob.call("read", conversation_id=cid, seq=3)) == {"unread": 2}
        got = await receipt(alice)
        assert got["conversation_id"] == cid and got["username"] == "bob"
        assert got["read_seq"] == 3 and got["delivered_seq"] >= 3
        # Backwards changes nothing; past the last message is refused.
        assert (await bob.call("read", conversation_id=cid, seq=1)) == {"unread": 2}
        assert await code_of(bob.call("read", conversation_id=cid, seq=6)) == "invalid_request"
        assert await code_of(bob.call("read", conversation_id=cid, seq=0)) == "invalid_request"
        eve = (await friends(server, "eve"))[0]
        assert await code_of(eve.call("read", conversation_id=cid, seq=1)) == (
            "no_such_conversation"
        )
        assert await code_of(eve.call("receipts", conversation_id=cid, seq=1)) == (
            "no_such_conversation"
        )
        await eve.close()
        seen = await alice.call("receipts", conversation_id=cid, seq=3)
        assert seen["read"] == ["bob"] and seen["read_count"] == 1
        assert (await alice.call("receipts", conversation_id=cid, seq=5))["read"] == []
        status = [
            m["status"] for m in (await alice.call("history", conversation_id=cid))["messages"]
        ]
        assert status[:3] == ["read"] * 3 and set(status[3:]) <= {"delivered", "sent"}
    finally:
        await close(alice, bob)


async def test_group_receipts_only_in_small_groups(server_factory) -> None:
    server = server_factory(receipt_group_limit=2)
    alice, bob, carol = await friends(server, "alice", "bob", "carol")
    try:
        small = (await alice.call("newgroup", name="pair"))["group_id"]
        await alice.call("addgroupuser", group_id=small, username="bob")
        big = (await alice.call("newgroup", name="trio"))["group_id"]
        for name in ("bob", "carol"):
            await alice.call("addgroupuser", group_id=big, username=name)
        s1 = await alice.call("sendgroup", group_id=big, text="to three")
        await bob.call("read", conversation_id=big, seq=s1["seq"])
        s2 = await alice.call("sendgroup", group_id=small, text="to two")
        await bob.call("read", conversation_id=small, seq=s2["seq"])
        got = await receipt(alice)
        assert got["conversation_id"] == small  # none for the group of three
    finally:
        await close(alice, bob, carol)


async def test_search_in_every_script_within_what_the_user_may_see(
    server: ServerProcess,
) -> None:
    alice, bob, carol = await friends(server, "alice", "bob", "carol")
    try:
        await bob.call("add", username="carol")
        await alice.call("send", to="bob", text="大家你好啊")
        await carol.call("send", to="alice", text="carol says 你好")
        await carol.call("send", to="bob", text="你好 from carol")
        secret = (await alice.call("newgroup", name="secret"))["group_id"]
        await alice.call("addgroupuser", group_id=secret, username="carol")
        await alice.call("sendgroup", group_id=secret, text="你好 secret plans")
        await alice.call("send", to="bob", text='Hello World 100% _done_ it\'s "quoted"')
        found = (await bob.call("search", query="你好"))["results"]
        assert {r["text"] for r in found} == {"大家你好啊", "你好 from carol"}
        assert {r["peer"] for r in found} == {"alice", "carol"}
        assert all(r["conversation_kind"] == "direct" for r in found)
        assert (await bob.call("search", query="大家你好"))["results"][0]["text"] == "大家你好啊"
        assert len((await bob.call("search", query="hello world"))["results"]) == 1
        for literal in ("100%", "_done_", "it's", '"quoted"', "%", "_", "'", '"'):
            hits = (await bob.call("search", query=literal))["results"]
            assert len(hits) == 1, literal
        for nothing in ("1000%", "x_done", "NEAR", "hello*", "AND OR", "%%", "a%b"):
            assert (await bob.call("search", query=nothing))["results"] == [], nothing
        found = (await alice.call("search", query="你好", **{"from": "carol"}))["results"]
        assert {r["text"] for r in found} == {"carol says 你好"}
        group = (await alice.call("search", query="secret plans"))["results"]
        assert group[0]["conversation_kind"] == "group"
        assert group[0]["conversation_name"] == "secret"
        assert await code_of(bob.call("search", query="")) == "invalid_request"
        assert await code_of(bob.call("search", query="x" * 201)) == "invalid_request"
        assert await code_of(bob.call("search", query="x", conversation_id=secret)) == (
            "no_such_conversation"
        )
        # Paging: newest first, no hit twice.
        for i in range(5):
            await alice.call("send", to="bob", text=f"page marker {i}")
        for query in ("page marker", "rk"):  # through the index, and the short scan
            seen, before = [], None
            while True:
                page = await bob.call("search", query=query, limit=2, before_id=before)
                seen += [r["text"] for r in page["results"]]
                if not page["has_more"]:
                    break
                before = page["results"][-1]["message_id"]
            assert seen == [f"page marker {i}" for i in reversed(range(5))], query
    finally:
        await close(alice, bob, carol)
