"""The framing and request rejection rules (docs/protocol.md, "Framing errors
(connection closed)", "Request errors (connection lives on)") against the real
server: bad input gets a clear error and changes nothing (docs/architecture.md,
"The promises and their tests").

Framing errors close only the offending connection, with an ``error`` event
first; request errors get an ``error``/``fail`` response and the connection
lives on. After each, a bystander's session is checked to still work.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
import zlib

import pytest

from p2sp.common.message import encode_payload
from p2sp.common.protocol import MAGIC, encode_frame
from tests.e2e.conftest import PASSWORD, RawConnection

pytestmark = pytest.mark.timeout(120)


def _frame(
    payload: bytes, *, magic: bytes = MAGIC, crc: int | None = None, length: int | None = None
) -> bytes:
    header = struct.pack(
        "<4sII",
        magic,
        zlib.crc32(payload) if crc is None else crc,
        len(payload) if length is None else length,
    )
    return header + payload


FRAMING_ERRORS = {
    "http_request": (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "bad_magic"),
    "wrong_magic": (_frame(b'{"type":"ping"}', magic=b"\xab\xcd\xef\x89"), "bad_magic"),
    "bad_checksum": (_frame(b'{"type":"ping","payload":{"id":1}}', crc=12345), "bad_checksum"),
    "zero_length": (_frame(b"", length=0), "bad_length"),
    "not_json": (encode_frame(b"this is not json"), "bad_payload"),
    "not_utf8": (encode_frame(b'{"type":"\xff\xfe"}'), "bad_payload"),
    "json_array": (encode_frame(b'[{"type":"ping"}]'), "bad_payload"),
    "json_string": (encode_frame(b'"ping"'), "bad_payload"),
    "truncated_json": (encode_frame(b'{"type":"ping",'), "bad_payload"),
}


@pytest.fixture
async def bystander(user):
    """A logged-in user whose session must survive every other test's abuse."""
    return await user("bystander")


@pytest.mark.parametrize("case", sorted(FRAMING_ERRORS))
async def test_framing_error_closes_only_that_connection(case: str, raw, bystander) -> None:
    data, code = FRAMING_ERRORS[case]
    conn = await raw()
    await conn.send(data)
    assert await conn.closed_by_server(timeout=5), "the server kept a broken stream open"
    assert [f["type"] for f in conn.frames] == ["error"]
    assert conn.frames[0]["payload"]["code"] == code
    assert conn.frames[0]["payload"]["message"]
    await bystander.ping()


async def test_oversize_length_is_refused_before_the_payload(raw, bystander) -> None:
    conn = await raw()
    # Announce 2 GiB and send nothing more: the header alone must be refused.
    await conn.send(struct.pack("<4sII", MAGIC, 0, 2**31))
    started = time.monotonic()
    assert await conn.closed_by_server(timeout=5)
    assert time.monotonic() - started < 3
    assert conn.frames[0]["payload"]["code"] == "bad_length"
    await bystander.ping()


async def test_frame_just_over_the_limit(server_factory) -> None:
    server = server_factory(max_frame=4096)
    conn = await RawConnection.open(server)
    try:
        payload = encode_payload("ping", {"id": 1, "data": {"pad": "x" * 4096}})
        await conn.send(encode_frame(payload))
        assert await conn.closed_by_server(timeout=5)
        assert conn.frames[0]["payload"]["code"] == "bad_length"
    finally:
        await conn.close()


async def test_partial_frames_wait_for_more_bytes(raw) -> None:
    conn = await raw()
    frame = encode_frame(encode_payload("ping", {"id": 7, "data": {}}))
    for byte in frame:
        await conn.send(bytes([byte]))
    resp = await conn.response(7)
    assert resp["status"] == "ok"


async def test_pipelined_requests_are_answered_in_order(raw) -> None:
    conn = await raw()
    frames = b"".join(
        encode_frame(encode_payload("ping", {"id": i, "data": {}})) for i in range(1, 201)
    )
    await conn.send(frames)
    ids = [(await conn.next_frame())["payload"]["id"] for _ in range(200)]
    assert ids == list(range(1, 201))


