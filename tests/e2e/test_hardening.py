"""What an attacker from outside broke, tried again against the real server.

Each test here failed before the fix it names: a deeply nested payload
reached ``RecursionError``; parallel guesses were all checked; a block
during a login's hashing left a live session; look-alike names registered
beside the real ones; ``promote`` waited for the next login; registrations
were not limited per address.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from p2sp.common.message import encode_payload
from p2sp.common.protocol import encode_frame
from tests.e2e.conftest import PASSWORD, RawConnection, ServerProcess

pytestmark = pytest.mark.timeout(180)


def _deep_array(depth: int) -> bytes:
    return b'{"type":"ping","payload":{"id":7,"data":' + b"[" * depth + b"]" * depth + b"}}"


def _deep_object(depth: int) -> bytes:
    inner = b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"type":"add","payload":{"id":7,"data":' + inner + b"}}"


@pytest.mark.parametrize("payload", [_deep_array(1000), _deep_object(1000), _deep_array(100_000)])
async def test_deep_json_is_a_bad_payload_and_the_connection_lives(
    payload: bytes, raw, user, server: ServerProcess
) -> None:
    bystander = await user("bystander")
    conn = await raw()
    await conn.send(encode_frame(payload))
    answer = await conn.response(None)
    assert (answer["status"], answer["code"]) == ("error", "bad_payload")
    assert "levels" in answer["message"]
    assert (await conn.request("ping"))["status"] == "ok"  # same connection, still served
    await bystander.call("friends")
    assert "Traceback" not in server.log()


async def test_nesting_at_the_limit_is_still_understood(raw) -> None:
    conn = await raw()
    # envelope, payload, data: 3 levels; 29 more arrays inside reach the limit of 32.
    nested = encode_payload("ping", {"id": 1, "data": {"x": [[[[[[[[[[1]]]]]]]]]]}})
    await conn.send(encode_frame(nested))
    assert (await conn.response(1))["status"] == "ok"


async def _guess(server: ServerProcess, name: str, password: str) -> dict:
    conn = await RawConnection.open(server)
    try:
        return await conn.request("login", {"username": name, "password": password})
    finally:
        await conn.close()


async def test_parallel_guesses_are_limited_like_sequential_ones(server_factory) -> None:
    # Slow hashes, so that all the guesses are in flight together.
    server = server_factory(scrypt_n=16384)
    async with server.client() as c:
        await c.reg("victim", PASSWORD)
    answers = await asyncio.gather(*(_guess(server, "victim", f"guess{i:04}") for i in range(200)))
    codes = [a["code"] for a in answers]
    assert codes.count("bad_password") <= 5  # login_max_failures
    assert codes.count("bad_password") + codes.count("rate_limited") == 200
    assert all(a["data"]["retry_after"] >= 1 for a in answers if a["code"] == "rate_limited")
    # The real password is refused too while the name is locked...
    assert (await _guess(server, "victim", PASSWORD))["code"] == "rate_limited"


async def test_parallel_guesses_over_many_names_are_limited_per_address(server_factory) -> None:
    server = server_factory(scrypt_n=16384, login_max_failures_per_ip=20)
    answers = await asyncio.gather(*(_guess(server, f"nobody{i}", "whatever1") for i in range(60)))
    codes = [a["code"] for a in answers]
    assert codes.count("no_such_user") <= 20
    assert codes.count("no_such_user") + codes.count("rate_limited") == 60


async def test_registrations_are_limited_per_address(server_factory) -> None:
    server = server_factory(reg_max_per_ip=3)
    conn = await RawConnection.open(server)
    try:
        codes = [
            (await conn.request("reg", {"username": f"new{i}", "password": PASSWORD}))["code"]
            for i in range(5)
        ]
        assert codes == ["ok", "ok", "ok", "rate_limited", "rate_limited"]
        login = await conn.request("login", {"username": "new0", "password": PASSWORD})
        assert login["status"] == "ok"  # logging in is not registering
    finally:
        await conn.close()


async def _online(admin, name: str) -> bool:
    rows = (await admin.call("allusers", online_only=True))["users"]
    return any(r["username"] == name for r in rows)


async def test_a_block_during_login_leaves_no_session(server_factory) -> None:
    """Block the user while their password is being hashed, many times over:
    once ``blockuser`` has answered, the user has no session."""
    server = server_factory(scrypt_n=16384)
    async with server.client() as c:
        await c.reg("root", PASSWORD)
        await c.reg("mallory", PASSWORD)
    await _promote(server, "root")
    admin = server.client()
    await admin.connect()
    await admin.login("root", PASSWORD)
    try:
        for round_ in range(12):
            conn = await RawConnection.open(server)
            login = asyncio.ensure_future(
                conn.request("login", {"username": "mallory", "password": PASSWORD})
            )
            await asyncio.sleep(0.002 * (round_ % 6))  # somewhere inside the hashing
            await admin.call("blockuser", username="mallory")
            assert not await _online(admin, "mallory"), f"round {round_}"
            answer = await login
            if answer["status"] == "ok":
                # It attached before the block: the block kicked it.
                assert await conn.closed_by_server(5)
                kicked = [f for f in conn.frames if f["type"] == "kicked"]
                assert kicked and kicked[0]["payload"]["reason"] == "blocked"
            else:
                assert answer["code"] == "user_blocked"
            await conn.close()
            await admin.call("unblockuser", username="mallory")
    finally:
        await admin.close()


async def _promote(server: ServerProcess, name: str, verb: str = "promote") -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "p2sp.server", verb, name, "--database-url", server.database_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.workdir,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_promote_and_demote_reach_a_live_session(server_factory, user) -> None:
    server = server_factory(admin_poll=0.2)
    alice = await user("alice")
    with pytest.raises(Exception) as refused:
        await alice.call("allusers")
    assert getattr(refused.value, "code", "") == "not_permitted"
    await _promote(server, "alice")
    event = await alice.next_event("session", timeout=10)
    assert event.payload == {"is_admin": True}
    assert any(u["username"] == "alice" for u in (await alice.call("allusers"))["users"])
    await _promote(server, "alice", "demote")
    # Admin actions ask the database: refused at once, before any event.
    with pytest.raises(Exception) as refused:
        await alice.call("allusers")
    assert getattr(refused.value, "code", "") == "not_permitted"
    event = await alice.next_event("session", timeout=10)
    assert event.payload == {"is_admin": False}


@pytest.mark.parametrize(
    ("name", "code", "reason"),
    [
        ("аlice", "invalid_request", "mixes Cyrillic and Latin"),  # Cyrillic а
        ("αlice", "invalid_request", "mixes Greek and Latin"),
        ("ａｌｉｃｅ", "user_exists", "taken"),  # fullwidth: the same name
        ("ALICE", "user_exists", "taken"),
        ("aIice", "user_exists", "looks too much like"),  # capital i for l
        ("a/b", "invalid_request", "a username has only letters, digits"),
    ],
)
async def test_look_alike_names_are_refused(raw, name: str, code: str, reason: str) -> None:
    conn = await raw()
    assert (await conn.request("reg", {"username": "alice", "password": PASSWORD}))["status"] == (
        "ok"
    )
    answer = await conn.request("reg", {"username": name, "password": PASSWORD})
    assert answer["code"] == code
    assert reason in answer["message"]
    assert "regex" not in answer["message"] and "Expected" not in answer["message"]


async def test_names_in_every_script_still_register(raw) -> None:
    conn = await raw()
    for name in ("张三", "山田", "山田たろう", "ösel", "Мария", "user.name-1_x"):
        answer = await conn.request("reg", {"username": name, "password": PASSWORD})
        assert answer["status"] == "ok", (name, answer)
    # The name is compared in its PRECIS form: fullwidth and case variants log in.
    login = await conn.request(
        "login", {"username": "ＵＳＥＲ.ＮＡＭＥ-1_Ｘ", "password": PASSWORD}
    )
    assert (login["status"], login["data"]["username"]) == ("ok", "user.name-1_x")


async def test_a_cluster_setting_is_refused_at_start(tmp_path) -> None:
    proc = ServerProcess(
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", tmp_path, {"REDIS_URL": "redis://127.0.0.1"}
    )
    with pytest.raises(RuntimeError, match="no cluster"):
        proc.start(timeout=30)
