"""Errors the SDK raises to its callers.

A refused request is a ``ChatError`` like the server's own, so code that
already compares ``exc.code`` against the protocol's stable codes keeps
working on the client side; the two subclasses only say which ``status`` the
server answered with. Transport trouble is a separate family
(``P2SPError`` but not ``ChatError``) because the request may or may not have
reached the server, and the caller has to decide whether to resend.
"""

from __future__ import annotations

from typing import Any, ClassVar

from p2sp.common.exceptions import ChatError, P2SPError

__all__ = ["ConnectionLost", "RequestError", "RequestFailed", "RequestTimeout", "from_response"]


class RequestFailed(ChatError):
    """The server understood the request and a rule refused it (``status: "fail"``)."""

    def __init__(self, code: str, message: str = "", *, data: dict[str, Any] | None = None) -> None:
        super().__init__(code, message, status="fail", data=data)

    def __repr__(self) -> str:
        return f"RequestFailed({self.code}: {self.message})"


class RequestError(ChatError):
    """The request was malformed or the server failed (``status: "error"``)."""

    def __init__(self, code: str, message: str = "", *, data: dict[str, Any] | None = None) -> None:
        super().__init__(code, message, status="error", data=data)

    def __repr__(self) -> str:
        return f"RequestError({self.code}: {self.message})"


class ConnectionLost(P2SPError):
    """The connection closed (or was never up) before the response arrived.

    The request may or may not have been processed: resend only what is
    idempotent (``send`` with the same ``client_msg_id`` is).
    """

    code: ClassVar[str] = "connection_lost"


class RequestTimeout(P2SPError):
    """No response arrived within ``request_timeout``; the connection may be half-open."""

    code: ClassVar[str] = "request_timeout"


def from_response(payload: dict[str, Any]) -> ChatError:
    """The exception for a non-``ok`` response payload.

    An unknown status is treated as ``error``: the client cannot tell what the
    server meant, and ``error`` is the status that promises nothing.
    """
    code = payload.get("code")
    message = payload.get("message")
    data = payload.get("data")
    code = code if isinstance(code, str) and code else "unknown_error"
    message = message if isinstance(message, str) else ""
    data = data if isinstance(data, dict) else None
    if payload.get("status") == "fail":
        return RequestFailed(code, message, data=data)
    return RequestError(code, message, data=data)