@pytest.mark.parametrize(
    ("payload", "status", "code", "mentions"),
    [
        ({"type": "fly", "payload": {"id": 1}}, "error", "unknown_action", "fly"),
        (
            {"type": "login", "payload": {"id": 1, "data": {"username": "x"}}},
            "error",
            "invalid_request",
            "password",
        ),
        (
            {"type": "login", "payload": {"id": 1, "data": {"username": 5, "password": "p" * 8}}},
            "error",
            "invalid_request",
            "data.username",
        ),
        (
            {"type": "login", "payload": {"id": 1, "data": "nope"}},
            "error",
            "invalid_request",
            "data",
        ),
        ({"type": "reg", "payload": {"id": 1}}, "error", "invalid_request", "username"),
        ({"type": "logout", "payload": {"id": 1}}, "fail", "not_authenticated", ""),
        (
            {"type": "logout", "payload": {"id": 1, "auth_token": 42}},
            "error",
            "invalid_request",
            "auth_token",
        ),
        ({"payload": {"id": 1}}, "error", "invalid_request", "type"),
        ({"type": "ping", "payload": {"id": "one"}}, "error", "invalid_request", "id"),
        ({"type": "ping", "payload": {"id": -1}}, "error", "invalid_request", "id"),
        ({"type": 7, "payload": {"id": 1}}, "error", "invalid_request", "type"),
    ],
)
async def test_bad_request_gets_an_answer_and_the_connection_lives(
    raw, bystander, payload: dict, status: str, code: str, mentions: str
) -> None:
    import msgspec

    conn = await raw()
    await conn.send(encode_frame(msgspec.json.encode(payload)))
    frame = await conn.next_frame()
    assert frame["type"] == "response"
    body = frame["payload"]
    assert (body["status"], body["code"]) == (status, code)
    assert mentions in body["message"]
    expected_id = payload["payload"].get("id")
    if (
        isinstance(expected_id, int)
        and expected_id >= 0
        and "type" in payload
        and isinstance(payload["type"], str)
    ):
        assert body["id"] == expected_id
    # Still open and serving.
    assert (await conn.request("ping"))["status"] == "ok"
    await bystander.ping()


async def test_unknown_fields_are_ignored(raw) -> None:
    import msgspec

    conn = await raw()
    payload = {
        "type": "ping",
        "timestamp": 1,
        "extra": True,
        "payload": {"id": 3, "x": 1, "data": {"y": 2}},
    }
    await conn.send(encode_frame(msgspec.json.encode(payload)))
    assert (await conn.response(3))["status"] == "ok"


async def test_bad_request_changes_nothing(raw, clients) -> None:
    conn = await raw()
    resp = await conn.request("reg", {"username": "has space", "password": PASSWORD})
    assert resp["code"] == "invalid_request"
    c = await clients()
    # The refused name was not half-created in any form.
    with pytest.raises(Exception) as err:
        await c.login("has space", PASSWORD)
    assert getattr(err.value, "code", "") == "invalid_request"
    await c.reg("has_space", PASSWORD)


async def test_random_byte_flood_leaves_others_unaffected(server, bystander) -> None:
    rng = random.Random(2026)

    async def flood(n: int) -> None:
        for _ in range(n):
            try:
                conn = await RawConnection.open(server)
            except OSError:
                continue
            try:
                blob = rng.randbytes(rng.randint(1, 4096))
                if rng.random() < 0.3:
                    blob = MAGIC + blob  # get past the magic check sometimes
                await conn.send(blob)
                await conn.closed_by_server(timeout=0.5)
            except (ConnectionError, OSError):
                pass
            finally:
                await conn.close()

    async def chatter() -> int:
        done = 0
        for _ in range(100):
            await bystander.ping()
            done += 1
        return done

    results = await asyncio.gather(*(flood(15) for _ in range(20)), chatter())
    assert results[-1] == 100
    # The server is still whole: new users can register and log in.
    conn = await RawConnection.open(server)
    try:
        assert (await conn.request("reg", {"username": "after", "password": PASSWORD}))[
            "status"
        ] == "ok"
        assert (await conn.request("login", {"username": "after", "password": PASSWORD}))[
            "status"
        ] == "ok"
    finally:
        await conn.close()
    assert server.alive()
