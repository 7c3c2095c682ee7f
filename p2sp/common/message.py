"""Envelopes (docs/protocol.md, "Envelope"): decoding, encoding, frames.

Decoding is lazy in two steps: the envelope first, with the request's
``data`` kept as raw JSON, then ``data`` against the action's own Struct
(``p2sp.common.actions``) once the action is known. msgspec validates types
and bounds while it decodes, so a malformed request costs no Python-level
checking and its error names the field (``... - at `data.username```),
rewritten here as a sentence.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from p2sp.common.exceptions import BadPayload, ChatError, invalid_request
from p2sp.common.limits import GROUP_NAME_PATTERN, USERNAME_PATTERN
from p2sp.common.protocol import encode_frame

# --- field types -----------------------------------------------------------

RequestId = Annotated[int, msgspec.Meta(ge=0, le=2**53)]

Status = Literal["ok", "fail", "error"]
T = TypeVar("T")

#: Levels of ``[`` / ``{`` a payload may nest, the envelope's own included
#: (a request's data starts at level 3). The server's ``max_json_depth``
#: setting overrides it; decoders recurse, so the bound comes first.
DEFAULT_JSON_DEPTH = 32


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


# --- decoding ---------------------------------------------------------------


class MalformedRequest(ChatError):
    """``error``/``invalid_request`` for a request whose body could not be read."""

    def __init__(self, message: str, request_id: int | None) -> None:
        super().__init__("invalid_request", message, status="error")
        self.request_id = request_id


_envelope_decoder = msgspec.json.Decoder(Envelope)
_body_decoder = msgspec.json.Decoder(RequestBody)
_any_decoder = msgspec.json.Decoder()


class TooDeep(BadPayload):
    """The payload is JSON nested deeper than the server accepts.

    The frame itself is sound, so the connection lives on: the request is
    answered ``error``/``bad_payload`` (its id cannot be read without
    decoding it, so the answer's ``id`` is null).
    """


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def check_depth(payload: bytes, limit: int = DEFAULT_JSON_DEPTH) -> None:
    """Raise ``TooDeep`` if ``payload`` nests arrays/objects more than ``limit`` deep.

    Runs before any decoder, which would recurse once per level (a payload
    of a thousand ``[`` reached ``RecursionError``). Payloads with fewer
    brackets than the limit, nearly all of them, cost two ``bytes.count``.
    """
    if payload.count(b"[") + payload.count(b"{") <= limit:
        return
    depth = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b'""', payload)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise TooDeep(f"the payload nests more than {limit} levels of arrays and objects")
        else:
            depth -= 1


def _check_object(payload: bytes) -> None:
    """Refuse a payload that is not a JSON object (docs/protocol.md, "Framing errors")."""
    stripped = payload.lstrip(b" \t\r\n")
    if not stripped.startswith(b"{"):
        raise BadPayload("payload is not a JSON object")


def decode_envelope(payload: bytes, max_depth: int = DEFAULT_JSON_DEPTH) -> Envelope:
    """Decode any frame's payload; raise ``BadPayload`` or ``invalid_request``."""
    _check_object(payload)
    check_depth(payload, max_depth)
    try:
        # msgspec checks UTF-8 only in the strings it decodes, not inside a
        # ``Raw`` field (the request's data) or in fields it skips.
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPayload(f"payload is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        return _envelope_decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise invalid_request(_field_message(exc, "")) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BadPayload(f"payload is not UTF-8 JSON: {exc}") from None


def decode_request(payload: bytes, max_depth: int = DEFAULT_JSON_DEPTH) -> Request:
    """Decode a client's request frame.

    A bad body raises ``MalformedRequest`` carrying the request ``id`` when
    one could be read, so the response still reaches the right caller.
    """
    env = decode_envelope(payload, max_depth)
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


def decode_json(payload: bytes, max_depth: int = 256) -> dict[str, Any]:
    """Decode a payload as a plain dict (clients, which read every kind of frame)."""
    _check_object(payload)
    check_depth(payload, max_depth)
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


#: msgspec's wording of a failed constraint -> the same rule in words for people.
_PATTERN_TEXT = {
    USERNAME_PATTERN: "a username has only letters, digits, '_', '.' and '-'",
    GROUP_NAME_PATTERN: "control characters (line breaks, tabs ...) are not allowed",
}
_LENGTH = re.compile(r"Expected `(str|array)` of length (<=|>=) (\d+)")
_REGEX = re.compile(r"Expected `str` matching regex '(.*)'")


def _humane(text: str) -> str:
    """msgspec's constraint messages ("Expected `str` of length <= 64") as sentences."""
    m = _LENGTH.match(text)
    if m:
        kind, op, n = m.groups()
        unit = "characters" if kind == "str" else "items"
        bound = "at most" if op == "<=" else "at least"
        return f"{bound} {n} {unit}" + text[m.end() :]
    m = _REGEX.match(text)
    if m:
        pattern = m.group(1).encode().decode("unicode_escape")
        rule = _PATTERN_TEXT.get(pattern)
        if rule is not None:
            return rule + text[m.end() :]
    return text


def _field_message(exc: msgspec.ValidationError, root: str) -> str:
    """msgspec says `$.field`; name it from the envelope's point of view."""
    text = _humane(str(exc))
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
