"""``ClientMessageHandler``: events and responses in, display lines out.

Pure functions of the data and the string table: no I/O, no client state, so
every wording can be unit-tested in both languages, and the terminal client,
a future GUI or a bot can share the same rendering. The payloads come from
the network, so every field is read defensively: a missing or mistyped field
shows as a blank, it never raises.

A new event type is one entry in ``_formatters`` and its keys in
``p2sp.terminal.strings``; a new kind of chat message is one entry in
``_message_formatters``; a new system notice is one ``notice.<kind>`` key
in the string tables whose placeholders are fields of the ``notice`` object
(notices this client has no wording for show the server's English ``text``).

The parts: ``base.Renderer`` (strings, time zone, safe fields),
``lists.ListLines`` (friends, groups, rooms, users), ``history.HistoryLines``
(conversations, history pages, search results, edits, retractions,
receipts) and this module (server pushes and errors). Everything that came
from another person goes through ``neutralise`` (``neutralise.py``) first.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from p2sp.client import ConnectionLost, Event, RequestTimeout
from p2sp.common.exceptions import ChatError, P2SPError
from p2sp.terminal.display.history import CHANGE_TYPES, HistoryLines
from p2sp.terminal.display.lists import ListLines
from p2sp.terminal.display.neutralise import field_text as _text
from p2sp.terminal.display.neutralise import safe_body as _body
from p2sp.terminal.display.neutralise import safe_group as _group
from p2sp.terminal.display.neutralise import safe_name as _name
from p2sp.terminal.strings import Strings

Formatter = Callable[[Mapping[str, Any]], list[str]]

KICK_REASONS = ("logged_in_elsewhere", "blocked", "slow_consumer", "shutdown")
#: codes whose server message carries what the user needs (the look-alike an
#: existing name is too close to, the rule a field broke): shown after our words
DETAIL_CODES: Final = frozenset({"user_exists", "invalid_request"})
#: notice kinds of docs/protocol.md ("Events"); ``admin`` is worded by
#: ``_system_message``, the others by their ``notice.<kind>`` string (unknown
#: kinds show the server's ``text``)
NOTICE_KINDS = (
    "friend_added",
    "group_invited",
    "group_removed",
    "group_deleted",
    "group_blocked",
    "group_unblocked",
    "admin",
)


class ClientMessageHandler(HistoryLines, ListLines):
    """Renders what the server says, in the user's language."""

    def __init__(self, strings: Strings, *, tz: dt.tzinfo | None = None) -> None:
        super().__init__(strings, tz=tz)
        #: time zone for displayed times; None is the local one
        self.tz = tz
        self._formatters: dict[str, Formatter] = {
            "kicked": self._kicked,
            "error": self._error_event,
            "presence": self._presence,
            "sync_done": self._sync_done,
            "session": self._session,
            "disconnected": self._disconnected,
            "reconnected": self._reconnected,
        }
        #: ``message`` events by ``kind``: (payload, the text ready for the line) -> one
        #: line, or None if unsure
        self._message_formatters: dict[str, Callable[[Mapping[str, Any], str], str | None]] = {
            "direct": self._direct_message,
            "system": self._system_message,
            "group": self._group_message,
        }

    # --- events ------------------------------------------------------------

    def format_event(
        self, event: Event, *, ref: int | None = None, reply_ref: int | None = None
    ) -> list[str]:
        """The lines to show for one event (possibly none).

        For a ``message``: ``ref`` is the number the app gave it (for an edit or
        a retraction: the number of the message changed), shown at the end of
        its line; ``reply_ref`` the number of the message it replies to.
        """
        if event.type == "message":
            return self.message_lines(event.payload, ref=ref, reply_ref=reply_ref)
        formatter = self._formatters.get(event.type)
        if formatter is None:
            return self._unknown(event)
        return formatter(event.payload)

    # --- messages ----------------------------------------------------------

    def message_lines(
        self, payload: Mapping[str, Any], *, ref: int | None = None, reply_ref: int | None = None
    ) -> list[str]:
        """One chat message or notice; replayed ones carry the offline marker.

        An edit or a retraction is worded as the change it is; a message
        retracted before it was shown says so instead of its (erased) text; a
        message edited before it was shown is marked ``(edited)``.
        """
        kind = _text(payload.get("kind"))
        if kind not in self._message_formatters and payload.get("system") is True:
            kind = "system"
        if _text(payload.get("type")) in CHANGE_TYPES and kind in ("direct", "group"):
            return self.change_line(payload, ref=ref).split("\n")
        if payload.get("retracted") is True and kind in ("direct", "group"):
            line = self.retraction(payload, ref=ref)
        else:
            formatter = self._message_formatters.get(kind)
            body = self.quote(payload.get("reply_to"), reply_ref) + _body(payload.get("text"))
            found = formatter(payload, body) if formatter is not None else None
            if found is None:
                return self._unknown(Event("message", dict(payload), 0))
            line = self.with_ref(self.edited(found, payload), ref)
        if payload.get("replay") is True:
            line = self.strings("message.replayed", line=line)
        return line.split("\n")

    def _direct_message(self, payload: Mapping[str, Any], body: str) -> str | None:
        if payload.get("system") is True:
            return self._system_message(payload, body)
        return self.strings(
            "message.direct",
            sender=_name(payload.get("from"), "?"),
            message=body,
            time=self.clock(payload.get("sent_at")),
        )

    def _system_message(self, payload: Mapping[str, Any], body: str = "") -> str:
        """A notice in the user's inbox; an administrator's message names the admin."""
        notice = payload.get("notice")
        if isinstance(notice, Mapping) and notice.get("kind") == "admin":
            sender = _name(notice.get("from")) or _name(payload.get("from"))
            if sender:
                key = "message.admin_broadcast" if notice.get("broadcast") else "message.admin"
                return self.strings(
                    key,
                    sender=sender,
                    message=_body(payload.get("text")),
                    time=self.clock(payload.get("sent_at")),
                )
        return self.strings("message.system", message=self.notice_text(payload))

    def _group_message(self, payload: Mapping[str, Any], body: str) -> str:
        """Group chat, shown with the group's name; an administrator's is a system line."""
        group = _group(payload.get("group_name")) or _name(payload.get("group_id"), "?")
        if payload.get("system") is True:
            sender = _name(payload.get("from"))
            return self.strings(
                "message.group_system" if sender else "message.group_system_anonymous",
                group=group,
                sender=sender,
                message=body,
                time=self.clock(payload.get("sent_at")),
            )
        return self.strings(
            "message.group",
            group=group,
            sender=_name(payload.get("from"), "?"),
            message=body,
            time=self.clock(payload.get("sent_at")),
        )

    # --- other events --------------------------------------------------------

    def _kicked(self, payload: Mapping[str, Any]) -> list[str]:
        reason = _text(payload.get("reason"))
        if reason in KICK_REASONS:
            return [self.strings(f"event.kicked.{reason}")]
        return [self.strings("event.kicked.other", reason=self.reason(reason or "?"))]

    def _error_event(self, payload: Mapping[str, Any]) -> list[str]:
        code = _text(payload.get("code"), "error")
        line = self.strings(
            "event.error",
            code=_name(code),
            message=self.code_text(code, payload.get("message")),
        )
        return line.split("\n")

    def _presence(self, payload: Mapping[str, Any]) -> list[str]:
        key = "event.presence.online" if payload.get("online") else "event.presence.offline"
        return [self.strings(key, username=_name(payload.get("username"), "?"))]

    def _session(self, payload: Mapping[str, Any]) -> list[str]:
        """The server changed this session's rights (``p2sp-server promote`` / ``demote``)."""
        flag = payload.get("is_admin")
        if not isinstance(flag, bool):
            return self._unknown(Event("session", dict(payload), 0))
        return [self.strings("event.session.admin" if flag else "event.session.user")]

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
                    "event.reconnected.relogged", username=_name(payload.get("username"), "?")
                )
            ]
        if payload.get("code"):
            line = self.strings(
                "event.reconnected.relogin_failed",
                code=_name(payload.get("code")),
                message=self.code_text(payload.get("code"), payload.get("message")),
            )
            return line.split("\n")
        return [self.strings("event.reconnected.plain")]

    def _unknown(self, event: Event) -> list[str]:
        """Events this client version has no wording for, shown raw rather than hidden."""
        payload = msgspec.json.encode(event.payload).decode("utf-8", "replace")
        return self.strings("event.unknown", type=_name(event.type), payload=_body(payload)).split(
            "\n"
        )

    # --- responses ---------------------------------------------------------

    def format_error(self, error: BaseException) -> str:
        """A failed command for a person: the code in words, and the code itself.

        The words are the client's (so in the user's language) for every code
        of the protocol; the server's own message is added for the codes
        where it says what the user needs to know (``DETAIL_CODES``: which
        existing name a new one looks like, which rule a field broke), and
        stands alone for a code this client does not know.
        """
        if isinstance(error, ChatError):
            code = _name(error.code)
            words = self.code_text(error.code, error.message, error.data)
            if error.code in DETAIL_CODES and error.message:
                detail = _body(_without_field(error.message))
                return self.strings("error.request_detail", message=words, detail=detail, code=code)
            return self.strings("error.request", message=words, code=code)
        if isinstance(error, ConnectionLost):
            return self.strings("error.connection_lost")
        if isinstance(error, RequestTimeout):
            return self.strings("error.timeout")
        if isinstance(error, P2SPError):
            return self.strings("error.other", message=_body(error.message))
        return self.strings("error.other", message=_body(str(error) or type(error).__name__))


def _without_field(message: str) -> str:
    """The server's sentence without the field it names (`` - at `data.username` ``)."""
    return re.sub(r" - (?:at|in) `[^`]*`$", "", message)
