"""Direct messages end to end: order, replay, acks, idempotency, crashes, slow clients.

These are the tests of three promises (docs/architecture.md, "The promises
and their tests"): nothing acknowledged is lost, per-conversation order with
no gaps, one slow client never slows the rest. Recipients that must see
everything again use ``auto_ack=False`` and a fresh client object per login,
so nothing in the SDK (its duplicate filter, its acks) hides what the server
sent.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Any

import pytest
from sqlalchemy import func, select

from p2sp.client.client import Client, RequestFailed
from p2sp.common.message import request_frame
from tests.e2e.conftest import PASSWORD, RawConnection, ServerProcess, db_execute, table

pytestmark = pytest.mark.timeout(180)


async def befriend(server: ServerProcess, *names: str) -> None:
    """Register every name and make the first one friends with all the others."""
    async with server.client() as c:
        for name in names:
            await c.reg(name, PASSWORD)
        await c.login(names[0], PASSWORD)
        for other in names[1:]:
            await c.add(other)
        await c.logout()


async def login(server: ServerProcess, name: str, **kwargs: Any) -> Client:
    client = server.client(**kwargs)
    await client.connect()
    await client.login(name, PASSWORD)
    return client


async def direct_messages(client: Client, count: int, timeout: float = 30.0) -> list[dict]:
    """The next ``count`` direct-message events (system notices skipped)."""
    out: list[dict] = []
    while len(out) < count:
        event = await client.next_event("message", timeout=timeout)
        if event.payload["kind"] == "direct":
            out.append(event.payload)
    return out


async def replay_until_sync(client: Client, timeout: float = 30.0) -> tuple[list[dict], int]:
    """Every message event up to ``sync_done``; returns (direct messages, count)."""
    messages: list[dict] = []
    while True:
        event = await client.next_event(timeout=timeout)
        if event.type == "sync_done":
            return messages, event.payload["count"]
        if event.type == "message" and event.payload["kind"] == "direct":
            messages.append(event.payload)


async def count_rows(server: ServerProcess, name: str) -> int:
    rows = await db_execute(server.database_url, select(func.count()).select_from(table(name)))
    return rows[0][0]


async def test_online_delivery_in_order(server: ServerProcess) -> None:
    await befriend(server, "alice", "bob")
    alice = await login(server, "alice")
    bob = await login(server, "bob")
    try:
        # Live, not replayed: what arrives during bob's login replay is sent by the replay.
        await bob.next_event("sync_done", timeout=10)
        sent = [await alice.send("bob", f"m{i}") for i in range(50)]
        got = await direct_messages(bob, 50)
        assert [m["text"] for m in got] == [f"m{i}" for i in range(50)]
        assert [m["seq"] for m in got] == list(range(1, 51))
        assert [r["seq"] for r in sent] == list(range(1, 51))
        assert all(m["from"] == "alice" and m["to"] == "bob" and not m["replay"] for m in got)
        assert {m["message_id"] for m in got} == {r["message_id"] for r in sent}
        assert got[0]["conversation_id"] == sent[0]["conversation_id"]
    finally:
        await alice.close()
        await bob.close()


async def test_offline_replay_and_cumulative_ack(server: ServerProcess) -> None:
    await befriend(server, "alice", "bob")
    async with server.client() as alice:
        await alice.login("alice", PASSWORD)
        for i in range(20):
            await alice.send("bob", f"offline {i}")

    # 1. Replay, no ack: everything comes again next time.
    for _ in range(2):
        bob = await login(server, "bob", auto_ack=False)
        got, count = await replay_until_sync(bob)
        assert [m["text"] for m in got] == [f"offline {i}" for i in range(20)]
        assert all(m["replay"] for m in got)
        assert count == 21  # 20 messages + the friend_added notice
        await bob.close()

    # 2. A partial cumulative ack: the rest comes again.
    bob = await login(server, "bob", auto_ack=False)
    got, _ = await replay_until_sync(bob)
    conv = got[0]["conversation_id"]
    await bob.call("ack", acks=[{"conversation_id": conv, "seq": 12}])
    await bob.close()
    bob = await login(server, "bob", auto_ack=False)
    got, _ = await replay_until_sync(bob)
    assert [m["seq"] for m in got] == list(range(13, 21))
    # 3. A full ack (plus the notice): nothing comes again.
    notice = await bob_system_conversation(server)
    await bob.call(
        "ack", acks=[{"conversation_id": conv, "seq": 20}, {"conversation_id": notice, "seq": 1}]
    )
    await bob.close()
    bob = await login(server, "bob", auto_ack=False)
    got, count = await replay_until_sync(bob)
    assert (got, count) == ([], 0)
    await bob.close()


async def bob_system_conversation(server: ServerProcess) -> int:
    conversations = table("conversations")
    rows = await db_execute(
        server.database_url, select(conversations.c.id).where(conversations.c.kind == "system")
    )
    return rows[0][0]


async def test_sdk_auto_ack_means_nothing_comes_twice(server: ServerProcess) -> None:
    await befriend(server, "alice", "bob")
    async with server.client() as alice:
        await alice.login("alice", PASSWORD)
        for i in range(10):
            await alice.send("bob", f"x{i}")
    bob = await login(server, "bob")  # auto_ack on: acks what it hands over
    got, _ = await replay_until_sync(bob)
    assert len(got) == 10
    await bob.close()  # flushes pending acks
    bob = await login(server, "bob", auto_ack=False)
    assert await replay_until_sync(bob) == ([], 0)
    await bob.close()


async def test_resend_with_client_msg_id_lands_once(server: ServerProcess) -> None:
    await befriend(server, "alice", "bob")
    alice = await login(server, "alice")
    bob = await login(server, "bob", auto_ack=False)
    try:
        first = await alice.send("bob", "only once", client_msg_id="abc-1")
        again = await alice.send("bob", "only once", client_msg_id="abc-1")
        assert again == first
        # Concurrent resends (the same batch) are one message too.
        burst = await asyncio.gather(
            *(alice.call("send", to="bob", text="burst", client_msg_id="abc-2") for _ in range(5))
        )
        assert len({r["message_id"] for r in burst}) == 1
        got = await direct_messages(bob, 2)
        assert [m["text"] for m in got] == ["only once", "burst"]
        with pytest.raises(asyncio.TimeoutError):
            await direct_messages(bob, 1, timeout=0.5)
        assert await count_rows(server, "messages") == 3  # 2 + the friend_added notice
    finally:
        await alice.close()
        await bob.close()


async def test_kill_9_loses_no_acknowledged_message(server: ServerProcess) -> None:
    await befriend(server, "alice", "bob")
    alice = await login(server, "alice")
    acked = [await alice.send("bob", f"durable {i}") for i in range(200)]
    assert len(acked) == 200
    await asyncio.to_thread(server.stop, signal.SIGKILL)
    await alice.close()
    server.start()
    bob = await login(server, "bob", auto_ack=False)
    got, _ = await replay_until_sync(bob)
    assert [m["text"] for m in got] == [f"durable {i}" for i in range(200)]
    await bob.close()


async def test_concurrent_senders_keep_each_conversation_gap_free(server: ServerProcess) -> None:
    senders = [f"s{i}" for i in range(5)]
    await befriend(server, "bob", *senders)
    bob = await login(server, "bob", auto_ack=False)
    clients = [await login(server, name) for name in senders]
    per_sender = 100

    async def run(client: Client, name: str) -> None:
        for i in range(per_sender):
            await client.send("bob", f"{name}:{i}")

    try:
        await asyncio.gather(*(run(c, n) for c, n in zip(clients, senders, strict=True)))
        got = await direct_messages(bob, per_sender * len(senders))
        by_conv: dict[int, list[dict]] = {}
        for m in got:
            by_conv.setdefault(m["conversation_id"], []).append(m)
        assert len(by_conv) == len(senders)
        for msgs in by_conv.values():
            assert [m["seq"] for m in msgs] == list(range(1, per_sender + 1))
            name = msgs[0]["from"]
            assert [m["text"] for m in msgs] == [f"{name}:{i}" for i in range(per_sender)]
    finally:
        for c in (*clients, bob):
            await c.close()


async def test_messages_sent_during_login_are_neither_lost_nor_reordered(
    server: ServerProcess,
) -> None:
    """The replay -> live handover: steady streams while the recipient logs in, repeatedly."""
    senders = ["s1", "s2", "s3"]
    await befriend(server, "bob", *senders)
    clients = [await login(server, name) for name in senders]
    per_sender = 150
    rounds = 4

    sent = [0] * len(clients)

    async def stream(k: int) -> None:
        for i in range(per_sender * rounds):
            await clients[k].send("bob", str(i))
            sent[k] += 1

    streams = [asyncio.create_task(stream(k)) for k in range(len(clients))]
    try:
        for _ in range(rounds):
            await asyncio.sleep(0.03)  # some are offline, the rest arrive around the login
            bob = await login(server, "bob", auto_ack=False)  # no ack: a full replay each round
            # Read well past the login: a message lost in the handover shows as a gap.
            target = min(min(sent) + 30, per_sender * rounds)
            seen: dict[int, list[int]] = {}
            while len(seen) < len(senders) or any(max(v) < target for v in seen.values()):
                event = await bob.next_event("message", timeout=30)
                if event.payload["kind"] == "direct":
                    seen.setdefault(event.payload["conversation_id"], []).append(
                        event.payload["seq"]
                    )
            await bob.close()
            for seqs in seen.values():
                _check_order(seqs)
        await asyncio.gather(*streams)
    finally:
        for c in clients:
            await c.close()


def _check_order(seqs: list[int]) -> None:
    """At-least-once: a repeat is allowed; an older seq arriving for the first
    time after a newer one (reordering), or a skipped seq, is not."""
    highest, delivered = 0, set()
    for seq in seqs:
        if seq <= highest:
            assert seq in delivered, f"seq {seq} arrived after {highest}"
        else:
            assert seq == highest + 1, f"gap: {highest} then {seq}"
        delivered.add(seq)
        highest = max(highest, seq)


def _tiny_receiver(server: ServerProcess) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    sock.setblocking(False)
    return sock


async def test_a_client_that_stops_reading_slows_no_one(server_factory) -> None:
    server = server_factory(send_buffer_limit=65536)
    await befriend(server, "alice", "bob", "carol")
    # bob logs in over a socket with a tiny receive buffer, then never reads.
    sock = _tiny_receiver(server)
    reader, writer = await asyncio.open_connection(sock=sock)
    stalled = RawConnection(reader, writer)
    resp = await stalled.request("login", {"username": "bob", "password": PASSWORD})
    assert resp["status"] == "ok"
    carol = await login(server, "carol", auto_ack=False)
    alice = await login(server, "alice")
    big = "y" * 4000
    count = 1500  # about 6 MB to bob: far past his buffer, the kernel's and the limit
    try:
        for i in range(count):
            await alice.send("bob", f"{i}:{big}")
            if i % 10 == 0:
                await alice.send("carol", f"c{i}")
        got = await direct_messages(carol, count // 10)
        assert [m["text"] for m in got] == [f"c{i}" for i in range(0, count, 10)]
        assert "kicking" in server.log()  # bob was cut off as a slow consumer
    finally:
        await stalled.close()
        await alice.close()
        await carol.close()
    # bob comes back and gets every message, in order.
    bob = await login(server, "bob", auto_ack=False)
    got, _ = await replay_until_sync(bob, timeout=60)
    texts = [m["text"].split(":")[0] for m in got]
    assert texts == [str(i) for i in range(count)]
    await bob.close()


async def test_dm_policy_anyone_allows_strangers(server_factory) -> None:
    server = server_factory(dm_policy="anyone")
    async with server.client() as c:
        await c.reg("dan", PASSWORD)
        await c.reg("eve", PASSWORD)
    dan = await login(server, "dan")
    eve = await login(server, "eve", auto_ack=False)
    try:
        await dan.send("eve", "hello stranger")
        (got,) = await direct_messages(eve, 1)
        assert got["text"] == "hello stranger"
    finally:
        await dan.close()
        await eve.close()


@pytest.mark.parametrize(
    ("to", "text", "code"),
    [
        ("nobody", "hi", "no_such_user"),
        ("stranger", "hi", "not_friends"),
        ("alice", "hi", "cannot_send_to_self"),
    ],
)
async def test_send_fail_codes(server: ServerProcess, to: str, text: str, code: str) -> None:
    await befriend(server, "alice", "bob")
    async with server.client() as c:
        await c.reg("stranger", PASSWORD)
        await c.login("alice", PASSWORD)
        with pytest.raises(RequestFailed) as err:
            await c.send(to, text)
        assert err.value.code == code
        assert err.value.message
    assert await count_rows(server, "messages") == 1  # only the friend_added notice


async def test_send_text_bounds(server_factory) -> None:
    server = server_factory(max_text=10)
    await befriend(server, "alice", "bob")
    async with server.client() as c:
        await c.login("alice", PASSWORD)
        for text in ("", "x" * 11):
            with pytest.raises(Exception) as err:
                await c.send("bob", text)
            assert getattr(err.value, "code", None) == "invalid_request"
            assert "text" in err.value.message
        await c.send("bob", "x" * 10)
        await c.send("bob", "字" * 10)  # characters, not bytes


async def test_ack_refusals_change_nothing(server: ServerProcess) -> None:
    await befriend(server, "alice", "bob", "carol")
    async with server.client() as alice:
        await alice.login("alice", PASSWORD)
        sent = await alice.send("bob", "one")
        other = await alice.send("carol", "not bob's")
    bob = await login(server, "bob", auto_ack=False)
    await replay_until_sync(bob)
    conv = sent["conversation_id"]
    for acks in (
        [
            {"conversation_id": conv, "seq": 1},
            {"conversation_id": other["conversation_id"], "seq": 1},
        ],
        [{"conversation_id": conv, "seq": 2}],
        [{"conversation_id": 999999, "seq": 1}],
    ):
        with pytest.raises(Exception) as err:
            await bob.call("ack", acks=acks)
        assert getattr(err.value, "code", None) == "invalid_request"
    await bob.close()
    bob = await login(server, "bob", auto_ack=False)
    got, _ = await replay_until_sync(bob)
    assert [m["text"] for m in got] == ["one"]  # the refused acks moved nothing
    await bob.close()


async def test_pipelined_sends_commit_in_order_and_are_all_answered_before_a_half_close(
    server: ServerProcess,
) -> None:
    """A client may send without waiting for each ``ok``: the server goes on
    with the next request while the last commits, and still commits a
    connection's messages in the order sent, answers every one of them, and
    closes only after the answers when the client half-closes."""
    await befriend(server, "alice", "bob")
    bob = await login(server, "bob", auto_ack=False)
    conn = await RawConnection.open(server)
    try:
        token = (await conn.request("login", {"username": "alice", "password": PASSWORD}))["data"][
            "auth_token"
        ]
        count = 200
        conn.writer.write(
            b"".join(
                request_frame("send", 100 + i, {"to": "bob", "text": f"p{i}"}, token)
                for i in range(count)
            )
        )
        conn.writer.write_eof()
        assert await conn.closed_by_server(timeout=30)
        answers = {f["payload"]["id"]: f["payload"] for f in conn.frames if f["type"] == "response"}
        assert sorted(answers) == list(range(100, 100 + count))
        assert {a["code"] for a in answers.values()} == {"ok"}
        seqs = [answers[100 + i]["data"]["seq"] for i in range(count)]
        assert seqs == sorted(seqs) and len(set(seqs)) == count
        got = await direct_messages(bob, count)
        assert [m["text"] for m in got] == [f"p{i}" for i in range(count)]
        assert [m["seq"] for m in got] == seqs
    finally:
        await conn.close()
        await bob.close()
