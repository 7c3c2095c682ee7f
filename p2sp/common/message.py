"""Envelopes of PROTOCOL §2 and the data of each action, as msgspec Structs.

Decoding is lazy in two steps: the envelope first, with the request's
``data`` kept as raw JSON, then ``data`` against the action's own Struct once
the action is known. msgspec validates types and bounds while it decodes, so a
malformed request costs no Python-level checking and its error names the
field (``... - at `data.username```).

The field rules here (name lengths and characters) are the protocol's, shared
by the server and the clients; the rules that depend on server settings or on
state (password strength, message length, friendship) live in the services.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from p2sp.common.exceptions import BadPayload, ChatError, invalid_request
from p2sp.common.protocol import encode_frame

# --- field types -----------------------------------------------------------

#: 1-32 letters (any script), digits, ``_ . -`` (PROTOCOL §3).
Username = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[\w.\-]+\Z")]
#: Bounded so a huge string is refused before it reaches the hasher; the
#: 8-128 strength rule is the account service's (``weak_password``).
Password = Annotated[str, msgspec.Meta(max_length=1024)]
#: 1-64 characters, no control characters.
GroupName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+\Z")
]
#: Non-empty; the upper bound is a server setting, checked by the service.
Text = Annotated[str, msgspec.Meta(min_length=1)]
ClientMsgId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
RequestId = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Id = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]

Status = Literal["ok", "fail", "error"]
T = TypeVar("T")


def now_ms() -> int:
    """Milliseconds since the epoch, the protocol's timestamp unit."""
    return time.time_ns() // 1_000_000


# --- envelopes --------------------------------------------------------------


class Envelope(msgspec.Struct):
    """Every payload: ``{"type": T, "timestamp": MS, "payload": {...}}``."""

    type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    timestamp: int = 0
    payload: msgspec.Raw = msgspec.Raw(b"{}")


class RequestBody(msgspec.Struct):
    """The ``payload`` of a request; ``data`` stays raw until the action is known."""

    id: RequestId
    auth_token: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"{}")


class Request(msgspec.Struct):
    """A decoded request, ready for the action table."""

    action: str
    id: int
    auth_token: str | None
    data: msgspec.Raw
    timestamp: int


class Response(msgspec.Struct):
    """``payload`` of a ``response`` frame."""

    id: int | None
    status: Status
    code: str = "ok"
    message: str = ""
    data: dict[str, Any] = {}


class _OutEnvelope(msgspec.Struct):
    type: str
    timestamp: int
    payload: Any


# --- action data ------------------------------------------------------------


class Empty(msgspec.Struct):
    """Actions without data (``ping``, ``logout`` ...); unknown fields are ignored."""


class Credentials(msgspec.Struct):
    """``reg`` and ``login``."""

    username: Username
    password: Password


class NamedUser(msgspec.Struct):
    """``add``: the user named."""

    username: Username


class SendDirect(msgspec.Struct):
    """``send``: a direct message; ``client_msg_id`` makes a resend land once."""

    to: Username
    text: Text
    client_msg_id: ClientMsgId | None = None


class AckItem(msgspec.Struct):
    conversation_id: Id
    seq: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class Ack(msgspec.Struct):
    """``ack``: cumulative per conversation, bounded per request."""

    acks: Annotated[list[AckItem], msgspec.Meta(min_length=1, max_length=1000)]


class NewGroup(msgspec.Struct):
    """``newgroup``; the cap on ``max_members`` is a server setting."""

    name: GroupName
    public: bool = False
    description: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    max_members: Annotated[int, msgspec.Meta(ge=2)] | None = None


class GroupRef(msgspec.Struct):
    """``delgroup``, ``joingroup``, ``leavegroup``."""

    group_id: Id


class GroupMember(msgspec.Struct):
    """``addgroupuser``, ``delgroupuser``."""

    group_id: Id
    username: Username


class GroupRole(msgspec.Struct):
    """``setgrouprole``."""

    group_id: Id
    username: Username
    role: Literal["admin", "member"]


class SendGroup(msgspec.Struct):
    """``sendgroup``."""

    group_id: Id
    text: Text
    client_msg_id: ClientMsgId | None = None


class AllUsers(msgspec.Struct):
    online_only: bool = False


class AdminSend(msgspec.Struct):
    username: Username
    text: Text


class GroupSelector(msgspec.Struct):
    """A group by id, or by name and creator as seed 002's admin commands name it."""

    group_id: Id | None = None
    name: GroupName | None = None
    creator: Username | None = None


