"""Envelopes and action data (docs/protocol.md, "Envelope", "Field rules"): what is accepted
and what each refusal says.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2sp.common.actions import Credentials
from p2sp.common.exceptions import BadPayload, ChatError
from p2sp.common.message import (
    MalformedRequest,
    decode_data,
    decode_json,
    decode_request,
    encode_payload,
    event_frame,
    response_frame,
)
from p2sp.common.protocol import FrameDecoder


def _req(obj: object) -> bytes:
    return msgspec.json.encode(obj)


def test_request_round_trip() -> None:
    req = decode_request(
        _req(
            {
                "type": "login",
                "timestamp": 5,
                "payload": {"id": 9, "data": {"username": "a", "password": "b"}},
            }
        )
    )
    assert (req.action, req.id, req.timestamp, req.auth_token) == ("login", 9, 5, None)
    assert decode_data(req, Credentials) == Credentials("a", "b")


@pytest.mark.parametrize(
    "payload", [b"nope", b"[1]", b'"s"', b"1", b"", b"  ", b'{"type":"\xff"}', b'{"a":']
)
def test_not_a_json_object_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(BadPayload):
        decode_request(payload)


def test_missing_type_is_invalid_request() -> None:
    with pytest.raises(ChatError) as err:
        decode_request(_req({"payload": {"id": 1}}))
    assert (err.value.status, err.value.code) == ("error", "invalid_request")
    assert "type" in err.value.message


def test_bad_body_keeps_the_request_id() -> None:
    with pytest.raises(MalformedRequest) as err:
        decode_request(_req({"type": "ping", "payload": {"id": 4, "auth_token": 1}}))
    assert err.value.request_id == 4
    assert "payload.auth_token" in err.value.message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"password": "p"}, "username"),
        ({"username": "ok"}, "password"),
        ({"username": 1, "password": "p"}, "data.username"),
        ({"username": "a b", "password": "p"}, "data.username"),
        ({"username": "x" * 33, "password": "p"}, "data.username"),
        ({"username": "", "password": "p"}, "data.username"),
    ],
)
def test_data_errors_name_the_field(data: dict, field: str) -> None:
    req = decode_request(_req({"type": "reg", "payload": {"id": 1, "data": data}}))
    with pytest.raises(ChatError) as err:
        decode_data(req, Credentials)
    assert err.value.code == "invalid_request"
    assert field in err.value.message


name_chars = st.characters(categories=("Lu", "Ll", "Lo", "Nd")) | st.sampled_from("_.-")


@given(st.text(name_chars, min_size=1, max_size=32))
def test_names_of_any_script_are_valid(name: str) -> None:
    req = decode_request(
        _req({"type": "reg", "payload": {"id": 1, "data": {"username": name, "password": "p"}}})
    )
    assert decode_data(req, Credentials).username == name


@given(
    st.text(min_size=1, max_size=32).filter(
        lambda s: any(not (c.isalnum() or c in "_.-") for c in s)
    )
)
def test_names_with_other_characters_are_refused(name: str) -> None:
    req = decode_request(
        _req({"type": "reg", "payload": {"id": 1, "data": {"username": name, "password": "p"}}})
    )
    with pytest.raises(ChatError):
        decode_data(req, Credentials)


def test_response_and_event_frames_decode() -> None:
    frames = FrameDecoder().feed(
        response_frame(3, data={"x": 1}) + event_frame("kicked", {"reason": "shutdown"})
    )
    resp, event = (decode_json(f) for f in frames)
    assert resp["type"] == "response"
    assert resp["payload"] == {
        "id": 3,
        "status": "ok",
        "code": "ok",
        "message": "",
        "data": {"x": 1},
    }
    assert event["type"] == "kicked" and event["payload"] == {"reason": "shutdown"}
    assert isinstance(event["timestamp"], int)


def test_encode_payload_timestamp() -> None:
    assert decode_json(encode_payload("ping", {}, timestamp=42))["timestamp"] == 42
