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

Everything that came from another person (message text, user names, group
names, notices quoting them) goes through ``neutralise`` before it is put
into a line: whatever its characters, it can only show them, never start a
line of its own, move the cursor, recolour the screen or pass for a line of
the client's (docs/client.md, "What other people's text can do on your
screen").
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

import msgspec

from p2sp.client.client import Event
from p2sp.client.errors import ConnectionLost, RequestTimeout
from p2sp.client.strings import EN, ZH, Strings
from p2sp.common.exceptions import ChatError, P2SPError

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


def _text(value: object, default: str = "") -> str:
    """A payload field as a string (None and absent fields become ``default``).

    Raw: it goes on screen only through ``neutralise`` (``_name`` / ``_body``).
    """
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


# --- what other people's text can do on the screen ---------------------------

#: How every further line of someone else's text starts: under the sender,
#: visibly part of the message above, never at the left margin where the
#: client's own lines ("[System] ...", "alice> ") start.
CONTINUATION: Final = "  | "
#: What str.splitlines() breaks on: every one of them starts a continuation.
_LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
#: Bidirectional embeddings, overrides and isolates: they reorder what follows
#: them on the line (a name could make "root" of "toor").
BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Shown instead of a character that may not act (a bidi control, a C1 control).
REPLACEMENT: Final = "\ufffd"
#: Shown instead of a line break inside a name.
NEWLINE_SYMBOL: Final = "\u2424"
#: The bracketed tags of the client's own lines ("[System]", "[offline]" and
#: their Chinese forms), taken from the string tables: a group named like one is
#: shown in quotes so "[System] alice: ..." cannot pass for a system line.
RESERVED_TAGS: Final = frozenset(
    match.casefold()
    for table in (EN, ZH)
    for key, template in table.items()
    if key.startswith("message.")
    for match in re.findall(r"\[([^\]{}]+)\]", template)
)
_BRACKETS = str.maketrans({"[": "\uff3b", "]": "\uff3d"})


def _visible(ch: str) -> str:
    """One character of someone else's text as it may appear on the screen."""
    code = ord(ch)
    if ch == "\t":
        return " "
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: \x1b is shown as ␛
    if code == 0x7F:
        return "\u2421"  # ␡
    if 0x80 <= code <= 0x9F or ch in BIDI_CONTROLS:
        return REPLACEMENT  # C1 controls (\x9b is a terminal's CSI) and bidi controls
    return ch


def _reserved(name: str) -> bool:
    plain = "".join(
        c for c in unicodedata.normalize("NFKC", name) if unicodedata.category(c) != "Cf"
    )
    return " ".join(plain.split()).casefold() in RESERVED_TAGS


def neutralise(value: object, *, kind: Literal["text", "name", "group"] = "text") -> str:
    r"""Another person's text, made safe to print inside one of our lines.

    The rule (docs/client.md, "What other people's text can do on your
    screen"), for every string that came from someone else:

    * Control characters do nothing: ESC (so ANSI escape sequences), ``\r``,
      backspace and the other C0 controls are shown as their Control Pictures
      symbol (``␛``, ``␍``, ``␈`` ...), DEL as ``␡``; a tab is a space; C1
      controls (``\x80``-``\x9f``, ``\x9b`` being a terminal's CSI) and the
      bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069)
      are shown as ``�``.
    * ``kind="text"`` (a message, a notice): a line break (``\n``, ``\r\n``,
      ``\r``, U+2028 ... everything ``str.splitlines`` breaks on) starts a
      continuation line that begins with ``CONTINUATION`` ("  | "), so every
      line after the first is visibly part of the message above it and none
      starts at the left margin like a system line, a prompt or another
      sender's line. Line breaks at the end are dropped.
    * ``kind="name"`` (a user name, or any other value shown on one line): a
      line break is shown as ``␤``.
    * ``kind="group"`` (a group name, shown as the ``[group]`` tag of its
      messages): as a name, and square brackets are shown as fullwidth
      ``［ ］``, so a name cannot close the tag it is shown in and open one of
      its own; a name that reads like one of the client's own tags
      (``System``, ``offline``, ``系统消息``, ``离线消息``: ``RESERVED_TAGS``)
      is shown in double quotes, so ``[System] alice: ...`` is never a group.

    Everything else (letters of every script, emoji, joiners) is shown as it is.
    """
    text = _text(value)
    if kind != "text":
        shown = "".join(map(_visible, _LINE_BREAK.sub(NEWLINE_SYMBOL, text)))
        if kind == "group":
            shown = shown.translate(_BRACKETS)
            return f'"{shown}"' if _reserved(shown) else shown
        return shown
    lines = _LINE_BREAK.split(text.rstrip("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"))
    return ("\n" + CONTINUATION).join("".join(map(_visible, line)) for line in lines)


def _name(value: object, default: str = "") -> str:
    """A user name (or any one-line value) from the network, ready for a line."""
    return neutralise(_text(value, default), kind="name")


