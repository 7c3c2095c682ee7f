"""Groups and public rooms end to end: the permission matrix, fail codes, delivery."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import update

from p2sp.client.client import Client
from tests.e2e.conftest import PASSWORD, RawConnection, ServerProcess, db_execute, table
from tests.e2e.test_delivery import login, replay_until_sync

pytestmark = pytest.mark.timeout(300)

ROLES = ("owner", "gadmin", "member", "outsider", "root")


async def make_admin(server: ServerProcess, name: str) -> None:
    users = table("users")
    await db_execute(
        server.database_url, update(users).where(users.c.username == name).values(is_admin=True)
    )


async def code_of(coro) -> str:
    """The code a call fails with, or 'ok'."""
    try:
        await coro
    except Exception as exc:
        return getattr(exc, "code", repr(exc))
    return "ok"


class Cast:
    """owner, gadmin (group admin), member, outsider, root (server admin), plus extra users.

    ``c`` maps each role to its logged-in client; the accounts are named
    ``prefix + role`` so one test can build several casts.
    """

    def __init__(self, clients: dict[str, Client], group_id: int, prefix: str) -> None:
        self.c = clients
        self.gid = group_id
        self.prefix = prefix

    def name(self, role: str) -> str:
        return self.prefix + role

    async def close(self) -> None:
        for client in self.c.values():
            await client.close()


async def cast(server: ServerProcess, *extra: str, prefix: str = "") -> Cast:
    roles = (*ROLES, *extra)
    async with server.client() as c:
        for role in roles:
            await c.reg(prefix + role, PASSWORD)
    await make_admin(server, prefix + "root")
    clients = {role: await login(server, prefix + role, auto_ack=False) for role in roles}
    gid = (await clients["owner"].call("newgroup", name="team"))["group_id"]
    for role in ("gadmin", "member", *extra):
        await clients["owner"].call("addgroupuser", group_id=gid, username=prefix + role)
    await clients["owner"].call(
        "setgrouprole", group_id=gid, username=prefix + "gadmin", role="admin"
    )
    return Cast(clients, gid, prefix)


async def test_newgroup_and_groups_listing(server: ServerProcess) -> None:
    t = await cast(server)
    try:
        rows = (await t.c["member"].call("groups"))["groups"]
        assert rows == [
            {
                "group_id": t.gid,
                "name": "team",
                "creator": "owner",
                "online": 3,
                "total": 3,
                "role": "member",
                "blocked": False,
                "public": False,
            }
        ]
        assert (await t.c["gadmin"].call("groups"))["groups"][0]["role"] == "admin"
        assert (await t.c["owner"].call("groups"))["groups"][0]["role"] == "owner"
        assert (await t.c["outsider"].call("groups"))["groups"] == []
    finally:
        await t.close()


async def test_newgroup_fail_codes(server: ServerProcess) -> None:
    async with server.client() as c:
        await c.reg("maker", PASSWORD)
        await c.reg("other", PASSWORD)
        await c.login("other", PASSWORD)
        assert (await c.call("newgroup", name="dup"))["creator"] == "other"
        await c.login("maker", PASSWORD)
        await c.call("newgroup", name="dup")  # same name, another creator: fine
        assert await code_of(c.call("newgroup", name="dup")) == "group_exists"
        for i in range(9):
            await c.call("newgroup", name=f"g{i}")
        assert await code_of(c.call("newgroup", name="eleventh")) == "group_limit"
        assert await code_of(c.call("newgroup", name="")) == "invalid_request"
        assert await code_of(c.call("newgroup", name="bad\nname")) == "invalid_request"
        assert await code_of(c.call("newgroup", name="x" * 65)) == "invalid_request"


# (action, actor) -> expected code; every action against every role.
MATRIX: dict[str, dict[str, str]] = {
    "addgroupuser": {
        "owner": "ok",
        "gadmin": "ok",
        "member": "not_permitted",
        "outsider": "not_permitted",
        "root": "ok",
    },
    "delgroupuser": {
        "owner": "ok",
        "gadmin": "ok",
        "member": "not_permitted",
        "outsider": "not_permitted",
        "root": "ok",
    },
    "setgrouprole": {
        "owner": "ok",
        "gadmin": "not_permitted",
        "member": "not_permitted",
        "outsider": "not_permitted",
        "root": "ok",
    },
    "sendgroup": {
        "owner": "ok",
        "gadmin": "ok",
        "member": "ok",
        "outsider": "not_member",
        "root": "not_member",
    },
    "leavegroup": {
        "owner": "not_permitted",
        "gadmin": "ok",
        "member": "ok",
        "outsider": "not_member",
        "root": "not_member",
    },
    "delgroup": {
        "owner": "ok",
        "gadmin": "not_permitted",
        "member": "not_permitted",
        "outsider": "not_permitted",
        "root": "ok",
    },
}


@pytest.mark.parametrize("action", sorted(MATRIX))
async def test_permission_matrix(server: ServerProcess, action: str) -> None:
    """Each actor gets a fresh cast (``prefix``), so one refusal or success
    cannot change what the next actor is tested against."""
    for actor, expected in MATRIX[action].items():
        t = await cast(server, "spare", prefix=f"{actor[:3]}_")
        try:
            spare = t.name("spare")
            if action == "addgroupuser":
                await t.c["owner"].call("delgroupuser", group_id=t.gid, username=spare)
            data: dict[str, Any] = {
                "addgroupuser": {"group_id": t.gid, "username": spare},
                "delgroupuser": {"group_id": t.gid, "username": spare},
                "setgrouprole": {"group_id": t.gid, "username": spare, "role": "admin"},
                "sendgroup": {"group_id": t.gid, "text": "hello"},
                "leavegroup": {"group_id": t.gid},
                "delgroup": {"group_id": t.gid},
            }[action]
            got = await code_of(t.c[actor].call(action, **data))
            assert got == expected, f"{actor} {action}: {got}, expected {expected}"
        finally:
            await t.close()


async def test_kick_rules(server: ServerProcess) -> None:
    t = await cast(server, "admin2", "plain")
    try:
        await t.c["owner"].call("setgrouprole", group_id=t.gid, username="admin2", role="admin")
        gadmin = t.c["gadmin"]
        assert (
            await code_of(gadmin.call("delgroupuser", group_id=t.gid, username="owner"))
            == "not_permitted"
        )
        assert (
            await code_of(gadmin.call("delgroupuser", group_id=t.gid, username="admin2"))
            == "not_permitted"
        )
        assert (
            await code_of(gadmin.call("delgroupuser", group_id=t.gid, username="gadmin"))
            == "cannot_kick_self"
        )
        assert (
            await code_of(gadmin.call("delgroupuser", group_id=t.gid, username="outsider"))
            == "not_member"
        )
        assert (
            await code_of(gadmin.call("delgroupuser", group_id=t.gid, username="nobody"))
            == "not_member"
        )
        assert (
            await code_of(t.c["root"].call("delgroupuser", group_id=t.gid, username="owner"))
            == "not_permitted"
        )
        assert (
            await code_of(
                t.c["owner"].call("setgrouprole", group_id=t.gid, username="owner", role="member")
            )
            == "not_permitted"
        )
        assert (
            await code_of(t.c["owner"].call("delgroupuser", group_id=t.gid, username="admin2"))
            == "ok"
        )
        # The removed member is told, and can no longer send.
        await gadmin.call("delgroupuser", group_id=t.gid, username="plain")
        notice = await _notice(t.c["plain"], "group_removed")
        assert notice == {
            "kind": "group_removed",
            "group_id": t.gid,
            "group_name": "team",
            "by": "gadmin",
        }
        assert (
            await code_of(t.c["plain"].call("sendgroup", group_id=t.gid, text="hi")) == "not_member"
        )
    finally:
        await t.close()


async def _notice(client: Client, kind: str) -> dict:
    while True:
        event = await client.next_event("message", timeout=10)
        notice = event.payload.get("notice") or {}
        if notice.get("kind") == kind:
            return notice


async def test_invite_fail_codes_and_notice(server: ServerProcess) -> None:
    t = await cast(server)
    try:
        owner = t.c["owner"]
        assert (
            await code_of(owner.call("addgroupuser", group_id=999999, username="outsider"))
            == "no_such_group"
        )
        assert (
            await code_of(owner.call("addgroupuser", group_id=t.gid, username="nobody"))
            == "no_such_user"
        )
        assert (
            await code_of(owner.call("addgroupuser", group_id=t.gid, username="member"))
            == "already_member"
        )
        assert (
            await code_of(owner.call("addgroupuser", group_id=t.gid, username="system"))
            == "no_such_user"
        )
        await owner.call("addgroupuser", group_id=t.gid, username="outsider")
        notice = await _notice(t.c["outsider"], "group_invited")
        assert notice == {
            "kind": "group_invited",
            "group_id": t.gid,
            "group_name": "team",
            "by": "owner",
        }
        for action, extra in (
            ("delgroup", {}),
            ("leavegroup", {}),
            ("sendgroup", {"text": "x"}),
            ("joingroup", {}),
            ("delgroupuser", {"username": "member"}),
            ("setgrouprole", {"username": "member", "role": "admin"}),
        ):
            data = {"group_id": 424242, **extra}
            assert await code_of(owner.call(action, **data)) == "no_such_group", action
        role = {"group_id": t.gid, "username": "root", "role": "admin"}
        assert await code_of(owner.call("setgrouprole", **role)) == "not_member"
        role["role"] = "king"
        assert await code_of(owner.call("setgrouprole", **role)) == "invalid_request"
    finally:
        await t.close()


async def test_group_full(server: ServerProcess) -> None:
    async with server.client() as c:
        for name in ("own", "a", "b"):
            await c.reg(name, PASSWORD)
        await c.login("own", PASSWORD)
        gid = (await c.call("newgroup", name="tiny", max_members=2, public=True))["group_id"]
        await c.call("addgroupuser", group_id=gid, username="a")
        assert await code_of(c.call("addgroupuser", group_id=gid, username="b")) == "group_full"
        await c.login("b", PASSWORD)
        assert await code_of(c.call("joingroup", group_id=gid)) == "group_full"
        assert (
            await code_of(c.call("newgroup", name="huge", max_members=10**6)) == "invalid_request"
        )


async def test_group_messages_online_and_offline_in_order(server: ServerProcess) -> None:
    t = await cast(server, "sleeper")
    await t.c["sleeper"].close()
    try:
        for i in range(30):
            sender = ("owner", "gadmin", "member")[i % 3]
            ok = await t.c[sender].call("sendgroup", group_id=t.gid, text=f"g{i}")
            assert ok["seq"] == i + 1
        for name in ("owner", "gadmin", "member"):
            got = []
            while len(got) < 20:  # everyone gets the 20 the other two sent
                event = await t.c[name].next_event("message", timeout=10)
                if event.payload["kind"] == "group":
                    got.append(event.payload)
            assert [m["seq"] for m in got] == [
                s for s in range(1, 31) if ("owner", "gadmin", "member")[(s - 1) % 3] != name
            ]
            assert all(
                m["group_id"] == t.gid and m["group_name"] == "team" and not m["system"]
                for m in got
            )
        sleeper = await login(server, "sleeper", auto_ack=False)
        messages: list[dict] = []
        while True:
            event = await sleeper.next_event(timeout=10)
            if event.type == "sync_done":
                break
            if event.type == "message" and event.payload["kind"] == "group":
                messages.append(event.payload)
        assert [m["text"] for m in messages] == [f"g{i}" for i in range(30)]
        assert all(m["replay"] for m in messages)
        await sleeper.close()
    finally:
        await t.close()


async def test_idempotent_group_send(server: ServerProcess) -> None:
    t = await cast(server)
    try:
        a = await t.c["member"].call("sendgroup", group_id=t.gid, text="once", client_msg_id="k1")
        b = await t.c["member"].call("sendgroup", group_id=t.gid, text="once", client_msg_id="k1")
        assert a == b
    finally:
        await t.close()


async def test_new_member_does_not_get_the_backlog(server: ServerProcess) -> None:
    t = await cast(server)
    try:
        await t.c["owner"].call("sendgroup", group_id=t.gid, text="before you came")
        await t.c["owner"].call("addgroupuser", group_id=t.gid, username="outsider")
        await t.c["owner"].call("sendgroup", group_id=t.gid, text="welcome")
        event = await t.c["outsider"].next_event("message", timeout=10)
        while event.payload["kind"] != "group":
            event = await t.c["outsider"].next_event("message", timeout=10)
        assert event.payload["text"] == "welcome"
    finally:
        await t.close()


async def test_delete_group_notifies_members(server: ServerProcess) -> None:
    t = await cast(server)
    try:
        await t.c["owner"].call("delgroup", group_id=t.gid)
        for name in ("gadmin", "member"):
            notice = await _notice(t.c[name], "group_deleted")
            assert notice == {
                "kind": "group_deleted",
                "group_id": t.gid,
                "group_name": "team",
                "by": "owner",
            }
        assert (await t.c["member"].call("groups"))["groups"] == []
        assert (
            await code_of(t.c["member"].call("sendgroup", group_id=t.gid, text="x"))
            == "no_such_group"
        )
    finally:
        await t.close()


async def test_public_rooms(server: ServerProcess) -> None:
    async with server.client() as c:
        for name in ("host", "guest"):
            await c.reg(name, PASSWORD)
    host = await login(server, "host")
    guest = await login(server, "guest", auto_ack=False)
    try:
        rooms = (await guest.call("publicgroups"))["groups"]
        assert [(r["name"], r["creator"], r["total"], r["role"]) for r in rooms] == [
            ("public", "system", 0, None)
        ]
        public_id = rooms[0]["group_id"]
        row = await guest.call("joingroup", group_id=public_id)
        assert (row["name"], row["role"], row["total"]) == ("public", "member", 1)
        assert await code_of(guest.call("joingroup", group_id=public_id)) == "already_member"
        private = (await host.call("newgroup", name="private"))["group_id"]
        assert await code_of(guest.call("joingroup", group_id=private)) == "not_permitted"
        room = (await host.call("newgroup", name="lobby", public=True, description="hang out"))[
            "group_id"
        ]
        assert [r["name"] for r in (await guest.call("publicgroups"))["groups"]] == [
            "public",
            "lobby",
        ]
        await guest.call("joingroup", group_id=room)
        await host.call("sendgroup", group_id=room, text="hi lobby")
        event = await guest.next_event("message", timeout=10)
        assert (event.payload["group_name"], event.payload["text"]) == ("lobby", "hi lobby")
        await guest.call("leavegroup", group_id=room)
        assert await code_of(guest.call("leavegroup", group_id=room)) == "not_member"
        assert await code_of(host.call("leavegroup", group_id=room)) == "not_permitted"
    finally:
        await host.close()
        await guest.close()


async def test_public_room_survives_restart(server: ServerProcess) -> None:
    await asyncio.to_thread(server.stop)
    server.start()
    async with server.client() as c:
        await c.reg("zed", PASSWORD)
        await c.login("zed", PASSWORD)
        assert [r["name"] for r in (await c.call("publicgroups"))["groups"]] == ["public"]


async def test_a_thousand_member_group(server_factory) -> None:
    # 100 logins at once from one address: more in flight than the per-address limit.
    server = server_factory(group_member_cap=2000, login_max_failures_per_ip=10000)
    n = 1000
    async with server.client() as c:
        await c.reg("big_owner", PASSWORD)
        await c.login("big_owner", PASSWORD)
        gid = (await c.call("newgroup", name="big", public=True, max_members=n + 1))["group_id"]

        async def member(i: int) -> RawConnection:
            conn = await RawConnection.open(server)
            name = f"m{i}"
            assert (await conn.request("reg", {"username": name, "password": PASSWORD}))[
                "status"
            ] == "ok"
            token = (await conn.request("login", {"username": name, "password": PASSWORD}))["data"][
                "auth_token"
            ]
            assert (await conn.request("joingroup", {"group_id": gid}, token))["status"] == "ok"
            return conn

        conns: list[RawConnection] = []
        for start in range(0, n, 100):
            conns += await asyncio.gather(*(member(i) for i in range(start, start + 100)))
        try:
            rows = (await c.call("groups"))["groups"]
            assert (rows[0]["online"], rows[0]["total"]) == (n + 1, n + 1)
            await c.call("sendgroup", group_id=gid, text="hello, all of you")

            async def receives(conn: RawConnection) -> bool:
                while True:
                    frame = await conn.next_frame(timeout=30)
                    if frame["type"] == "message" and frame["payload"]["kind"] == "group":
                        return frame["payload"]["text"] == "hello, all of you"

            assert all(await asyncio.gather(*(receives(conn) for conn in conns)))
        finally:
            for conn in conns:
                await conn.close()


async def test_only_members_get_group_messages(server: ServerProcess) -> None:
    t = await cast(server)
    try:
        await t.c["member"].call("sendgroup", group_id=t.gid, text="members only")
        with pytest.raises(asyncio.TimeoutError):
            while True:
                event = await t.c["outsider"].next_event("message", timeout=0.7)
                assert event.payload["kind"] != "group"
        got, _ = await replay_until_sync(await login(server, "outsider", auto_ack=False))
        assert got == []
    finally:
        await t.close()
