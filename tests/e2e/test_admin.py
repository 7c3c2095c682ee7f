"""Server administration end to end: listings, admin messages, blocking users and groups."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conftest import PASSWORD, ServerProcess
from tests.e2e.test_delivery import login
from tests.e2e.test_groups import code_of, make_admin

pytestmark = pytest.mark.timeout(180)

ADMIN_CALLS = {
    "allusers": {},
    "allgroup": {},
    "adminsend": {"username": "u1", "text": "x"},
    "adminsendgroup": {"group_id": 1, "text": "x"},
    "broadcast": {"text": "x"},
    "blockuser": {"username": "u1"},
    "unblockuser": {"username": "u1"},
    "blockgroup": {"group_id": 1},
    "unblockgroup": {"group_id": 1},
}


async def setup(server: ServerProcess, *names: str) -> None:
    async with server.client() as c:
        for name in ("root", *names):
            await c.reg(name, PASSWORD)
    await make_admin(server, "root")


async def events_until(client, kind: str, timeout: float = 10.0) -> list[dict]:
    """Message payloads up to and including the first of ``kind`` (a notice kind or 'group')."""
    out = []
    while True:
        event = await client.next_event("message", timeout=timeout)
        out.append(event.payload)
        if event.payload["kind"] == kind or (event.payload.get("notice") or {}).get("kind") == kind:
            return out


async def test_admin_actions_need_an_admin(server: ServerProcess) -> None:
    await setup(server, "u1")
    u1 = await login(server, "u1")
    try:
        for action, data in ADMIN_CALLS.items():
            assert await code_of(u1.call(action, **data)) == "not_permitted", action
        root = await login(server, "root")
        assert root.is_admin
        await root.close()
    finally:
        await u1.close()


async def test_allusers_and_allgroup(server: ServerProcess) -> None:
    await setup(server, "u1", "u2")
    root = await login(server, "root")
    u1 = await login(server, "u1")
    try:
        await u1.call("newgroup", name="g1")
        users = (await root.call("allusers"))["users"]
        assert [(u["username"], u["online"], u["is_admin"], u["blocked"]) for u in users] == [
            ("root", True, True, False),
            ("u1", True, False, False),
            ("u2", False, False, False),
        ]
        online = (await root.call("allusers", online_only=True))["users"]
        assert [u["username"] for u in online] == ["root", "u1"]
        groups = (await root.call("allgroup"))["groups"]
        assert [(g["name"], g["creator"], g["online"], g["total"]) for g in groups] == [
            ("public", "system", 0, 0),
            ("g1", "u1", 1, 1),
        ]
    finally:
        await root.close()
        await u1.close()


async def test_adminsend_online_and_offline(server: ServerProcess) -> None:
    await setup(server, "u1", "u2")
    root = await login(server, "root")
    u1 = await login(server, "u1", auto_ack=False)
    try:
        ok = await root.call("adminsend", username="u1", text="hello from the admins")
        assert set(ok) == {"conversation_id", "seq"}
        (msg,) = await events_until(u1, "admin")
        assert (msg["kind"], msg["system"], msg["text"]) == (
            "system",
            True,
            "hello from the admins",
        )
        assert msg["notice"] == {"kind": "admin", "from": "root"}
        await root.call("adminsend", username="u2", text="while you were away")
        assert await code_of(root.call("adminsend", username="ghost", text="x")) == "no_such_user"
    finally:
        await root.close()
        await u1.close()
    u2 = await login(server, "u2", auto_ack=False)
    (msg,) = await events_until(u2, "admin")
    assert (msg["text"], msg["replay"]) == ("while you were away", True)
    await u2.close()


async def test_adminsendgroup_by_id_and_by_name(server: ServerProcess) -> None:
    await setup(server, "u1", "u2")
    root = await login(server, "root")
    u1 = await login(server, "u1")
    u2 = await login(server, "u2", auto_ack=False)
    try:
        gid = (await u1.call("newgroup", name="club"))["group_id"]
        await u1.call("addgroupuser", group_id=gid, username="u2")
        await root.call("adminsendgroup", group_id=gid, text="by id")
        await root.call("adminsendgroup", name="club", creator="U1", text="by name")
        got = [m for m in await events_until(u2, "group") if m["kind"] == "group"]
        got += [m for m in await events_until(u2, "group") if m["kind"] == "group"]
        assert [(m["text"], m["system"], m["from"], m["group_name"]) for m in got] == [
            ("by id", True, "root", "club"),
            ("by name", True, "root", "club"),
        ]
        for data, code in (
            ({"group_id": 999999}, "no_such_group"),
            ({"name": "club", "creator": "u2"}, "no_such_group"),
            ({"name": "club"}, "invalid_request"),
            ({}, "invalid_request"),
        ):
            assert await code_of(root.call("adminsendgroup", text="x", **data)) == code, data
    finally:
        for c in (root, u1, u2):
            await c.close()


async def test_broadcast_reaches_everyone_online_and_offline(server: ServerProcess) -> None:
    await setup(server, "on1", "on2", "off1")
    root = await login(server, "root")
    on = [await login(server, n, auto_ack=False) for n in ("on1", "on2")]
    try:
        ok = await root.call("broadcast", text="maintenance at noon")
        assert ok == {"delivered_online": 3}  # root, on1, on2
        for client in on:
            (msg,) = await events_until(client, "admin")
            assert msg["notice"] == {"kind": "admin", "from": "root", "broadcast": True}
            assert msg["text"] == "maintenance at noon"
    finally:
        await root.close()
        for client in on:
            await client.close()
    off = await login(server, "off1", auto_ack=False)
    (msg,) = await events_until(off, "admin")
    assert (msg["text"], msg["replay"]) == ("maintenance at noon", True)
    await off.close()


async def test_blockuser_kicks_refuses_and_recovers(server: ServerProcess) -> None:
    await setup(server, "bad")
    root = await login(server, "root")
    bad = await login(server, "bad")
    try:
        await root.call("blockuser", username="bad")
        kicked = await bad.next_event("kicked")
        assert kicked.payload == {"reason": "blocked"}
        with pytest.raises(Exception) as err:
            await login(server, "bad")
        assert getattr(err.value, "code", None) == "user_blocked"
        users = {u["username"]: u for u in (await root.call("allusers"))["users"]}
        assert users["bad"]["blocked"] is True and users["bad"]["online"] is False
        assert await code_of(root.call("blockuser", username="root")) == "not_permitted"
        assert await code_of(root.call("blockuser", username="ghost")) == "no_such_user"
        await root.call("unblockuser", username="bad")
        again = await login(server, "bad")
        await again.ping()
        await again.close()
    finally:
        await root.close()
        await bad.close()


async def test_blocked_group_refuses_delivers_nothing_and_recovers(server: ServerProcess) -> None:
    await setup(server, "own", "away")
    root = await login(server, "root")
    own = await login(server, "own", auto_ack=False)
    try:
        gid = (await own.call("newgroup", name="loud"))["group_id"]
        await own.call("addgroupuser", group_id=gid, username="away")
        for i in range(3):
            await own.call("sendgroup", group_id=gid, text=f"before block {i}")
        await root.call("blockgroup", name="loud", creator="own")
        notice = [m for m in await events_until(own, "group_blocked")][-1]["notice"]
        assert notice == {"kind": "group_blocked", "group_id": gid, "group_name": "loud"}
        assert await code_of(own.call("sendgroup", group_id=gid, text="x")) == "group_blocked"
        assert (await own.call("groups"))["groups"][0]["blocked"] is True
        # away logs in: the group's pending messages are held back while it is blocked.
        away = await login(server, "away", auto_ack=False)
        held: list[dict] = []
        while (event := await away.next_event(timeout=10)).type != "sync_done":
            held.append(event.payload)
        assert [m["kind"] for m in held] == ["system", "system"]  # invited, blocked
        await away.close()

        await root.call("unblockgroup", group_id=gid)
        await own.call("sendgroup", group_id=gid, text="after unblock")
        away = await login(server, "away", auto_ack=False)
        texts = []
        while (event := await away.next_event(timeout=10)).type != "sync_done":
            if event.payload["kind"] == "group":
                texts.append(event.payload["text"])
        assert texts == ["before block 0", "before block 1", "before block 2", "after unblock"]
        await away.close()
        assert await code_of(root.call("blockgroup", group_id=424242)) == "no_such_group"
    finally:
        await root.close()
        await own.close()


async def test_admin_can_manage_any_group(server: ServerProcess) -> None:
    await setup(server, "own", "m")
    root = await login(server, "root")
    own = await login(server, "own")
    try:
        gid = (await own.call("newgroup", name="theirs"))["group_id"]
        await root.call("addgroupuser", group_id=gid, username="m")
        await root.call("setgrouprole", group_id=gid, username="m", role="admin")
        await root.call("delgroupuser", group_id=gid, username="m")
        await root.call("delgroup", group_id=gid)
        await asyncio.sleep(0)
        assert (await own.call("groups"))["groups"] == []
    finally:
        await root.close()
        await own.close()