def _group(value: object, default: str = "") -> str:
    """A group name from the network, ready for a line (``neutralise``)."""
    return neutralise(_text(value, default), kind="group")


def _body(value: object) -> str:
    """Message or notice text from the network, ready for a line (``neutralise``)."""
    return neutralise(_text(value), kind="text")


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
            "session": self._session,
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
        """A protocol code or an SDK reason in words; unknown ones are shown as they are."""
        text = _text(code, "?")
        for key in (f"code.{text}", f"reason.{text}"):
            if self.strings.has(key):
                return self.strings(key)
        return _name(text)

    def code_text(
        self, code: object, message: object = "", data: Mapping[str, Any] | None = None
    ) -> str:
        """What a code means, in the user's language; the server's message if we have no words.

        ``rate_limited`` says how long to wait (``retry_after`` in ``data``).
        """
        text = _text(code)
        if text == "rate_limited":
            wait = (data or {}).get("retry_after")
            if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
                return self.strings("code.rate_limited", seconds=max(1, round(wait)))
            return self.strings("code.rate_limited_later")
        key = f"code.{text}"
        if text and self.strings.has(key):
            return self.strings(key)
        return _body(message) or _name(text or "?")

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
        return line.split("\n")

    def _direct_message(self, payload: Mapping[str, Any]) -> str | None:
        if payload.get("system") is True:
            return self._system_message(payload)
        return self.strings(
            "message.direct",
            sender=_name(payload.get("from"), "?"),
            message=_body(payload.get("text")),
            time=self.clock(payload.get("sent_at")),
        )

    def _system_message(self, payload: Mapping[str, Any]) -> str:
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

    def _group_message(self, payload: Mapping[str, Any]) -> str:
        """Group chat, shown with the group's name; an administrator's is a system line."""
        group = _group(payload.get("group_name")) or _name(payload.get("group_id"), "?")
        if payload.get("system") is True:
            sender = _name(payload.get("from"))
            return self.strings(
                "message.group_system" if sender else "message.group_system_anonymous",
                group=group,
                sender=sender,
                message=_body(payload.get("text")),
                time=self.clock(payload.get("sent_at")),
            )
        return self.strings(
            "message.group",
            group=group,
            sender=_name(payload.get("from"), "?"),
            message=_body(payload.get("text")),
            time=self.clock(payload.get("sent_at")),
        )

    def notice_text(self, payload: Mapping[str, Any]) -> str:
        """A system message's text: the notice in our words when we have them, else ``text``.

        Our wording is used only if every name it needs is in the notice, so
        a notice with a field missing still shows the server's sentence.
        """
        fallback = _body(payload.get("text"))
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
            params[name] = _group(value) if name == "group_name" else _name(value)
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

    def name(self, value: object, default: str = "?") -> str:
        """A user name for a line of ours (see ``neutralise``)."""
        return _name(value, default)

    def group(self, value: object, default: str = "?") -> str:
        """A group name for a line of ours (see ``neutralise``)."""
        return _group(value, default)

    def body(self, value: object) -> str:
        """Text for a line of ours, continuation lines marked (see ``neutralise``)."""
        return _body(value)

    def registered(self, username: str, user_id: int) -> str:
        return self.strings("reg.ok", username=_name(username), user_id=user_id)

    def added(self, data: Mapping[str, Any], username: str) -> str:
        """The result of ``add``: the new friend, and whether they are online now."""
        key = "add.ok.online" if data.get("online") else "add.ok.offline"
        return self.strings(key, username=_name(data.get("username"), username))

    def friends(self, friends: Sequence[Mapping[str, Any]]) -> list[str]:
        """The friend list: a title, then one line per friend (last seen if offline)."""
        if not friends:
            return [self.strings("friends.none")]
        lines = [self.strings("friends.title", count=len(friends))]
        for friend in friends:
            name = _name(friend.get("username"), "?")
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
        return self.strings("send.echo", to=_name(to), message=_body(text))

    def welcome(self, data: Mapping[str, Any]) -> list[str]:
        """The login greeting; admins are told their extra commands are unlocked."""
        username = _name(data.get("username"), "?")
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
                    name=_group(row.get("name"), "?"),
                    creator=_name(row.get("creator"), "?"),
                    online=_name(row.get("online"), "?"),
                    total=_name(row.get("total"), "?"),
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
                    username=_name(user.get("username"), "?"),
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
            name=_group(row.get("name")) or _group(name),
            online=_name(row.get("online"), "?"),
            total=_name(row.get("total"), "?"),
        )

    def group_choices(self, rows: Sequence[Mapping[str, Any]]) -> str:
        """``ops@alice, ops@bob``: how to tell groups of the same name apart."""
        return ", ".join(
            f"{_group(r.get('name'), '?')}@{_name(r.get('creator'), '?')}" for r in rows
        )


def _without_field(message: str) -> str:
    """The server's sentence without the field it names (`` - at `data.username` ``)."""
    return re.sub(r" - (?:at|in) `[^`]*`$", "", message)
