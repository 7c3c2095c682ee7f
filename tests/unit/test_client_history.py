"""The SDK's history, edit, receipt and search helpers, and edits applied to what it hands over.

Against the fake server of ``client_fakes``: each helper must send exactly
the protocol's fields and shape the answer; edit and retract events must
come out with ``change`` and ``target`` set from the messages the SDK has
seen; read marks must be batched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from client_fakes import (
    Envelope,
    FakeConn,
    FakeServer,
    change,
    client_factory,
    msg,
    running_server,
    wait_for,
)

from p2sp.client import Client, Event, RequestFailed
from p2sp.client.messages import MessageCache

ROW = msg(4, 1)
ANSWERS: dict[str, dict[str, Any]] = {
    "conversations": {
        "conversations": [
            {"conversation_id": 4, "kind": "direct", "peer": "alice", "unread": 2},
            "junk",
        ],
        "has_more": True,
    },
    "history": {
        "conversation_id": 4,
        "messages": [ROW, msg(4, 2, **{"from": "bob", "to": "alice", "status": "read"})],
        "has_more": False,
        "first_seq": 1,
    },
    "send": {"conversation_id": 4, "seq": 3, "message_id": 4003, "sent_at": 5},
    "sendgroup": {"conversation_id": 9, "seq": 7, "message_id": 9007, "sent_at": 6},
    "edit": {"conversation_id": 4, "seq": 4, "edited_at": 77},
    "retract": {"conversation_id": 4, "seq": 5},
    "edits": {"versions": [{"text": "a", "edited_at": None}, {"text": "b", "edited_at": 9}]},
    "read": {"unread": 3},
    "receipts": {"delivered": ["bob"], "read": [], "delivered_count": 1, "read_count": 0},
    "search": {"results": [{**ROW, "conversation_kind": "direct", "peer": "alice"}]},
}


async def answering(conn: FakeConn, req: Envelope, server: FakeServer) -> None:
    if req["type"] in ANSWERS:
        conn.respond(req, ANSWERS[req["type"]])
    else:
        await server.default(conn, req)


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with running_server() as srv:
        srv.on_request = lambda conn, req: answering(conn, req, srv)
        yield srv


@pytest.fixture
async def make_client(server: FakeServer) -> AsyncIterator[Callable[..., Client]]:
    async with client_factory(server) as make:
        yield make


async def logged_in(make_client: Callable[..., Client], **options: Any) -> Client:
    client = make_client(**options)
    await client.connect()
    await client.login("bob", "password1")
    return client


def sent(server: FakeServer, action: str) -> dict[str, Any]:
    return server.actions(action)[-1]["payload"]["data"]


# --- the requests ---------------------------------------------------------


async def test_history_helpers_send_the_protocol_fields(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client)
    page = await client.conversations()
    assert sent(server, "conversations") == {"limit": 50}  # no before, no before_id
    assert page == {
        "conversations": [ANSWERS["conversations"]["conversations"][0]],
        "has_more": True,
    }
    await client.conversations(limit=10, before=1234, before_id=4)
    assert sent(server, "conversations") == {"limit": 10, "before": 1234, "before_id": 4}

    page = await client.history(username="alice")
    assert sent(server, "history") == {"username": "alice", "limit": 50}
    assert page["conversation_id"] == 4 and page["first_seq"] == 1 and not page["has_more"]
    assert [m["seq"] for m in page["messages"]] == [1, 2]
    await client.history(conversation_id=4, before_seq=9, limit=5)
    assert sent(server, "history") == {"conversation_id": 4, "before_seq": 9, "limit": 5}
    await client.history(group_id=3, after_seq=2)
    assert sent(server, "history") == {"group_id": 3, "after_seq": 2, "limit": 50}

    assert await client.edit(4001, "new") == {"conversation_id": 4, "seq": 4, "edited_at": 77}
    assert sent(server, "edit") == {"message_id": 4001, "text": "new"}
    assert await client.retract(4001) == {"conversation_id": 4, "seq": 5}
    assert sent(server, "retract") == {"message_id": 4001}
    assert await client.edits(4001) == ANSWERS["edits"]["versions"]
    assert sent(server, "edits") == {"message_id": 4001}
    assert await client.read(4, 2) == 3
    assert sent(server, "read") == {"conversation_id": 4, "seq": 2}
    assert await client.receipts(4, 1) == ANSWERS["receipts"]
    assert sent(server, "receipts") == {"conversation_id": 4, "seq": 1}

    found = await client.search("你好")
    assert sent(server, "search") == {"query": "你好", "limit": 20}
    assert found["results"][0]["peer"] == "alice" and found["has_more"] is False
    await client.search("hi", conversation_id=4, sender="alice", before_id=4001, limit=5)
    assert sent(server, "search") == {
        "query": "hi",
        "conversation_id": 4,
        "from": "alice",
        "before_id": 4001,
        "limit": 5,
    }


async def test_replies_carry_reply_to_and_plain_sends_do_not(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client)
    await client.send("alice", "plain")
    assert "reply_to" not in sent(server, "send")
    await client.send("alice", "answer", reply_to=4001)
    data = sent(server, "send")
    assert data["reply_to"] == 4001 and data["to"] == "alice" and data["client_msg_id"]
    await client.sendgroup(9, "answer", reply_to=9001)
    assert sent(server, "sendgroup")["reply_to"] == 9001


@pytest.mark.parametrize(
    "code",
    [
        "no_such_conversation",
        "no_such_message",
        "edit_window_passed",
        "retract_window_passed",
        "message_retracted",
    ],
)
async def test_new_refusals_raise_with_their_code(
    server: FakeServer, make_client: Callable[..., Client], code: str
) -> None:
    async def refuse(conn: FakeConn, req: Envelope) -> None:
        if req["type"] in ("history", "edit", "retract"):
            conn.respond(req, status="fail", code=code, message="no")
        else:
            await server.default(conn, req)

    server.on_request = refuse
    client = await logged_in(make_client)
    for call in (client.history(username="x"), client.edit(1, "t"), client.retract(1)):
        with pytest.raises(RequestFailed) as failed:
            await call
        assert failed.value.code == code


# --- edits and retractions applied to what the SDK handed over ----------------


async def test_an_edit_event_carries_the_edited_message(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client)
    conn = server.conns[0]
    conn.push("message", msg(4, 1, text="first"))
    plain = await client.next_event("message")
    assert plain.change is None and plain.target is None
    conn.push("message", change(4, 2, 1, "first, fixed"))
    edit = await client.next_event("message")
    assert edit.change == "edit"
    assert edit.payload["target_id"] == 4001
    assert edit.target is not None
    assert edit.target["text"] == "first, fixed"
    assert edit.target["edited_at"] == 1_700_000_000_002
    assert edit.target["seq"] == 1  # the target, not the edit event
    current = client.message(4001)
    assert current is not None and current["text"] == "first, fixed"


async def test_a_retraction_erases_the_message_and_quotes_of_it(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client)
    conn = server.conns[0]
    conn.push("message", msg(4, 1, text="oops"))
    quote = {"message_id": 4001, "seq": 1, "from": "alice", "text": "oops"}
    conn.push("message", msg(4, 2, text="re", reply_to=quote))
    conn.push("message", change(4, 3, 1))
    events = [await client.next_event("message") for _ in range(3)]
    retraction = events[2]
    assert retraction.change == "retract"
    assert retraction.target is not None
    assert retraction.target["retracted"] is True and retraction.target["text"] == ""
    reply = client.message(4002)
    assert reply is not None and reply["reply_to"]["text"] == ""
    assert events[1].payload["reply_to"]["text"] == "oops"  # what was handed over stays


async def test_a_change_of_an_unseen_message_has_no_target(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client)
    server.conns[0].push("message", change(4, 7, 3, "new"))
    event = await client.next_event("message")
    assert event.change == "edit" and event.target is None
    assert client.message(4003) is None


async def test_a_replayed_older_edit_does_not_take_the_text_back(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    """After a login the target comes in its current state, then the edits that led there."""
    client = await logged_in(make_client)
    conn = server.conns[0]
    latest = 1_700_000_000_003
    conn.push("message", msg(4, 1, text="third", edited_at=latest, replay=True))
    conn.push("message", change(4, 2, 1, "second", replay=True))
    conn.push("message", change(4, 3, 1, "third", replay=True))
    events = [await client.next_event("message") for _ in range(3)]
    assert events[1].target is not None and events[1].target["text"] == "third"
    assert events[2].target is not None and events[2].target["text"] == "third"
    current = client.message(4001)
    assert current is not None and current["edited_at"] == latest


async def test_history_and_own_sends_are_remembered_and_own_changes_applied(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client)
    await client.history(username="alice")
    assert client.message(4001) == ROW
    server.conns[0].push("message", change(4, 3, 1, "edited later"))
    event = await client.next_event("message")
    assert event.target is not None and event.target["text"] == "edited later"

    await client.send("alice", "mine", reply_to=4001)
    own = client.message(4003)
    assert own is not None
    assert own["from"] == "bob" and own["to"] == "alice" and own["text"] == "mine"
    assert own["reply_to"] == {
        "message_id": 4001,
        "seq": 1,
        "from": "alice",
        "text": "edited later",
    }
    await client.edit(4003, "mine, fixed")
    own = client.message(4003)
    assert own is not None and own["text"] == "mine, fixed" and own["edited_at"] == 77
    await client.retract(4003)
    own = client.message(4003)
    assert own is not None and own["retracted"] is True and own["text"] == ""


async def test_duplicate_changes_are_dropped_like_any_message(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client, ack_interval=60.0)
    conn = server.conns[0]
    conn.push("message", msg(4, 1))
    conn.push("message", change(4, 2, 1, "x"))
    conn.push("message", change(4, 2, 1, "x"))
    conn.push("presence", {"username": "alice", "online": True})
    seen: list[Event] = []
    async with asyncio.timeout(3):
        async for event in client.events():
            seen.append(event)
            if event.type == "presence":
                break
    assert [e.change for e in seen if e.type == "message"] == [None, "edit"]
    assert client.pending_acks == {4: 2}


async def test_receipts_pass_through(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client)
    receipt = {"conversation_id": 4, "username": "alice", "delivered_seq": 3, "read_seq": 2}
    server.conns[0].push("receipt", receipt)
    event = await client.next_event("receipt")
    assert event.payload == receipt and event.change is None


async def test_a_login_as_someone_else_forgets_the_messages(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client)
    server.conns[0].push("message", msg(4, 1))
    await client.next_event("message")
    assert client.message(4001) is not None
    await client.login("bob", "password1")
    assert client.message(4001) is not None  # the same user: kept
    await client.login("carol", "password1")
    assert client.message(4001) is None


def test_the_cache_is_bounded_oldest_first() -> None:
    cache = MessageCache(2)
    cache.remember([msg(4, 1), msg(4, 2), msg(4, 3)])
    assert cache.get(4001) is None and len(cache) == 2
    assert cache.get(4003) is not None
    cache.remember([change(4, 4, 3, "x")])  # changes are applied, never kept
    assert cache.get(4004) is None
    assert MessageCache(0).observe(msg(4, 1)) == (None, None)


# --- read marks -------------------------------------------------------------


async def test_read_marks_are_batched_per_conversation(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client, read_interval=0.05)
    client.mark_read(4, 2)
    client.mark_read(4, 5)
    client.mark_read(4, 3)  # lower: nothing
    client.mark_read(9, 1)
    assert client.pending_reads == {4: 5, 9: 1}
    await wait_for(lambda: len(server.actions("read")) == 2)
    assert sorted((r["payload"]["data"]["conversation_id"], r["payload"]["data"]["seq"])
                  for r in server.actions("read")) == [(4, 5), (9, 1)]  # fmt: skip
    assert client.read_marked(4) == 5
    client.mark_read(4, 5)  # already sent: nothing more
    await asyncio.sleep(0.1)
    assert len(server.actions("read")) == 2


async def test_flush_reads_and_close_send_pending_marks(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client, read_interval=60.0)
    client.mark_read(4, 2)
    await client.flush_reads()
    assert sent(server, "read") == {"conversation_id": 4, "seq": 2}
    client.mark_read(4, 3)
    await client.close()
    assert sent(server, "read") == {"conversation_id": 4, "seq": 3}


async def test_a_refused_read_mark_is_dropped_quietly(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def refuse(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "read":
            conn.respond(req, status="error", code="invalid_request", message="past the last")
        else:
            await server.default(conn, req)

    server.on_request = refuse
    client = await logged_in(make_client, read_interval=60.0)
    client.mark_read(4, 99)
    await client.flush_reads()
    assert client.pending_reads == {} and client.read_marked(4) == 0


async def test_read_marks_survive_a_reconnect(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = await logged_in(make_client, auto_reconnect=True, read_interval=0.2)
    client.mark_read(4, 2)
    server.conns[0].close()
    await client.next_event("reconnected")
    await wait_for(lambda: len(server.conns) == 2 and bool(server.conns[1].requests))
    await wait_for(lambda: any(r["type"] == "read" for r in server.conns[1].requests))
    assert client.read_marked(4) == 2 and client.pending_reads == {}
