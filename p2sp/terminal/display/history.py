"""Conversations, history pages, search results, replies, edits, retractions, receipts.

Every message line of the terminal ends with a short reference, ``#12``: a
number the app gives each message it shows (``p2sp.terminal.refs``), which
``reply``, ``edit``, ``recall`` and ``receipts`` accept. The renderers here
take those numbers as arguments (None: the line goes without one); they
never look anything up themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from p2sp.terminal.display.base import Renderer
from p2sp.terminal.display.neutralise import field_text as _text
from p2sp.terminal.display.neutralise import safe_body as _body
from p2sp.terminal.display.neutralise import safe_group as _group
from p2sp.terminal.display.neutralise import safe_name as _name

#: characters of a quoted message shown in a reply, and of a last message in ``chats``
QUOTE_CHARS: Final = 30
PREVIEW_CHARS: Final = 40
#: message types that change another message (docs/protocol.md, "History, edits,
#: receipts and search")
CHANGE_TYPES: Final = frozenset({"edit", "retract"})


def _cut(value: object, limit: int) -> str:
    """Someone's text on one line, cut to ``limit`` characters (``…`` if longer)."""
    text = " ".join(_text(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _name(text)


def _shorten(line: str, limit: int) -> str:
    """A line of ours (already safe) on one line, cut to ``limit`` characters."""
    text = " ".join(line.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HistoryLines(Renderer):
    """Renders the lines of history, search, replies, edits, retractions and receipts."""

    # --- pieces ------------------------------------------------------------

    def ref_mark(self, ref: int | None) -> str:
        """`` #12`` after a sender's name (empty without a number)."""
        return "" if ref is None else self.strings("ref.mark", ref=ref)

    def ref_paren(self, ref: int | None) -> str:
        """`` (#12)`` after a sentence (empty without a number)."""
        return "" if ref is None else self.strings("ref.paren", ref=ref)

    def with_ref(self, line: str, ref: int | None) -> str:
        """A message line with its number at the end (after the time)."""
        return line if ref is None else self.strings("message.ref", line=line, ref=ref)

    def quote(self, reply_to: object, ref: int | None) -> str:
        """``[re alice #3: the first words] `` before a reply's text ("" if not a reply)."""
        if not isinstance(reply_to, Mapping):
            return ""
        sender = _name(reply_to.get("from"), "?")
        text = _cut(reply_to.get("text"), QUOTE_CHARS)
        if not text:  # the quoted message was retracted
            return self.strings("message.quote_short", sender=sender, ref=self.ref_mark(ref))
        return self.strings("message.quote", sender=sender, ref=self.ref_mark(ref), text=text)

    def edited(self, line: str, payload: Mapping[str, Any]) -> str:
        """``(edited)`` after a message that was edited since it was sent."""
        if payload.get("edited_at") and payload.get("type") not in CHANGE_TYPES:
            return self.strings("message.edited_mark", line=line)
        return line

    def short_time(self, ms: object) -> str:
        """``MM-DD HH:MM`` of a protocol timestamp; ``?`` if unreadable."""
        when = self._datetime(ms)
        return when.strftime("%m-%d %H:%M") if when is not None else "?"

    def _where(self, payload: Mapping[str, Any]) -> str:
        """``[ops] `` before a group's lines; nothing for a direct chat."""
        if _text(payload.get("kind")) != "group":
            return ""
        group = _group(payload.get("group_name")) or _name(payload.get("group_id"), "?")
        return self.strings("message.where_group", group=group)

    # --- edits and retractions -----------------------------------------------

    def change_line(
        self, payload: Mapping[str, Any], *, ref: int | None = None, author: object = None
    ) -> str:
        """An edit (the new text) or a retraction, as it arrives; ``ref``: the target's number.

        ``author``: who wrote the retracted message, when the one retracting it
        is someone else (a group or server admin).
        """
        sender = _name(payload.get("from"), "?")
        where = self._where(payload)
        if _text(payload.get("type")) == "edit":
            line = self.strings(
                "message.edit",
                where=where,
                sender=sender,
                ref=self.ref_mark(ref),
                message=_body(payload.get("text")),
                time=self.clock(payload.get("sent_at")),
            )
        else:
            line = self.retraction(payload, ref=ref, author=author)
        if payload.get("replay") is True:
            line = self.strings("message.replayed", line=line)
        return line

    def retraction(
        self, payload: Mapping[str, Any], *, ref: int | None = None, author: object = None
    ) -> str:
        """``alice retracted a message (#12)``; ``root retracted a message of alice (#12)``."""
        sender = _name(payload.get("from"), "?")
        other = _name(author)
        where = self._where(payload)
        if other and other.casefold() != sender.casefold():
            return self.strings(
                "message.retract_other",
                where=where,
                sender=sender,
                author=other,
                ref=self.ref_paren(ref),
            )
        return self.strings("message.retract", where=where, sender=sender, ref=self.ref_paren(ref))

    # --- conversations -------------------------------------------------------

    def conversation_name(self, row: Mapping[str, Any]) -> str:
        """``alice``, ``[ops]`` or ``[System]``: a conversation as the lists name it."""
        kind = _text(row.get("kind") or row.get("conversation_kind"))
        if kind == "group":
            name = row.get("name") or row.get("conversation_name") or row.get("group_name")
            return self.strings("chats.group", group=_group(name) or _name(row.get("group_id")))
        if kind == "system":
            return self.strings("chats.system")
        return _name(row.get("peer"), "?")

    def preview(self, message: object) -> str:
        """A conversation's last message, short and on one line."""
        if not isinstance(message, Mapping):
            return ""
        sender = _name(message.get("from"))
        kind = _text(message.get("type"))
        if kind == "retract" or message.get("retracted") is True:
            text = self.strings("chats.retracted", sender=sender or "?")
        elif message.get("system") is True and not sender:
            text = _shorten(self.notice_text(message), PREVIEW_CHARS)
        else:
            key = "chats.edited" if kind == "edit" else "chats.said"
            text = self.strings(
                key, sender=sender or "?", text=_cut(message.get("text"), PREVIEW_CHARS)
            )
        return self.strings("chats.last", message=text, time=self.clock(message.get("sent_at")))

    def conversations(self, rows: Sequence[Mapping[str, Any]], *, more: bool = False) -> list[str]:
        """``chats``: one line per conversation, newest activity first, with unread counts."""
        if not rows:
            return [self.strings("chats.none")]
        lines = [self.strings("chats.title", count=len(rows))]
        for row in rows:
            unread = row.get("unread")
            count = unread if isinstance(unread, int) and not isinstance(unread, bool) else 0
            lines.append(
                self.strings(
                    "chats.line",
                    name=self.conversation_name(row),
                    unread=self.strings("chats.unread", count=count) if count > 0 else "",
                    last=self.preview(row.get("last_message")),
                )
            )
        if more:
            lines.append(self.strings("chats.more"))
        lines.append(self.strings("chats.hint"))
        return lines

    # --- history and search ----------------------------------------------------

    def history_row(
        self,
        row: Mapping[str, Any],
        *,
        ref: int | None = None,
        reply_ref: int | None = None,
        own: bool = False,
    ) -> list[str]:
        """One message of a ``history`` page; one's own carry their status (✓ / ✓✓)."""
        when = self.short_time(row.get("sent_at"))
        sender = _name(row.get("from"))
        if row.get("retracted") is True:
            line = self.strings("history.retracted", when=when, sender=sender or "?")
            return [self.with_ref(line, ref)]
        if row.get("system") is True and not sender:
            line = self.strings("history.notice", when=when, message=self.notice_text(row))
            return self.with_ref(line, ref).split("\n")
        body = self.quote(row.get("reply_to"), reply_ref) + _body(row.get("text"))
        line = self.edited(
            self.strings("history.row", when=when, sender=sender or "?", message=body), row
        )
        line = self.with_ref(line, ref)
        status = _text(row.get("status"))
        if own and status in ("sent", "delivered", "read"):
            line += self.strings(f"history.status.{status}")
        return line.split("\n")

    def history_title(self, name: str, count: int) -> str:
        return self.strings("history.title", name=name, count=count)

    def search_row(self, row: Mapping[str, Any], *, ref: int | None = None) -> list[str]:
        """One search hit: where it was said, by whom, what, when."""
        kind = _text(row.get("conversation_kind") or row.get("kind"))
        if kind == "direct":
            where = self.strings("search.where_direct", peer=_name(row.get("peer"), "?"))
        elif kind == "group":
            name = row.get("conversation_name") or row.get("group_name")
            where = _group(name) or _name(row.get("group_id"), "?")
        else:
            where = self.strings("search.where_system")
        line = self.strings(
            "search.row",
            where=where,
            sender=_name(row.get("from")) or self.strings("chats.system"),
            message=_body(row.get("text")),
            when=self.short_time(row.get("sent_at")),
        )
        return self.with_ref(self.edited(line, row), ref).split("\n")

    # --- receipts ------------------------------------------------------------

    def read_up_to(self, username: object, ref: int) -> str:
        """``✓✓ bob read up to #12``: a peer has read one's messages up to #12."""
        return self.strings("receipt.read", username=_name(username, "?"), ref=ref)

    def receipts(self, data: Mapping[str, Any], ref: int) -> str:
        """``receipts #12``: how many have received and read it, and who."""

        def names(key: str) -> str:
            found = data.get(key)
            if not isinstance(found, list) or not found:
                return ""
            return self.strings("receipts.names", names=", ".join(_name(n) for n in found))

        def count(key: str) -> int:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        return self.strings(
            "receipts.line",
            ref=ref,
            read_count=count("read_count"),
            read=names("read"),
            delivered_count=count("delivered_count"),
            delivered=names("delivered"),
        )
