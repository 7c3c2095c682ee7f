"""``ClientMessageHandler``: events and responses in, display lines out.

Pure functions of the data and the string table: no I/O, no client state, so
every wording can be unit-tested in both languages, and the terminal client,
a future GUI or a bot can share the same rendering. The payloads come from
the network, so every field is read defensively: a missing or mistyped field
shows as a blank, it never raises.

A new event type is one entry in ``_formatters`` and its keys in
``strings.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from p2sp.client.client import Event
from p2sp.client.errors import ConnectionLost, RequestTimeout
from p2sp.client.strings import Strings
from p2sp.common.exceptions import ChatError, P2SPError

Formatter = Callable[[Mapping[str, Any]], list[str]]

KICK_REASONS = ("logged_in_elsewhere", "blocked", "slow_consumer", "shutdown")


def _text(value: object, default: str = "") -> str:
    """A payload field as display text (None and absent fields become ``default``)."""
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


class ClientMessageHandler:
    """Renders what the server says, in the user's language."""

    def __init__(self, strings: Strings) -> None:
        self.strings = strings
        self._formatters: dict[str, Formatter] = {
            "kicked": self._kicked,
            "error": self._error_event,
            "presence": self._presence,
            "sync_done": self._sync_done,
            "disconnected": self._disconnected,
            "reconnected": self._reconnected,
        }

    # --- events ------------------------------------------------------------

    def format_event(self, event: Event) -> list[str]:
        """The lines to show for one event (possibly none)."""
        formatter = self._formatters.get(event.type)
        if formatter is None:
            return self._unknown(event)
        return formatter(event.payload)

    def reason(self, code: object) -> str:
        """A protocol reason code in words; unknown codes are shown as they are."""
        text = _text(code, "?")
        key = f"reason.{text}"
        return self.strings(key) if self.strings.has(key) else text

    def _kicked(self, payload: Mapping[str, Any]) -> list[str]:
        reason = _text(payload.get("reason"))
        if reason in KICK_REASONS:
            return [self.strings(f"event.kicked.{reason}")]
        return [self.strings("event.kicked.other", reason=self.reason(reason or "?"))]

    def _error_event(self, payload: Mapping[str, Any]) -> list[str]:
        return [
            self.strings(
                "event.error",
                code=_text(payload.get("code"), "error"),
                message=_text(payload.get("message")),
            )
        ]

    def _presence(self, payload: Mapping[str, Any]) -> list[str]:
        key = "event.presence.online" if payload.get("online") else "event.presence.offline"
        return [self.strings(key, username=_text(payload.get("username"), "?"))]

    def _sync_done(self, payload: Mapping[str, Any]) -> list[str]:
        count = payload.get("count")
        if not isinstance(count, int) or count <= 0:
            return []  # nothing was missed: say nothing
        return [self.strings("event.sync_done", count=count)]

    def _disconnected(self, payload: Mapping[str, Any]) -> list[str]:
        reason = _text(payload.get("reason"), "connection_closed")
        if reason == "client_closed":
            return [self.strings("event.disconnected.closed")]
        key = (
            "event.disconnected.reconnecting"
            if payload.get("will_reconnect")
            else "event.disconnected.final"
        )
        return [self.strings(key, reason=self.reason(reason))]

    def _reconnected(self, payload: Mapping[str, Any]) -> list[str]:
        if payload.get("relogged_in"):
            return [
                self.strings(
                    "event.reconnected.relogged", username=_text(payload.get("username"), "?")
                )
            ]
        if payload.get("code"):
            return [
                self.strings(
                    "event.reconnected.relogin_failed",
                    code=_text(payload.get("code")),
                    message=_text(payload.get("message")),
                )
            ]
        return [self.strings("event.reconnected.plain")]

    def _unknown(self, event: Event) -> list[str]:
        """Events this client version has no wording for, shown raw rather than hidden."""
        payload = msgspec.json.encode(event.payload).decode("utf-8", "replace")
        return [self.strings("event.unknown", type=event.type, payload=payload)]

    # --- responses ---------------------------------------------------------

    def format_error(self, error: BaseException) -> str:
        """A failed command for a person: the server's message and its stable code."""
        if isinstance(error, ChatError):
            return self.strings("error.request", message=error.message, code=error.code)
        if isinstance(error, ConnectionLost):
            return self.strings("error.connection_lost")
        if isinstance(error, RequestTimeout):
            return self.strings("error.timeout")
        if isinstance(error, P2SPError):
            return self.strings("error.other", message=error.message)
        return self.strings("error.other", message=str(error) or type(error).__name__)

    def registered(self, username: str, user_id: int) -> str:
        return self.strings("reg.ok", username=username, user_id=user_id)

    def welcome(self, data: Mapping[str, Any]) -> list[str]:
        """The login greeting; admins are told their extra commands are unlocked."""
        username = _text(data.get("username"), "?")
        if data.get("is_admin"):
            return [
                self.strings("login.welcome_admin", username=username),
                self.strings("login.admin_hint"),
            ]
        return [self.strings("login.welcome_user", username=username)]
