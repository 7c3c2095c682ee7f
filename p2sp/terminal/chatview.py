"""What the user has seen of their chats: message numbers, the current chat, receipts.

``ChatView`` sits between the SDK's events and answers and the display
lines: it numbers every message it shows (``p2sp.terminal.refs``), turns an
edit or a retraction into a line about the message it changes (once: a
change replayed after the message was already shown in its final state is
not shown again), says "bob read up to #12" when a peer's read cursor passes
one of the user's own messages in a direct chat, and tells the app which
messages were shown live, to be marked read.

Marking read: a message that arrives while the client runs is read once it
is printed; messages replayed at login (``[offline]``) stay unread until the
user opens the chat with ``history`` (which marks the page read), so
``chats`` still says what was missed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from p2sp.client import Client, Event
from p2sp.terminal.display import ClientMessageHandler
from p2sp.terminal.display.history import CHANGE_TYPES
from p2sp.terminal.refs import Refs, Shown

#: (conversation_id, seq) to mark read, or None
ReadMark = tuple[int, int] | None


@dataclass(slots=True)
class Chat:
    """A conversation ``history`` can name: for ``history`` without arguments."""

    conversation_id: int
    name: str  # as shown (already neutralised)
    target: str  # what to type after ``history`` to see it again, raw (empty: nothing)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ChatView:
    """Numbers, the current chat and receipts for one terminal (see the module doc)."""

    def __init__(self, client: Client, handler: ClientMessageHandler) -> None:
        self.client = client
        self.handler = handler
        self.refs = Refs()
        #: the chat of the last message shown or sent (``history`` without arguments)
        self.last_chat: Chat | None = None
        #: (conversation_id, casefolded reader) -> the last number said to be read
        self._read_shown: dict[tuple[int, str], int] = {}

    @property
    def me(self) -> str | None:
        return self.client.username

    def note(self, payload: Mapping[str, Any]) -> Shown | None:
        """A message about to be shown: its number; None for a system notice.

        Notices (the system inbox: friend added, invited, an admin's message)
        cannot be replied to, edited or retracted, so they go without one.
        """
        kind = payload.get("conversation_kind") or payload.get("kind")
        return None if kind == "system" else self.refs.note(payload, self.me)

    # --- events --------------------------------------------------------------

    def event_lines(self, event: Event) -> tuple[list[str], ReadMark]:
        """The lines of one event, and the message to mark read once they are shown."""
        if event.type == "message":
            return self.message_event(event)
        if event.type == "receipt":
            return self.receipt_lines(event.payload), None
        return self.handler.format_event(event), None

    def message_event(self, event: Event) -> tuple[list[str], ReadMark]:
        payload = event.payload
        if event.change is not None:
            lines = self.change_lines(payload, event.target)
        else:
            shown = self.note(payload)
            quoted = self.refs.quoted(payload, self.me)
            lines = self.handler.format_event(
                event,
                ref=shown.number if shown else None,
                reply_ref=quoted.number if quoted else None,
            )
        self.remember_chat(payload)
        conv, seq = _int(payload.get("conversation_id")), _int(payload.get("seq"))
        live = payload.get("replay") is not True
        return lines, (conv, seq) if live and conv is not None and seq else None

    def change_lines(
        self, payload: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> list[str]:
        """An edit or a retraction: a line about the message it changes, unless already shown."""
        shown = self.refs.target(payload, current, self.me)
        if shown is not None and self._already_shown(payload, current, shown):
            return []
        author = (current or {}).get("from") or (shown.sender if shown else None)
        line = self.handler.change_line(payload, ref=shown.number if shown else None, author=author)
        if shown is not None:
            if payload.get("type") == "retract":
                shown.retracted, shown.text = True, ""
            else:
                text = payload.get("text")
                shown.text = text if isinstance(text, str) else shown.text
        return line.split("\n")

    @staticmethod
    def _already_shown(
        payload: Mapping[str, Any], current: Mapping[str, Any] | None, shown: Shown
    ) -> bool:
        if payload.get("type") == "retract":
            return shown.retracted
        if shown.retracted:
            return True  # an edit of a message since retracted: nothing to show
        edited_at = (current or {}).get("edited_at")
        sent_at = payload.get("sent_at")
        if isinstance(edited_at, int) and isinstance(sent_at, int) and edited_at > sent_at:
            return True  # a later edit exists: this one is history
        return shown.text is not None and shown.text == payload.get("text")

    def receipt_lines(self, payload: Mapping[str, Any]) -> list[str]:
        """``✓✓ bob read up to #12`` when a peer's read cursor passes one's own message.

        Only for direct chats, and once per message and reader: a group's
        members reading would fill the screen (``receipts #n`` asks instead).
        """
        conv, read_seq = payload.get("conversation_id"), _int(payload.get("read_seq"))
        reader = payload.get("username")
        if not isinstance(conv, int) or read_seq is None or not isinstance(reader, str):
            return []
        shown = self.refs.own_up_to(conv, read_seq)
        if shown is None or shown.kind != "direct":
            return []
        key = (conv, reader.casefold())
        if self._read_shown.get(key, 0) >= shown.number:
            return []
        self._read_shown[key] = shown.number
        return [self.handler.read_up_to(reader, shown.number)]

    # --- answers -------------------------------------------------------------

    def history_lines(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """A ``history`` page (changes left out: their targets show the result)."""
        lines: list[str] = []
        for row in rows:
            if row.get("type") in CHANGE_TYPES:
                continue
            shown = self.note(row)
            quoted = self.refs.quoted(row, self.me)
            lines += self.handler.history_row(
                row,
                ref=shown.number if shown else None,
                reply_ref=quoted.number if quoted else None,
                own=bool(shown and shown.own),
            )
        return lines

    def search_lines(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        lines: list[str] = []
        for row in rows:
            shown = self.note(row)
            lines += self.handler.search_row(row, ref=shown.number if shown else None)
        return lines

    def sent(self, data: Mapping[str, Any], **where: Any) -> int | None:
        """A message the user sent: its number (the echo line shows it)."""
        shown = self.refs.sent(data, self.me, **where)
        self.remember_chat({**where, **data, "from": self.me})
        return shown.number if shown else None

    def remember_chat(self, payload: Mapping[str, Any]) -> None:
        """The chat ``history`` shows when given no name: the last one a message was in."""
        conv = _int(payload.get("conversation_id"))
        if conv is None:
            return
        kind = payload.get("kind")
        if kind == "group":
            name = self.handler.strings(
                "chats.group", group=self.handler.group(payload.get("group_name"))
            )
            self.last_chat = Chat(conv, name, "")
        elif kind == "direct":
            sender = payload.get("from")
            mine = isinstance(sender, str) and sender.casefold() == (self.me or "").casefold()
            peer = payload.get("to") if mine else sender
            self.last_chat = Chat(conv, self.handler.name(peer), str(peer or ""))
        else:
            self.last_chat = Chat(conv, self.handler.strings("chats.system"), "")
