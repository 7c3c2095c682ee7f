"""Errors shared by the server and the clients.

Two families, because they end differently (docs/protocol.md, "Framing errors
(connection closed)" and "Request errors (connection lives on)"):

* ``ProtocolError``: the byte stream itself is broken (bad magic, checksum,
  length, payload that is not a JSON object). The reader cannot trust anything
  after it, so the connection is closed after an ``error`` event.
* ``ChatError``: a well-framed request that was refused (``fail``) or was
  malformed (``error``). The connection lives on; ``code`` is stable and is
  what programs compare, ``message`` is for people.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

Status = Literal["fail", "error"]


class P2SPError(Exception):
    """Base of every error this package raises on purpose."""

    code: ClassVar[str] = "p2sp_error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message or self.__class__.__doc__ or self.code


class ProtocolError(P2SPError):
    """The frame stream is broken; the connection must be closed."""

    code: ClassVar[str] = "protocol_error"


class BadMagic(ProtocolError):
    """The frame does not start with the p2sp magic bytes AB CD EF 88."""

    code = "bad_magic"


class BadChecksum(ProtocolError):
    """The payload's CRC-32 does not match the frame header."""

    code = "bad_checksum"


class BadLength(ProtocolError):
    """The frame announces an empty payload or one over the size limit."""

    code = "bad_length"


class BadPayload(ProtocolError):
    """The payload is not UTF-8 JSON of an object."""

    code = "bad_payload"


class ChatError(P2SPError):
    """A request that was understood and refused, or that was malformed.

    ``status`` is ``fail`` for a rule that refused it and ``error`` for a
    malformed request or a server fault. ``data`` travels in the response's
    ``data`` field (rarely used: e.g. a retry hint).
    """

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        status: Status = "fail",
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or code.replace("_", " "))
        self.code = code  # type: ignore[misc]  # instance code, not the class default
        self.status: Status = status
        self.data = data or {}

    def __repr__(self) -> str:
        return f"ChatError({self.status}/{self.code}: {self.message})"

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def invalid_request(message: str) -> ChatError:
    """A malformed request: a missing, mistyped or out-of-range field."""
    return ChatError("invalid_request", message, status="error")


def not_authenticated(message: str = "log in first") -> ChatError:
    """A request that needs a session and has none, or a token that is not its own."""
    return ChatError("not_authenticated", message)
