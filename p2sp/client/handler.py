"""``ClientMessageHandler``: events and responses in, display lines out.

Pure functions of the data and the string table: no I/O, no client state, so
every wording can be unit-tested in both languages, and the terminal client,
a future GUI or a bot can share the same rendering. The payloads come from
the network, so every field is read defensively: a missing or mistyped field
shows as a blank, it never raises.

A new event type is one entry in ``_formatters`` and its keys in
``strings.py``; a new kind of chat message is one entry in
``_message_formatters``; a new system notice is one ``notice.<kind>`` key
in the string tables whose placeholders are fields of the ``notice`` object
(notices this client has no wording for show the server's English ``text``).

Times (``sent_at``, ``last_seen``) are shown in the local time zone unless
the handler is given another one (tests pass UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from p2sp.client.client import Event
from p2sp.client.errors import ConnectionLost, RequestTimeout
from p2sp.client.strings import Strings
from p2sp.common.exceptions import ChatError, P2SPError

Formatter = Callable[[Mapping[str, Any]], list[str]]

KICK_REASONS = ("logged_in_elsewhere", "blocked", "slow_consumer", "shutdown")
#: notice kinds of PROTOCOL §5; ``admin`` is worded by ``_system_message``, the others
#: by their ``notice.<kind>`` string (unknown kinds show the server's ``text``)
NOTICE_KINDS = (
    "friend_added",
    "group_invited",
    "group_removed",
    "group_deleted",
    "group_blocked",
    "group_unblocked",
    "admin",
)


def _text(value: object, default: str = "") -> str:
    """A payload field as display text (None and absent fields become ``default``)."""
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


class ClientMessageHandler:
    """Renders what the server says, in the user's language."""

    def __init__(self, strings: Strings, *, tz: dt.tzinfo | None = None) -> None:
        self.strings = strings
        #: time zone for displayed times; None is the local one
        self.tz = tz
        self._formatters: dict[str, Formatter] = {
            "message": self._message,
            "kicked": self._kicked,
            "error": self._error_event,
            "presence": self._presence,
            "sync_done": self._sync_done,
            "disconnected": self._disconnected,
            "reconnected": self._reconnected,
        }
        #: ``message`` events by ``kind``; each returns one line, or None if unsure
        self._message_formatters: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
            "direct": self._direct_message,
            "system": self._system_message,
            "group": self._group_message,
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

    # --- messages ----------------------------------------------------------

    def _message(self, payload: Mapping[str, Any]) -> list[str]:
        """One chat message or notice; replayed ones carry the offline marker."""
        kind = _text(payload.get("kind"))
        if kind not in self._message_formatters and payload.get("system") is True:
            kind = "system"
        formatter = self._message_formatters.get(kind)
        line = formatter(payload) if formatter is not None else None
        if line is None:
            return self._unknown(Event("message", dict(payload), 0))
        if payload.get("replay") is True:
            line = self.strings("message.replayed", line=line)
        return [line]

    def _direct_message(self, payload: Mapping[str, Any]) -> str | None:
        if payload.get("system") is True:
            return self._system_message(payload)
        return self.strings(
            "message.direct",
            sender=_text(payload.get("from"), "?"),
            message=_text(payload.get("text")),
            time=self.clock(payload.get("sent_at")),
        )

    def _system_message(self, payload: Mapping[str, Any]) -> str:
        """A notice in the user's inbox; an administrator's message names the admin."""
        notice = payload.get("notice")
        if isinstance(notice, Mapping) and notice.get("kind") == "admin":
            sender = _text(notice.get("from")) or _text(payload.get("from"))
            if sender:
                key = "message.admin_broadcast" if notice.get("broadcast") else "message.admin"
                return self.strings(
                    key,
                    sender=sender,
                    message=_text(payload.get("text")),
                    time=self.clock(payload.get("sent_at")),
                )
        return self.strings("message.system", message=self.notice_text(payload))

    def _group_message(self, payload: Mapping[str, Any]) -> str:
        """Group chat, shown with the group's name; an administrator's is a system line."""
        group = _text(payload.get("group_name")) or _text(payload.get("group_id"), "?")
        if payload.get("system") is True:
            sender = _text(payload.get("from"))
            return self.strings(
                "message.group_system" if sender else "message.group_system_anonymous",
                group=group,
                sender=sender,
                message=_text(payload.get("text")),
                time=self.clock(payload.get("sent_at")),
            )
        return self.strings(
            "message.group",
            group=group,
            sender=_text(payload.get("from"), "?"),
            message=_text(payload.get("text")),
            time=self.clock(payload.get("sent_at")),
        )

    def notice_text(self, payload: Mapping[str, Any]) -> str:
        """A system message's text: the notice in our words when we have them, else ``text``.

        Our wording is used only if every name it needs is in the notice, so
        a notice with a field missing still shows the server's sentence.
        """
        fallback = _text(payload.get("text"))
        notice = payload.get("notice")
        if not isinstance(notice, Mapping):
            return fallback
        kind = notice.get("kind")
        key = f"notice.{kind}"
        if not isinstance(kind, str) or not self.strings.has(key):
            return fallback
        params: dict[str, str] = {}
        for name in self.strings.fields(key):
            value = notice.get(name)
            if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                return fallback
            params[name] = str(value)
        return self.strings(key, **params)

    def clock(self, ms: object) -> str:
        """``HH:MM`` of a protocol timestamp (ms since the epoch); ``--:--`` if unreadable."""
        when = self._datetime(ms)
        return when.strftime("%H:%M") if when is not None else "--:--"

    def date_time(self, ms: object) -> str:
        """``YYYY-MM-DD HH:MM`` of a protocol timestamp; ``?`` if unreadable."""
        when = self._datetime(ms)
        return when.strftime("%Y-%m-%d %H:%M") if when is not None else "?"

    def _datetime(self, ms: object) -> dt.datetime | None:
        if isinstance(ms, bool) or not isinstance(ms, int | float):
            return None
        try:
            when = dt.datetime.fromtimestamp(ms / 1000, tz=self.tz or dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return when if self.tz is not None else when.astimezone()

    # --- other events --------------------------------------------------------

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

    def added(self, data: Mapping[str, Any], username: str) -> str:
        """The result of ``add``: the new friend, and whether they are online now."""
        key = "add.ok.online" if data.get("online") else "add.ok.offline"
        return self.strings(key, username=_text(data.get("username"), username))

    def friends(self, friends: Sequence[Mapping[str, Any]]) -> list[str]:
        """The friend list: a title, then one line per friend (last seen if offline)."""
        if not friends:
            return [self.strings("friends.none")]
        lines = [self.strings("friends.title", count=len(friends))]
        for friend in friends:
            name = _text(friend.get("username"), "?")
            if friend.get("online"):
                lines.append(self.strings("friends.online", username=name))
            elif friend.get("last_seen") is not None:
                seen = self.date_time(friend.get("last_seen"))
                lines.append(self.strings("friends.offline_seen", username=name, last_seen=seen))
            else:
                lines.append(self.strings("friends.offline", username=name))
        return lines

    def sent(self, to: str, text: str) -> str:
        """The echo of a message this user sent."""
        return self.strings("send.echo", to=to, message=text)

    def welcome(self, data: Mapping[str, Any]) -> list[str]:
        """The login greeting; admins are told their extra commands are unlocked."""
        username = _text(data.get("username"), "?")
        if data.get("is_admin"):
            return [
                self.strings("login.welcome_admin", username=username),
                self.strings("login.admin_hint"),
            ]
        return [self.strings("login.welcome_user", username=username)]

    # --- groups, rooms, administration --------------------------------------

    def groups(self, groups: Sequence[Mapping[str, Any]]) -> list[str]:
        """The user's groups, numbered from 1 in the order given (``sendgroup`` uses n)."""
        if not groups:
            return [self.strings("groups.none")]
        return [
            self.strings("groups.title", count=len(groups)),
            *self._group_lines(groups, roles=True),
            self.strings("groups.hint"),
        ]

    def rooms(self, rooms: Sequence[Mapping[str, Any]]) -> list[str]:
        """The public rooms, numbered from 1 (``join`` / ``leave`` take n)."""
        if not rooms:
            return [self.strings("rooms.none")]
        return [
            self.strings("rooms.title", count=len(rooms)),
            *self._group_lines(rooms, joined=True),
            self.strings("rooms.hint"),
        ]

    def all_groups(self, groups: Sequence[Mapping[str, Any]]) -> list[str]:
        """Every group on the server (``allgroup``), in the ``groups`` format."""
        if not groups:
            return [self.strings("allgroup.none")]
        return [
            self.strings("allgroup.title", count=len(groups)),
            *self._group_lines(groups, public=True),
        ]

    def _group_lines(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        roles: bool = False,
        joined: bool = False,
        public: bool = False,
    ) -> list[str]:
        """``[n] name creator online/total`` plus markers (role, room, blocked)."""
        lines = []
        for number, row in enumerate(rows, start=1):
            marks = []
            role = row.get("role")
            if roles and role in ("owner", "admin"):
                marks.append(self.strings(f"groups.mark.{role}"))
            if (roles or public) and row.get("public") is True:
                marks.append(self.strings("groups.mark.public"))
            if joined and isinstance(role, str) and role:
                marks.append(self.strings("groups.mark.joined"))
            if row.get("blocked") is True:
                marks.append(self.strings("groups.mark.blocked"))
            joined_marks = self.strings("groups.mark_separator").join(marks)
            lines.append(
                self.strings(
                    "groups.line",
                    number=number,
                    name=_text(row.get("name"), "?"),
                    creator=_text(row.get("creator"), "?"),
                    online=_text(row.get("online"), "?"),
                    total=_text(row.get("total"), "?"),
                    marks=self.strings("groups.marks", marks=joined_marks) if marks else "",
                )
            )
        return lines

    def users(self, users: Sequence[Mapping[str, Any]], *, online_only: bool = False) -> list[str]:
        """``allusers``: one line per user, online or not, active or blocked, admin."""
        if not users:
            return [self.strings("users.none_online" if online_only else "users.none")]
        title = "users.title_online" if online_only else "users.title"
        lines = [self.strings(title, count=len(users))]
        for user in users:
            if user.get("online"):
                presence = self.strings("users.online")
            elif user.get("last_seen") is not None:
                seen = self.date_time(user.get("last_seen"))
                presence = self.strings("users.offline_seen", last_seen=seen)
            else:
                presence = self.strings("users.offline")
            lines.append(
                self.strings(
                    "users.line",
                    username=_text(user.get("username"), "?"),
                    presence=presence,
                    status=self.strings("users.blocked" if user.get("blocked") else "users.active"),
                    admin=self.strings("users.admin") if user.get("is_admin") else "",
                )
            )
        return lines

    def joined(self, row: Mapping[str, Any], name: str) -> str:
        """The result of ``join``: the room and how many of its members are online."""
        return self.strings(
            "join.ok",
            name=_text(row.get("name")) or name,
            online=_text(row.get("online"), "?"),
            total=_text(row.get("total"), "?"),
        )

    def group_choices(self, rows: Sequence[Mapping[str, Any]]) -> str:
        """``ops@alice, ops@bob``: how to tell groups of the same name apart."""
        return ", ".join(
            f"{_text(r.get('name'), '?')}@{_text(r.get('creator'), '?')}" for r in rows
        )
