"""Friends and presence end to end: add, friends, notices, presence on login/logout/drop."""

from __future__ import annotations

import asyncio

import pytest

from p2sp.client.client import RequestFailed
from tests.e2e.conftest import PASSWORD, ServerProcess
from tests.e2e.test_delivery import befriend, login

pytestmark = pytest.mark.timeout(120)


async def test_add_and_list(server: ServerProcess) -> None:
    async with server.client() as c:
        for name in ("alice", "Bob", "carol"):
            await c.reg(name, PASSWORD)
    bob = await login(server, "Bob")
    alice = await login(server, "alice")
    try:
        assert await alice.add("bob") == {"username": "Bob", "online": True}
        assert await alice.add("carol") == {"username": "carol", "online": False}
        friends = await alice.friends()
        assert [f["username"] for f in friends] == ["Bob", "carol"]
        assert friends[0]["online"] is True and friends[0]["status"] == "online"
        assert friends[1]["online"] is False and friends[1]["status"] == "offline"
        assert friends[1]["last_seen"] is None  # carol never logged in
        # Mutual: bob sees alice without adding her.
        assert [f["username"] for f in await bob.friends()] == ["alice"]
    finally:
        await alice.close()
        await bob.close()


async def test_add_fail_codes(server: ServerProcess) -> None:
    await befriend(server, "alice", "bob")
    alice = await login(server, "alice")
    bob = await login(server, "bob")
    try:
        for client, name, code in (
            (alice, "nobody", "no_such_user"),
            (alice, "ALICE", "cannot_add_self"),
            (alice, "bob", "already_friends"),
            (bob, "alice", "already_friends"),  # the friendship is mutual
        ):
            with pytest.raises(RequestFailed) as err:
                await client.add(name)
            assert err.value.code == code
        assert len(await alice.friends()) == 1
    finally:
        await alice.close()
        await bob.close()


async def test_friend_added_notice_online_and_offline(server: ServerProcess) -> None:
    async with server.client() as c:
        for name in ("alice", "bob", "carol"):
            await c.reg(name, PASSWORD)
    bob = await login(server, "bob", auto_ack=False)
    alice = await login(server, "alice")
    try:
        await alice.add("bob")  # bob online: at once
        event = await bob.next_event("message")
        assert event.payload["kind"] == "system" and event.payload["system"] is True
        assert event.payload["notice"] == {"kind": "friend_added", "username": "alice"}
        assert event.payload["replay"] is False
        await alice.add("carol")  # carol offline: at her next login
    finally:
        await alice.close()
        await bob.close()
    carol = await login(server, "carol", auto_ack=False)
    event = await carol.next_event("message")
    assert event.payload["notice"] == {"kind": "friend_added", "username": "alice"}
    assert event.payload["replay"] is True
    await carol.close()


async def test_presence_on_login_logout_and_drop(server: ServerProcess) -> None:
    await befriend(server, "alice", "bob")
    alice = await login(server, "alice")
    try:
        bob = await login(server, "bob")
        event = await alice.next_event("presence")
        assert event.payload == {"username": "bob", "online": True, "status": "online"}
        await bob.logout()
        event = await alice.next_event("presence")
        assert event.payload == {"username": "bob", "online": False, "status": "offline"}
        await bob.login("bob", PASSWORD)
        assert (await alice.next_event("presence")).payload["online"] is True
        # A drop: the socket goes away without a logout.
        bob._writer.transport.abort()  # simulate a dead network: no logout, no FIN
        event = await alice.next_event("presence")
        assert event.payload == {"username": "bob", "online": False, "status": "offline"}
        await bob.close()
        friends = await alice.friends()
        assert friends[0]["online"] is False and isinstance(friends[0]["last_seen"], int)
    finally:
        await alice.close()


async def test_relogin_elsewhere_is_not_an_offline_blip(server: ServerProcess) -> None:
    await befriend(server, "alice", "bob")
    alice = await login(server, "alice")
    bob1 = await login(server, "bob")
    try:
        assert (await alice.next_event("presence")).payload["online"] is True
        bob2 = await login(server, "bob")  # kicks bob1
        await bob1.next_event("kicked")
        with pytest.raises(asyncio.TimeoutError):
            await alice.next_event("presence", timeout=0.5)
        await bob2.close()
        assert (await alice.next_event("presence")).payload["online"] is False
    finally:
        await alice.close()
        await bob1.close()