class AdminSendGroup(GroupSelector, kw_only=True):
    text: Text


class Broadcast(msgspec.Struct):
    text: Text


# --- decoding ---------------------------------------------------------------


class MalformedRequest(ChatError):
    """``error``/``invalid_request`` for a request whose body could not be read."""

    def __init__(self, message: str, request_id: int | None) -> None:
        super().__init__("invalid_request", message, status="error")
        self.request_id = request_id


_envelope_decoder = msgspec.json.Decoder(Envelope)
_body_decoder = msgspec.json.Decoder(RequestBody)
_any_decoder = msgspec.json.Decoder()


def _check_object(payload: bytes) -> None:
    """Refuse a payload that is not a JSON object (PROTOCOL §1 closes on it)."""
    stripped = payload.lstrip(b" \t\r\n")
    if not stripped.startswith(b"{"):
        raise BadPayload("payload is not a JSON object")


def decode_envelope(payload: bytes) -> Envelope:
    """Decode any frame's payload; raise ``BadPayload`` or ``invalid_request``."""
    _check_object(payload)
    try:
        return _envelope_decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise invalid_request(_field_message(exc, "")) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BadPayload(f"payload is not UTF-8 JSON: {exc}") from None


def decode_request(payload: bytes) -> Request:
    """Decode a client's request frame.

    A bad body raises ``MalformedRequest`` carrying the request ``id`` when
    one could be read, so the response still reaches the right caller.
    """
    env = decode_envelope(payload)
    try:
        body = _body_decoder.decode(env.payload)
    except msgspec.ValidationError as exc:
        raise MalformedRequest(_field_message(exc, "payload"), _salvage_id(env.payload)) from None
    return Request(env.type, body.id, body.auth_token, body.data, env.timestamp)


def decode_data(request: Request, kind: type[T], decoder: msgspec.json.Decoder | None = None) -> T:
    """Validate a request's ``data`` against its action's Struct."""
    try:
        if decoder is not None:
            return decoder.decode(request.data)
        return msgspec.json.decode(request.data, type=kind)
    except msgspec.ValidationError as exc:
        raise invalid_request(_field_message(exc, "data")) from None


def decode_json(payload: bytes) -> dict[str, Any]:
    """Decode a payload as a plain dict (clients, which read every kind of frame)."""
    _check_object(payload)
    try:
        value = _any_decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BadPayload(f"payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadPayload("payload is not a JSON object")
    return value


def _salvage_id(raw: bytes) -> int | None:
    try:
        value = _any_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    rid = value.get("id") if isinstance(value, dict) else None
    return rid if isinstance(rid, int) and not isinstance(rid, bool) else None


def _field_message(exc: msgspec.ValidationError, root: str) -> str:
    """msgspec says `$.field`; name it from the envelope's point of view."""
    text = str(exc)
    if root:
        text = text.replace("`$.", f"`{root}.").replace("`$`", f"`{root}`")
        if "at `" not in text:
            text = f"{text} - in `{root}`"
    return text


# --- encoding ---------------------------------------------------------------

_encode = msgspec.json.Encoder().encode


def encode_payload(type_: str, payload: Any, timestamp: int | None = None) -> bytes:
    """JSON payload of one envelope (no frame header)."""
    return _encode(_OutEnvelope(type_, now_ms() if timestamp is None else timestamp, payload))


def request_frame(
    action: str, request_id: int, data: dict[str, Any] | None = None, auth_token: str | None = None
) -> bytes:
    """A whole request frame, as a client sends it."""
    body: dict[str, Any] = {"id": request_id, "data": data or {}}
    if auth_token is not None:
        body["auth_token"] = auth_token
    return encode_frame(encode_payload(action, body))


def response_frame(
    request_id: int | None,
    status: Status = "ok",
    code: str = "ok",
    message: str = "",
    data: dict[str, Any] | None = None,
) -> bytes:
    """A whole response frame."""
    return encode_frame(
        encode_payload("response", Response(request_id, status, code, message, data or {}))
    )


def error_response_frame(request_id: int | None, err: ChatError) -> bytes:
    """The response frame for a refused or malformed request."""
    return response_frame(request_id, err.status, err.code, err.message, err.data)


def event_frame(name: str, payload: Any) -> bytes:
    """A whole event frame. Encode once, write the same bytes to every recipient."""
    return encode_frame(encode_payload(name, payload))
