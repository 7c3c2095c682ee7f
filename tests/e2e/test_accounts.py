"""Accounts end to end: reg, login, logout, sessions, rate limits, admin CLI, restart."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest
from sqlalchemy import select, update

from p2sp.client.client import RequestError, RequestFailed
from tests.e2e.conftest import PASSWORD, TEST_ENV, RawConnection, ServerProcess, db_execute, table

pytestmark = pytest.mark.timeout(120)


def _users():
    return table("users"), table("user_login_log")


async def test_register_and_login(clients, server: ServerProcess) -> None:
    c = await clients()
    user_id = await c.reg("alice", PASSWORD)
    assert isinstance(user_id, int) and user_id > 0
    data = await c.login("alice", PASSWORD)
    assert data["user_id"] == user_id
    assert data["username"] == "alice"
    assert data["is_admin"] is False
    assert isinstance(data["auth_token"], str) and len(data["auth_token"]) >= 32
    await c.ping()

    users, log = _users()
    rows = await db_execute(
        server.database_url,
        select(users.c.latest_ip, users.c.last_seen, users.c.presence, users.c.auth_token).where(
            users.c.username == "alice"
        ),
    )
    assert rows == [("127.0.0.1", rows[0][1], "online", data["auth_token"])]
    assert rows[0][1] is not None
    entries = await db_execute(server.database_url, select(log.c.username, log.c.login_ip))
    assert entries == [("alice", "127.0.0.1")]


async def test_password_is_stored_as_salted_scrypt(clients, server: ServerProcess) -> None:
    c = await clients()
    await c.reg("bob", PASSWORD)
    await c.reg("carol", PASSWORD)
    users, _ = _users()
    hashes = [
        h
        for (h,) in await db_execute(
            server.database_url,
            select(users.c.password_hash).where(users.c.username.in_(["bob", "carol"])),
        )
    ]
    assert all(h.startswith("scrypt$") and PASSWORD not in h for h in hashes)
    assert hashes[0] != hashes[1]  # same password, different salts


async def test_names_are_unique_case_insensitively(clients) -> None:
    c = await clients()
    await c.reg("Zoë", PASSWORD)
    for taken in ("Zoë", "zoë", "ZOË"):
        with pytest.raises(RequestFailed) as err:
            await c.reg(taken, PASSWORD)
        assert err.value.code == "user_exists"
    data = await c.login("ZOË", PASSWORD)
    assert data["username"] == "Zoë"


@pytest.mark.parametrize("password", ["short", "x" * 7, "y" * 129])
async def test_weak_password(clients, password: str) -> None:
    c = await clients()
    with pytest.raises(RequestFailed) as err:
        await c.reg("dave", password)
    assert err.value.code == "weak_password"
    with pytest.raises(RequestFailed) as err:
        await c.login("dave", PASSWORD)
    assert err.value.code == "no_such_user"  # nothing was created


@pytest.mark.parametrize("name", ["", "has space", "x" * 33, "semi;colon", "tab\t", "new\n"])
async def test_bad_username_is_invalid_request(clients, name: str) -> None:
    c = await clients()
    with pytest.raises(RequestError) as err:
        await c.reg(name, PASSWORD)
    assert err.value.code == "invalid_request"
    assert "username" in err.value.message
    await c.ping()  # the connection lives on


async def test_unicode_names_of_any_script(clients) -> None:
    c = await clients()
    for name in ("张三", "Алёна", "o.k-name_1"):
        await c.reg(name, PASSWORD)
        assert (await c.login(name, PASSWORD))["username"] == name


async def test_login_failures(clients) -> None:
    c = await clients()
    await c.reg("erin", PASSWORD)
    with pytest.raises(RequestFailed) as err:
        await c.login("nobody", PASSWORD)
    assert err.value.code == "no_such_user"
    with pytest.raises(RequestFailed) as err:
        await c.login("erin", "wrong password")
    assert err.value.code == "bad_password"
    assert (await c.login("erin", PASSWORD))["username"] == "erin"


async def test_failed_logins_are_rate_limited_per_name(server_factory) -> None:
    server = server_factory(login_max_failures=3, login_max_failures_per_ip=100)
    async with server.client() as c:
        await c.reg("frank", PASSWORD)
        for _ in range(3):
            with pytest.raises(RequestFailed) as err:
                await c.login("frank", "wrong password")
            assert err.value.code == "bad_password"
        # Even the right password is refused while the name is locked.
        with pytest.raises(RequestFailed) as err:
            await c.login("frank", PASSWORD)
        assert err.value.code == "rate_limited"
        # Other names are not affected.
        await c.reg("grace", PASSWORD)
        assert (await c.login("grace", PASSWORD))["username"] == "grace"


async def test_failed_logins_are_rate_limited_per_ip(server_factory) -> None:
    server = server_factory(login_max_failures=100, login_max_failures_per_ip=4)
    async with server.client() as c:
        await c.reg("heidi", PASSWORD)
        for i in range(4):
            with pytest.raises(RequestFailed):
                await c.login(f"ghost{i}", PASSWORD)
        with pytest.raises(RequestFailed) as err:
            await c.login("heidi", PASSWORD)
        assert err.value.code == "rate_limited"


async def test_rate_limit_expires(server_factory) -> None:
    server = server_factory(login_max_failures=2, login_failure_window=1)
    async with server.client() as c:
        await c.reg("ivan", PASSWORD)
        for _ in range(2):
            with pytest.raises(RequestFailed):
                await c.login("ivan", "wrong password")
        with pytest.raises(RequestFailed) as err:
            await c.login("ivan", PASSWORD)
        assert err.value.code == "rate_limited"
        await asyncio.sleep(1.2)
        assert (await c.login("ivan", PASSWORD))["username"] == "ivan"


async def test_newer_login_kicks_older_session(clients, server: ServerProcess) -> None:
    first = await clients()
    await first.reg("judy", PASSWORD)
    old = await first.login("judy", PASSWORD)
    second = await clients()
    new = await second.login("judy", PASSWORD)
    assert new["auth_token"] != old["auth_token"]

    kicked = await first.next_event("kicked")
    assert kicked.payload["reason"] == "logged_in_elsewhere"
    await first.next_event("disconnected")

    # The old token is revoked: replaying it on a new connection gets nothing.
    raw = await RawConnection.open(server)
    try:
        resp = await raw.request("logout", token=old["auth_token"])
        assert (resp["status"], resp["code"]) == ("fail", "not_authenticated")
    finally:
        await raw.close()
    await second.ping()
    await second.call("logout")

    users, _ = _users()
    rows = await db_execute(
        server.database_url,
        select(users.c.presence, users.c.auth_token).where(users.c.username == "judy"),
    )
    assert rows == [("offline", None)]


async def test_logout_ends_the_session(clients) -> None:
    c = await clients()
    await c.reg("ken", PASSWORD)
    await c.login("ken", PASSWORD)
    token = c.auth_token
    await c.logout()
    with pytest.raises(RequestFailed) as err:
        await c.call("logout")
    assert err.value.code == "not_authenticated"
    # A stale token sent by hand is refused too.
    c.auth_token = token
    with pytest.raises(RequestFailed) as err:
        await c.call("logout")
    assert err.value.code == "not_authenticated"
    assert (await c.login("ken", PASSWORD))["username"] == "ken"


async def test_token_must_belong_to_the_connection(clients, raw) -> None:
    a = await clients()
    await a.reg("leo", PASSWORD)
    await a.login("leo", PASSWORD)
    conn = await raw()
    await conn.request("reg", {"username": "mia", "password": PASSWORD})
    ok = await conn.request("login", {"username": "mia", "password": PASSWORD})
    assert ok["status"] == "ok"
    for token in (None, "", "forged-token", a.auth_token):
        resp = await conn.request("logout", token=token)
        assert (resp["status"], resp["code"]) == ("fail", "not_authenticated"), token
    # None of that closed anything: both sessions still work.
    assert (await conn.request("logout", token=ok["data"]["auth_token"]))["status"] == "ok"
    await a.call("logout")


async def test_blocked_user_is_refused(clients, server: ServerProcess) -> None:
    c = await clients()
    await c.reg("nina", PASSWORD)
    users, _ = _users()
    await db_execute(
        server.database_url, update(users).where(users.c.username == "nina").values(status=0)
    )
    with pytest.raises(RequestFailed) as err:
        await c.login("nina", PASSWORD)
    assert err.value.code == "user_blocked"
    await db_execute(
        server.database_url, update(users).where(users.c.username == "nina").values(status=1)
    )
    assert (await c.login("nina", PASSWORD))["username"] == "nina"


def _cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**TEST_ENV, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "p2sp.server", *args, "--database-url", server.database_url],
        capture_output=True,
        text=True,
        env=env,
        cwd=server.workdir,
        timeout=60,
        check=False,
    )


async def test_promote_and_demote(clients, server: ServerProcess) -> None:
    c = await clients()
    await c.reg("oscar", PASSWORD)
    done = await asyncio.to_thread(_cli, server, "promote", "OSCAR")
    assert done.returncode == 0, done.stderr
    assert "oscar is now a server admin" in done.stdout
    assert (await c.login("oscar", PASSWORD))["is_admin"] is True
    done = await asyncio.to_thread(_cli, server, "demote", "oscar")
    assert done.returncode == 0, done.stderr
    assert (await c.login("oscar", PASSWORD))["is_admin"] is False
    done = await asyncio.to_thread(_cli, server, "promote", "nobody")
    assert done.returncode == 1
    assert "no user named 'nobody'" in done.stderr


async def test_sigterm_is_graceful_and_restart_keeps_accounts(server: ServerProcess) -> None:
    async with server.client() as c:
        await c.reg("pat", PASSWORD)
        await c.login("pat", PASSWORD)
        code = await asyncio.to_thread(server.stop, signal.SIGTERM)
        kicked = await c.next_event("kicked")
        assert kicked.payload["reason"] == "shutdown"
    assert code == 0, server.log()
    assert "stopped" in server.log()

    users, _ = _users()
    rows = await db_execute(
        server.database_url,
        select(users.c.presence, users.c.auth_token).where(users.c.username == "pat"),
    )
    assert rows == [("offline", None)]  # the session's end was committed

    server.start()
    async with server.client() as c:
        assert (await c.login("pat", PASSWORD))["username"] == "pat"


async def test_sigint_is_graceful(server: ServerProcess) -> None:
    assert await asyncio.to_thread(server.stop, signal.SIGINT) == 0


async def test_idle_connections_are_closed(server_factory) -> None:
    server = server_factory(idle_timeout=0.6)
    conn = await RawConnection.open(server)
    try:
        assert await conn.closed_by_server(timeout=5)
        assert conn.frames[-1]["type"] == "error"
        assert conn.frames[-1]["payload"]["code"] == "idle_timeout"
    finally:
        await conn.close()
    # A client that pings stays connected.
    async with server.client(ping_interval=0.2) as c:
        await asyncio.sleep(1.5)
        await c.ping()
