"""The SDK against a tiny fake server speaking real frames (``client_fakes``).

The fake is scripted per test (``on_request``) so each test can make the
server misbehave in exactly one way: answer out of order, drop the
connection, kick, go silent, send garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from client_fakes import (
    Envelope,
    FakeConn,
    FakeServer,
    ack_payloads,
    client_factory,
    msg,
    positions,
    running_server,
    types_until,
    wait_for,
)

from p2sp.client.client import (
    Client,
    ConnectionLost,
    Event,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from p2sp.common.exceptions import ChatError


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with running_server() as srv:
        yield srv


@pytest.fixture
async def make_client(server: FakeServer) -> AsyncIterator[Callable[..., Client]]:
    async with client_factory(server) as make:
        yield make


# --- requests -------------------------------------------------------------


async def test_call_returns_ok_data(make_client: Callable[..., Client]) -> None:
    async with make_client() as client:
        assert client.connected
        assert await client.call("echo", x=1, name="bob") == {
            "echo": {"x": 1, "name": "bob"},
            "token": None,
        }
        assert await client.call("ping") == {}


async def test_fail_and_error_raise_with_code(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "add":
            conn.respond(req, status="fail", code="no_such_user", message="no user named bob")
        else:
            conn.respond(
                req, {"field": "data.x"}, status="error", code="invalid_request", message="bad x"
            )

    server.on_request = behaviour
    async with make_client() as client:
        with pytest.raises(RequestFailed) as failed:
            await client.call("add", username="bob")
        assert failed.value.code == "no_such_user"
        assert failed.value.message == "no user named bob"
        assert failed.value.status == "fail"
        assert isinstance(failed.value, ChatError)

        with pytest.raises(RequestError) as error:
            await client.call("newgroup", x="?")
        assert (error.value.code, error.value.status) == ("invalid_request", "error")
        assert error.value.data == {"field": "data.x"}
        assert client.connected  # refusals never close the connection


async def test_responses_matched_by_id_out_of_order(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    held: list[Envelope] = []

    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        held.append(req)
        if len(held) == 3:
            for r in reversed(held):  # answer the last request first
                conn.respond(r, {"n": r["payload"]["data"]["n"]})

    server.on_request = behaviour
    async with make_client() as client:
        results = await asyncio.gather(*(client.call("slow", n=n) for n in (1, 2, 3)))
    assert results == [{"n": 1}, {"n": 2}, {"n": 3}]
    ids = [r["payload"]["id"] for r in held]
    assert len(set(ids)) == 3 and all(isinstance(i, int) for i in ids)


async def test_login_stores_session_and_sends_token(make_client: Callable[..., Client]) -> None:
    async with make_client() as client:
        assert await client.reg("alice", "password1") == 7
        data = await client.login("alice", "password1")
        assert data == {"auth_token": "tok-1", "user_id": 7, "username": "alice", "is_admin": False}
        assert (client.auth_token, client.username, client.user_id) == ("tok-1", "alice", 7)
        assert client.is_admin is False
        assert (await client.call("echo"))["token"] == "tok-1"
        await client.logout()
        assert client.auth_token is None and client.username is None
        assert (await client.call("echo"))["token"] is None


async def test_admin_flag(make_client: Callable[..., Client]) -> None:
    async with make_client() as client:
        await client.login("root", "password1")
        assert client.is_admin is True


async def test_request_timeout_keeps_connection(make_client: Callable[..., Client]) -> None:
    async with make_client(request_timeout=0.2) as client:
        with pytest.raises(RequestTimeout):
            await client.call("hang")
        assert client.connected
        await client.ping()


# --- events ---------------------------------------------------------------


async def test_events_iterate_in_arrival_order(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        conn.respond(req)
        for seq in range(1, 6):
            conn.push("message", {"seq": seq, "text": f"m{seq}"})
        conn.push("sync_done", {"count": 5})

    server.on_request = behaviour
    async with make_client() as client:
        await client.call("go")
        events = await types_until(client, "sync_done")
    assert [e.payload.get("seq") for e in events[:-1]] == [1, 2, 3, 4, 5]
    assert events[-1] == Event("sync_done", {"count": 5}, events[-1].timestamp)
    assert all(isinstance(e.timestamp, int) and e.timestamp > 0 for e in events)


async def test_next_event_skips_other_types(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        conn.push("presence", {"username": "bob", "online": True})
        conn.push("message", {"seq": 1})
        conn.respond(req)

    server.on_request = behaviour
    async with make_client() as client:
        await client.call("go")
        event = await client.next_event("message")
        assert event.payload == {"seq": 1}
        with pytest.raises(asyncio.TimeoutError):
            await client.next_event("presence", timeout=0.1)  # it was discarded


# --- losing the connection ------------------------------------------------


async def test_drop_fails_pending_call_and_stops(make_client: Callable[..., Client]) -> None:
    client = make_client()
    await client.connect()
    pending = asyncio.create_task(client.call("hang"))
    await asyncio.sleep(0.05)
    with pytest.raises(ConnectionLost):
        await client.call("drop")
    with pytest.raises(ConnectionLost):
        await pending
    event = await client.next_event("disconnected")
    assert event.payload["reason"] == "connection_closed"
    assert event.payload["will_reconnect"] is False
    assert not client.connected
    with pytest.raises(ConnectionLost):
        await client.call("ping")
    # Stopped for good: the iterator ends instead of hanging.
    assert [e async for e in client.events()] == []


async def test_close_is_idempotent_and_fails_pending(make_client: Callable[..., Client]) -> None:
    client = make_client(auto_reconnect=True)
    await client.connect()
    pending = asyncio.create_task(client.call("hang"))
    await asyncio.sleep(0.05)
    await client.close()
    await client.close()
    with pytest.raises(ConnectionLost):
        await pending
    events = [e async for e in client.events()]
    assert [e.type for e in events] == ["disconnected"]
    assert events[0].payload["will_reconnect"] is False
    assert not client.connected and not client.reconnecting


async def test_reconnect_and_relogin_after_server_closes(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    first = server.conns[0]
    first.close()
    events = await types_until(client, "reconnected")
    assert [e.type for e in events] == ["disconnected", "reconnected"]
    assert events[0].payload["will_reconnect"] is True
    assert events[1].payload == {"relogged_in": True, "username": "alice"}
    logins = server.actions("login")
    assert len(logins) == 2
    assert logins[1]["payload"]["data"] == {"username": "alice", "password": "password1"}
    assert client.auth_token == "tok-2"
    assert (await client.call("echo"))["token"] == "tok-2"


async def test_reconnected_comes_before_replayed_messages(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await server.default(conn, req)
        if req["type"] == "login":
            conn.push("message", {"seq": 1, "replay": True})
            conn.push("sync_done", {"count": 1})

    server.on_request = behaviour
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    await client.next_event("sync_done")
    server.conns[0].close()
    events = await types_until(client, "sync_done")
    assert [e.type for e in events] == ["disconnected", "reconnected", "message", "sync_done"]


async def test_reconnect_after_shutdown_kick(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    conn = server.conns[0]
    conn.push("kicked", {"reason": "shutdown"})
    conn.close()
    events = await types_until(client, "reconnected")
    assert [e.type for e in events] == ["kicked", "disconnected", "reconnected"]
    assert events[1].payload["reason"] == "shutdown"
    assert events[2].payload["relogged_in"] is True


async def test_reconnect_without_session_does_not_log_in(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    await client.logout()
    server.conns[0].close()
    event = await client.next_event("reconnected")
    assert event.payload["relogged_in"] is False
    assert len(server.actions("login")) == 1


async def test_failed_relogin_is_reported(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "login" and server.logins >= 1:
            conn.respond(req, status="fail", code="user_blocked", message="blocked")
            return
        await server.default(conn, req)

    server.on_request = behaviour
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    server.conns[0].close()
    event = await client.next_event("reconnected")
    assert event.payload["relogged_in"] is False
    assert event.payload["code"] == "user_blocked"
    assert client.auth_token is None
    assert client.connected


@pytest.mark.parametrize("reason", ["logged_in_elsewhere", "blocked"])
async def test_no_reconnect_after_final_kick(
    reason: str, server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    conn = server.conns[0]
    conn.push("kicked", {"reason": reason})
    conn.close()
    events = [e async for e in client.events()]  # ends: the client stopped
    assert [e.type for e in events] == ["kicked", "disconnected"]
    assert events[0].payload == {"reason": reason}
    assert events[1].payload["will_reconnect"] is False
    assert client.auth_token is None
    await asyncio.sleep(0.2)  # several reconnect delays
    assert len(server.conns) == 1
    assert not client.connected and not client.reconnecting


async def test_error_event_then_disconnected(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    await client.connect()
    await asyncio.sleep(0.05)
    conn = server.conns[0]
    conn.push("error", {"code": "bad_checksum", "message": "payload checksum does not match"})
    conn.close()
    events = [e async for e in client.events()]
    assert [e.type for e in events] == ["error", "disconnected"]
    assert events[1].payload["reason"] == "bad_checksum"


async def test_garbage_from_server_closes_connection(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    await client.connect()
    await asyncio.sleep(0.05)
    server.conns[0].writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    event = await client.next_event("disconnected")
    assert event.payload["reason"] == "bad_magic"
    assert not client.connected


async def test_reconnect_backs_off_until_server_is_back(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(auto_reconnect=True, reconnect_delay=0.02, reconnect_max_delay=0.1)
    await client.connect()
    await client.login("alice", "password1")
    port = server.port
    await server.stop()
    assert (await client.next_event("disconnected")).payload["will_reconnect"] is True
    await asyncio.sleep(0.3)  # several refused attempts
    assert client.reconnecting and not client.connected
    await server.start(port)
    event = await client.next_event("reconnected", timeout=3.0)
    assert event.payload["relogged_in"] is True


async def test_connect_refused_raises_oserror() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    with pytest.raises(OSError):
        await Client("127.0.0.1", port).connect()


# --- keepalive ------------------------------------------------------------


async def test_keepalive_pings(server: FakeServer, make_client: Callable[..., Client]) -> None:
    async with make_client(ping_interval=0.05):
        await asyncio.sleep(0.4)
    assert len(server.actions("ping")) >= 3


async def test_unanswered_keepalive_drops_and_reconnects(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    silent = True

    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "ping" and silent:
            return
        await server.default(conn, req)

    server.on_request = behaviour
    client = make_client(auto_reconnect=True, ping_interval=0.05, request_timeout=0.1)
    await client.connect()
    event = await client.next_event("disconnected")
    assert event.payload["reason"] == "ping_timeout"
    silent = False
    await client.next_event("reconnected")
    with contextlib.suppress(asyncio.TimeoutError):
        await client.next_event("disconnected", timeout=0.3)
        raise AssertionError("dropped again although pings are answered")


# --- friends and direct messages ------------------------------------------


async def test_friend_helpers_send_the_protocol_fields(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        data = req["payload"].get("data", {})
        if req["type"] == "add":
            conn.respond(req, {"username": data["username"], "online": True})
        elif req["type"] == "friends":
            friend = {"username": "bob", "online": False, "status": "offline", "last_seen": 5}
            conn.respond(req, {"friends": [friend]})
        elif req["type"] == "send":
            conn.respond(
                req, {"conversation_id": 3, "seq": 1, "message_id": 9, "sent_at": 1_700_000_000_000}
            )
        else:
            await server.default(conn, req)

    server.on_request = behaviour
    async with make_client() as client:
        await client.login("alice", "password1")
        assert await client.add("bob") == {"username": "bob", "online": True}
        assert await client.friends() == [
            {"username": "bob", "online": False, "status": "offline", "last_seen": 5}
        ]
        result = await client.send("bob", "hi  there")
        assert result == {
            "conversation_id": 3,
            "seq": 1,
            "message_id": 9,
            "sent_at": 1_700_000_000_000,
        }
        await client.send("bob", "again", client_msg_id="my-id-1")
        await client.send("bob", "third")
    assert server.actions("add")[0]["payload"]["data"] == {"username": "bob"}
    assert server.actions("friends")[0]["payload"]["data"] == {}
    sends = [r["payload"]["data"] for r in server.actions("send")]
    assert sends[0]["to"] == "bob" and sends[0]["text"] == "hi  there"
    generated = [sends[0]["client_msg_id"], sends[2]["client_msg_id"]]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in generated)  # uuid4 hex
    assert generated[0] != generated[1]
    assert sends[1]["client_msg_id"] == "my-id-1"
    assert all(r["payload"]["auth_token"] == "tok-1" for r in server.actions("send"))


async def test_send_refusal_raises(server: FakeServer, make_client: Callable[..., Client]) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "send":
            conn.respond(req, status="fail", code="not_friends", message="bob is not your friend")
        else:
            await server.default(conn, req)

    server.on_request = behaviour
    async with make_client(auto_reconnect=True) as client:
        await client.login("alice", "password1")
        with pytest.raises(RequestFailed) as failed:
            await client.send("bob", "hi")
    assert failed.value.code == "not_friends"
    assert len(server.actions("send")) == 1  # refusals are not retried


async def test_send_is_retried_once_after_reconnect_with_same_id(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    sends: list[Envelope] = []

    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "send":
            sends.append(req)
            if len(sends) == 1:
                conn.close()  # stored, but the response never makes it
                return
            conn.respond(req, {"conversation_id": 3, "seq": 1, "message_id": 9, "sent_at": 1})
        else:
            await server.default(conn, req)

    server.on_request = behaviour
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    result = await client.send("bob", "hello")
    assert result["seq"] == 1
    assert len(sends) == 2
    first, second = (r["payload"]["data"] for r in sends)
    assert first == second  # same to, text and client_msg_id
    assert sends[1]["payload"]["auth_token"] == "tok-2"  # after the re-login
    assert len(server.conns) == 2


async def test_send_is_retried_only_once(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "send":
            conn.close()
        else:
            await server.default(conn, req)

    server.on_request = behaviour
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    with pytest.raises(ConnectionLost):
        await client.send("bob", "hello", client_msg_id="m-1")
    assert [r["payload"]["data"]["client_msg_id"] for r in server.actions("send")] == [
        "m-1",
        "m-1",
    ]


async def test_send_without_auto_reconnect_is_not_retried(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "send":
            conn.close()
        else:
            await server.default(conn, req)

    server.on_request = behaviour
    client = make_client()
    await client.connect()
    await client.login("alice", "password1")
    with pytest.raises(ConnectionLost):
        await client.send("bob", "hello")
    assert len(server.actions("send")) == 1


async def test_send_not_retried_when_relogin_is_refused(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "send":
            conn.close()
        elif req["type"] == "login" and server.logins >= 1:
            conn.respond(req, status="fail", code="user_blocked", message="blocked")
        else:
            await server.default(conn, req)

    server.on_request = behaviour
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    async with asyncio.timeout(3):
        with pytest.raises(ConnectionLost):
            await client.send("bob", "hello")
    assert len(server.actions("send")) == 1


async def test_explicit_ack_shape(server: FakeServer, make_client: Callable[..., Client]) -> None:
    async with make_client(auto_ack=False) as client:
        await client.login("bob", "password1")
        await client.ack(4, 9)
        await client.ack_many([(4, 2), (5, 1), {"conversation_id": 4, "seq": 11}, (5, 3)])
        await client.ack_many([(c, 1) for c in range(1, 2502)])
        await client.ack_many([])
    acks = ack_payloads(server)
    assert acks[0] == [{"conversation_id": 4, "seq": 9}]
    assert acks[1] == [{"conversation_id": 4, "seq": 11}, {"conversation_id": 5, "seq": 3}]
    assert [len(a) for a in acks[2:]] == [1000, 1000, 501]  # the server's limit per request
    assert all(r["payload"]["auth_token"] == "tok-1" for r in server.actions("ack"))


async def test_duplicates_are_dropped_by_conversation_and_seq(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await server.default(conn, req)
        if req["type"] == "login":
            for conv, seq in [(1, 1), (1, 2), (2, 1), (1, 2), (1, 1), (2, 1), (1, 5), (2, 4)]:
                conn.push("message", msg(conv, seq, replay=True))
            conn.push("sync_done", {"count": 8})
            conn.push("message", msg(1, 5))  # live copy of a replayed one
            conn.push("message", msg(1, 6))
            conn.push("presence", {"username": "alice", "online": True, "status": "online"})

    server.on_request = behaviour
    async with make_client(auto_ack=False) as client:
        assert client.last_seq(1) == 0
        await client.login("bob", "password1")
        events = await types_until(client, "presence")
        assert positions(events) == [(1, 1), (1, 2), (2, 1), (1, 5), (2, 4), (1, 6)]
        assert [e.type for e in events].count("sync_done") == 1
        assert (client.last_seq(1), client.last_seq(2), client.last_seq(3)) == (6, 4, 0)


async def test_duplicates_dropped_across_reconnects_and_same_user_logins(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await server.default(conn, req)
        if req["type"] == "login":
            # Nothing was acked: every login replays everything, plus one new.
            for seq in range(1, server.logins + 2):
                conn.push("message", msg(1, seq, replay=True))
            conn.push("sync_done", {"count": server.logins + 1})

    server.on_request = behaviour
    client = make_client(auto_reconnect=True, auto_ack=False)
    await client.connect()
    await client.login("bob", "password1")
    assert positions(await types_until(client, "sync_done")) == [(1, 1), (1, 2)]
    server.conns[0].close()
    assert positions(await types_until(client, "sync_done")) == [(1, 3)]
    await client.logout()
    await client.login("BOB", "password1")  # the same user, spelled otherwise
    assert positions(await types_until(client, "sync_done")) == [(1, 4)]
    assert client.last_seq(1) == 4


async def test_login_as_another_user_resets_seqs(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await server.default(conn, req)
        if req["type"] == "login":
            conn.push("message", msg(1, 3))
            conn.push("sync_done", {"count": 1})

    server.on_request = behaviour
    async with make_client(auto_ack=False) as client:
        await client.login("bob", "password1")
        assert positions(await types_until(client, "sync_done")) == [(1, 3)]
        await client.logout()
        await client.login("carol", "password1")
        assert positions(await types_until(client, "sync_done")) == [(1, 3)]  # carol's own
        assert client.last_seq(1) == 3


async def test_auto_ack_batches_highest_seq_per_conversation(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await server.default(conn, req)
        if req["type"] == "go":
            for seq in range(1, 6):
                conn.push("message", msg(1, seq))
            for seq in (2, 3, 7):  # gaps: this user's own sends take seqs too
                conn.push("message", msg(2, seq))
            conn.push("presence", {"username": "alice", "online": True, "status": "online"})

    server.on_request = behaviour
    async with make_client(ack_interval=0.1) as client:
        await client.login("bob", "password1")
        await client.call("go")
        events = await types_until(client, "presence")
        assert len(positions(events)) == 8
        await wait_for(lambda: bool(server.actions("ack")))
        await asyncio.sleep(0.3)  # no second request for the same messages
        assert ack_payloads(server) == [
            [{"conversation_id": 1, "seq": 5}, {"conversation_id": 2, "seq": 7}]
        ]
        assert server.actions("ack")[0]["payload"]["auth_token"] == "tok-1"
        assert client.pending_acks == {}


async def test_messages_are_acked_only_once_taken_from_the_queue(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await server.default(conn, req)
        if req["type"] == "go":
            conn.push("message", msg(1, 1))
            conn.push("message", msg(1, 2))
            conn.push("presence", {"username": "alice", "online": True, "status": "online"})

    server.on_request = behaviour
    async with make_client(ack_interval=0.05) as client:
        await client.login("bob", "password1")
        await client.call("go")
        await asyncio.sleep(0.3)
        assert server.actions("ack") == []  # queued, not yet seen by the application
        first = await client.next_event()
        assert first.payload["seq"] == 1
        await wait_for(lambda: bool(server.actions("ack")))
        assert ack_payloads(server) == [[{"conversation_id": 1, "seq": 1}]]
        # Discarded while looking for another type: handed over, so acked.
        await client.next_event("presence")
        await wait_for(lambda: len(server.actions("ack")) == 2)
        assert ack_payloads(server)[1] == [{"conversation_id": 1, "seq": 2}]


async def test_sync_done_flushes_acks_at_once(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await server.default(conn, req)
        if req["type"] == "login":
            for seq in range(1, 4):
                conn.push("message", msg(1, seq, replay=True))
            conn.push("sync_done", {"count": 3})

    server.on_request = behaviour
    async with make_client(ack_interval=30) as client:
        await client.login("bob", "password1")
        await client.next_event("sync_done")
        await wait_for(lambda: bool(server.actions("ack")), timeout=1.0)
        assert ack_payloads(server) == [[{"conversation_id": 1, "seq": 3}]]


async def test_ack_flush_at_batch_size(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await server.default(conn, req)
        if req["type"] == "go":
            for seq in range(1, 251):
                conn.push("message", msg(1, seq))

    server.on_request = behaviour
    async with make_client(ack_interval=30) as client:
        await client.login("bob", "password1")
        await client.call("go")
        for _ in range(199):
            await client.next_event("message")
        await asyncio.sleep(0.2)
        assert server.actions("ack") == []
        await client.next_event("message")  # the 200th
        await wait_for(lambda: bool(server.actions("ack")), timeout=1.0)
        assert ack_payloads(server)[0] == [{"conversation_id": 1, "seq": 200}]
        for _ in range(50):
            await client.next_event("message")
        await asyncio.sleep(0.2)
        assert len(server.actions("ack")) == 1
        assert client.pending_acks == {1: 250}
    # close() flushed the rest
    assert ack_payloads(server)[-1] == [{"conversation_id": 1, "seq": 250}]


async def test_close_flushes_pending_acks(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await server.default(conn, req)
        if req["type"] == "go":
            conn.push("message", msg(8, 4))

    server.on_request = behaviour
    client = make_client(ack_interval=30)
    await client.connect()
    await client.login("bob", "password1")
    await client.call("go")
    await client.next_event("message")
    assert server.actions("ack") == []
    await client.close()
    assert ack_payloads(server) == [[{"conversation_id": 8, "seq": 4}]]


async def test_no_acks_with_auto_ack_off(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await server.default(conn, req)
        if req["type"] == "login":
            for seq in range(1, 4):
                conn.push("message", msg(1, seq, replay=True))
            conn.push("message", msg(1, 2, replay=True))  # a duplicate, dropped but not acked
            conn.push("sync_done", {"count": 3})

    server.on_request = behaviour
    client = make_client(auto_ack=False, ack_interval=0.01)
    await client.connect()
    await client.login("bob", "password1")
    assert len(positions(await types_until(client, "sync_done"))) == 3
    await asyncio.sleep(0.1)
    await client.close()
    assert server.actions("ack") == []
    assert client.pending_acks == {}


async def test_duplicates_are_acked_again(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    """A message comes back when our ack was lost: ack it again, show it never."""
    ack_drops = 1

    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        nonlocal ack_drops
        if req["type"] == "ack" and ack_drops:
            ack_drops -= 1
            conn.close()  # the ack never arrives
            return
        await server.default(conn, req)
        if req["type"] == "login":
            conn.push("message", msg(1, 1, replay=True))
            conn.push("message", msg(1, 2, replay=True))
            conn.push("sync_done", {"count": 2})

    server.on_request = behaviour
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("bob", "password1")
    first = await types_until(client, "sync_done")
    assert positions(first) == [(1, 1), (1, 2)]
    # The flush on sync_done kills the connection; the re-login replays both.
    events = await types_until(client, "sync_done")
    assert [e.type for e in events] == ["disconnected", "reconnected", "sync_done"]
    await wait_for(lambda: len(server.actions("ack")) >= 2)
    await client.close()
    acked = ack_payloads(server)
    assert acked[0] == [{"conversation_id": 1, "seq": 2}]
    assert acked[-1] == [{"conversation_id": 1, "seq": 2}]
    assert server.actions("ack")[-1]["payload"]["auth_token"] == "tok-2"


# --- groups, rooms and administration -------------------------------------

GROUP_ROW = {
    "group_id": 3,
    "name": "ops",
    "creator": "alice",
    "online": 1,
    "total": 2,
    "role": "owner",
    "blocked": False,
    "public": False,
}
USER_ROW = {"username": "bob", "blocked": False, "online": True, "is_admin": False, "last_seen": 5}


async def group_server(conn: FakeConn, req: Envelope, server: FakeServer) -> None:
    """The ok data of every group and admin action, shaped as the server sends it."""
    data = req["payload"].get("data", {})
    answers: dict[str, dict[str, Any]] = {
        "newgroup": {"group_id": 3, "name": data.get("name"), "creator": "alice"},
        "groups": {"groups": [GROUP_ROW, "junk"]},
        "publicgroups": {"groups": [{**GROUP_ROW, "role": None, "public": True}]},
        "joingroup": {**GROUP_ROW, "role": "member"},
        "sendgroup": {"conversation_id": 30, "seq": 4, "message_id": 99, "sent_at": 7},
        "allusers": {"users": [USER_ROW]},
        "allgroup": {"groups": [{**GROUP_ROW, "role": None}]},
        "adminsend": {"conversation_id": 2, "seq": 8},
        "adminsendgroup": {"conversation_id": 30, "seq": 5},
        "broadcast": {"delivered_online": 4},
    }
    if req["type"] in answers:
        conn.respond(req, answers[req["type"]])
    else:
        await server.default(conn, req)


async def test_group_helpers_send_the_protocol_fields(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await group_server(conn, req, server)

    server.on_request = behaviour
    async with make_client() as client:
        await client.login("alice", "password1")
        assert await client.newgroup("ops") == {"group_id": 3, "name": "ops", "creator": "alice"}
        await client.newgroup("lobby", public=True, description="大厅", max_members=30)
        assert await client.delgroup(3) is None
        assert await client.addgroupuser(3, "bob") is None
        assert await client.delgroupuser(3, "bob") is None
        assert await client.setgrouprole(3, "bob", "admin") is None
        assert await client.groups() == [GROUP_ROW]  # non-objects are dropped
        assert await client.publicgroups() == [{**GROUP_ROW, "role": None, "public": True}]
        assert (await client.joingroup(1))["role"] == "member"
        assert await client.leavegroup(1) is None
        sent = await client.sendgroup(3, "hi  all")
        assert sent == {"conversation_id": 30, "seq": 4, "message_id": 99, "sent_at": 7}
        await client.sendgroup(3, "again", client_msg_id="g-1")

    def sent_data(action: str) -> list[dict[str, Any]]:
        return [r["payload"]["data"] for r in server.actions(action)]

    assert sent_data("newgroup") == [
        {"name": "ops", "public": False},
        {"name": "lobby", "public": True, "description": "大厅", "max_members": 30},
    ]
    assert sent_data("delgroup") == [{"group_id": 3}]
    assert sent_data("addgroupuser") == [{"group_id": 3, "username": "bob"}]
    assert sent_data("delgroupuser") == [{"group_id": 3, "username": "bob"}]
    assert sent_data("setgrouprole") == [{"group_id": 3, "username": "bob", "role": "admin"}]
    assert sent_data("groups") == [{}]
    assert sent_data("publicgroups") == [{}]
    assert sent_data("joingroup") == [{"group_id": 1}]
    assert sent_data("leavegroup") == [{"group_id": 1}]
    first, second = sent_data("sendgroup")
    assert first["group_id"] == 3 and first["text"] == "hi  all"
    assert len(first["client_msg_id"]) == 32 and int(first["client_msg_id"], 16) >= 0
    assert second == {"group_id": 3, "text": "again", "client_msg_id": "g-1"}
    tokens = {r["payload"]["auth_token"] for r in server.requests if r["type"] != "login"}
    assert tokens == {"tok-1"}


async def test_admin_helpers_send_the_protocol_fields(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        await group_server(conn, req, server)

    server.on_request = behaviour
    async with make_client() as client:
        await client.login("root", "password1")
        assert client.is_admin
        assert await client.allusers() == [USER_ROW]
        await client.allusers(online_only=True)
        assert await client.allgroup() == [{**GROUP_ROW, "role": None}]
        assert await client.adminsend("bob", "hello") == {"conversation_id": 2, "seq": 8}
        assert await client.adminsendgroup("hi", group_id=3) == {"conversation_id": 30, "seq": 5}
        await client.adminsendgroup("hi", name="ops", creator="alice")
        assert await client.broadcast("maintenance") == 4
        assert await client.blockuser("bob") is None
        assert await client.unblockuser("bob") is None
        assert await client.blockgroup(group_id=3) is None
        await client.blockgroup(name="ops", creator="alice")
        assert await client.unblockgroup(name="ops", creator="alice") is None
        await client.unblockgroup(group_id=3)

    def sent_data(action: str) -> list[dict[str, Any]]:
        return [r["payload"]["data"] for r in server.actions(action)]

    assert sent_data("allusers") == [{"online_only": False}, {"online_only": True}]
    assert sent_data("allgroup") == [{}]
    assert sent_data("adminsend") == [{"username": "bob", "text": "hello"}]
    assert sent_data("adminsendgroup") == [
        {"group_id": 3, "text": "hi"},
        {"name": "ops", "creator": "alice", "text": "hi"},
    ]
    assert sent_data("broadcast") == [{"text": "maintenance"}]
    assert sent_data("blockuser") == [{"username": "bob"}]
    assert sent_data("unblockuser") == [{"username": "bob"}]
    assert sent_data("blockgroup") == [{"group_id": 3}, {"name": "ops", "creator": "alice"}]
    assert sent_data("unblockgroup") == [{"name": "ops", "creator": "alice"}, {"group_id": 3}]


async def test_group_selector_must_be_an_id_or_a_name_and_creator(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async with make_client() as client:
        await client.login("root", "password1")
        with pytest.raises(ValueError):
            await client.blockgroup()
        with pytest.raises(ValueError):
            await client.unblockgroup(name="ops")
        with pytest.raises(ValueError):
            await client.adminsendgroup("hi", creator="alice")
        with pytest.raises(ValueError):
            await client.blockgroup(group_id=3, name="ops", creator="alice")
    assert not server.actions("blockgroup") and not server.actions("adminsendgroup")


async def test_list_helpers_tolerate_odd_answers(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] in ("groups", "allusers"):
            conn.respond(req, {"groups": "nope", "users": None})
        elif req["type"] == "broadcast":
            conn.respond(req, {})
        else:
            await server.default(conn, req)

    server.on_request = behaviour
    async with make_client() as client:
        await client.login("root", "password1")
        assert await client.groups() == []
        assert await client.allusers() == []
        assert await client.broadcast("x") == 0


@pytest.mark.parametrize(
    ("code", "action", "call"),
    [
        ("group_blocked", "sendgroup", lambda c: c.sendgroup(3, "hi")),
        ("not_permitted", "allusers", lambda c: c.allusers()),
        ("no_such_group", "blockgroup", lambda c: c.blockgroup(name="x", creator="y")),
        ("already_member", "joingroup", lambda c: c.joingroup(1)),
    ],
)
async def test_group_and_admin_refusals_raise(
    code: str,
    action: str,
    call: Callable[[Client], Awaitable[Any]],
    server: FakeServer,
    make_client: Callable[..., Client],
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == action:
            conn.respond(req, status="fail", code=code, message="refused")
        else:
            await server.default(conn, req)

    server.on_request = behaviour
    async with make_client(auto_reconnect=True) as client:
        await client.login("alice", "password1")
        with pytest.raises(RequestFailed) as failed:
            await call(client)
    assert failed.value.code == code
    assert len(server.actions(action)) == 1  # refusals are not retried


async def test_sendgroup_is_retried_once_after_reconnect_with_same_id(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    sends: list[Envelope] = []

    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "sendgroup":
            sends.append(req)
            if len(sends) == 1:
                conn.close()  # stored, but the response never makes it
                return
            conn.respond(req, {"conversation_id": 30, "seq": 1, "message_id": 9, "sent_at": 1})
        else:
            await server.default(conn, req)

    server.on_request = behaviour
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    result = await client.sendgroup(3, "hello")
    assert result["seq"] == 1
    first, second = (r["payload"]["data"] for r in sends)
    assert first == second  # same group_id, text and client_msg_id
    assert sends[1]["payload"]["auth_token"] == "tok-2"  # after the re-login


async def test_sendgroup_is_retried_only_once(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "sendgroup":
            conn.close()
        else:
            await server.default(conn, req)

    server.on_request = behaviour
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("alice", "password1")
    with pytest.raises(ConnectionLost):
        await client.sendgroup(3, "hello", client_msg_id="g-1")
    assert [r["payload"]["data"]["client_msg_id"] for r in server.actions("sendgroup")] == [
        "g-1",
        "g-1",
    ]


async def test_blocked_kick_ends_the_admin_session_too(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(auto_reconnect=True)
    await client.connect()
    await client.login("root", "password1")
    assert client.is_admin
    server.conns[0].push("kicked", {"reason": "blocked"})
    server.conns[0].close()
    events = [e async for e in client.events()]
    assert [e.type for e in events] == ["kicked", "disconnected"]
    assert client.is_admin is False and client.auth_token is None


# --- promote / demote while logged in: the session event ----------------------


async def test_session_event_updates_is_admin_and_reaches_the_app(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async with make_client() as client:
        await client.login("alice", "password1")
        assert client.is_admin is False
        server.conns[0].push("session", {"is_admin": True})
        event = await client.next_event("session")
        assert event.payload == {"is_admin": True}
        assert client.is_admin is True
        server.conns[0].push("session", {"is_admin": False})
        await client.next_event("session")
        assert client.is_admin is False
        server.conns[0].push("session", {"is_admin": "yes"})  # malformed: changes nothing
        await client.next_event("session")
        assert client.is_admin is False


async def test_session_event_without_a_session_changes_nothing(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    async with make_client() as client:
        await client.ping()
        server.conns[0].push("session", {"is_admin": True})
        await client.next_event("session")
        assert client.is_admin is False


async def test_close_without_acks_leaves_messages_to_the_next_login(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(ack_interval=60.0)
    await client.connect()
    await client.login("bob", "password1")
    server.conns[0].push("message", msg(4, 1))
    await client.next_event("message")
    assert client.pending_acks == {4: 1}
    await client.close(send_acks=False)
    assert server.actions("ack") == []
