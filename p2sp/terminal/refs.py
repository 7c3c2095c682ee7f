"""Message numbers: the ``#12`` at the end of every message line.

The protocol names a message by its ``message_id``, a large number that
means nothing to a person. The terminal gives each message it shows a small
number of its own, counting from 1 for each run of the client, and
``reply``, ``edit``, ``recall`` and ``receipts`` take that number. A message
keeps its number however often it is shown (live, in ``history``, in
``search``, quoted by a reply, changed by an edit).

``Refs`` also remembers what each message looked like when it was last shown
(its text, whether it was retracted), so that an edit or a retraction the
server replays after the message was already shown in its final state is not
shown twice, and which of the user's own messages have which seq, so a
receipt can say "bob read up to #12".
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: numbers remembered; the oldest are forgotten past this (``ref.unknown`` then)
MAX_REFS: Final = 20_000

_REF: Final = re.compile(r"#?(\d{1,9})")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _where(payload: Mapping[str, Any], me: str | None) -> dict[str, Any]:
    """Where a message was said, without who said what: for another message of that chat.

    In a direct chat, ``peer`` is the other member (whoever wrote ``payload``).
    """
    where = {k: v for k, v in payload.items() if k not in ("seq", "from", "text", "to")}
    if payload.get("kind") == "direct" and "peer" not in where:
        sender = _str(payload.get("from"))
        mine = bool(me and sender and sender.casefold() == me.casefold())
        where["peer"] = _str(payload.get("to")) if mine else sender
    return where


@dataclass(slots=True)
class Shown:
    """A message the terminal has shown (or named), under its number."""

    number: int
    message_id: int
    conversation_id: int | None = None
    seq: int | None = None
    kind: str | None = None  # direct | group | system
    sender: str | None = None
    peer: str | None = None  # direct: the other user
    group_id: int | None = None
    group_name: str | None = None
    own: bool = False
    text: str | None = None  # as last shown
    retracted: bool = False

    def fill(self, payload: Mapping[str, Any], me: str | None) -> None:
        """Take what a message payload says about this message (what is missing stays)."""
        self.conversation_id = _int(payload.get("conversation_id")) or self.conversation_id
        self.seq = _int(payload.get("seq")) or self.seq
        kind = _str(payload.get("conversation_kind")) or _str(payload.get("kind"))
        self.kind = kind or self.kind
        self.sender = _str(payload.get("from")) or self.sender
        self.own = bool(me and self.sender and self.sender.casefold() == me.casefold())
        if self.kind == "direct":
            peer = _str(payload.get("peer"))
            if peer is None:
                peer = _str(payload.get("to")) if self.own else self.sender
            self.peer = peer or self.peer
        elif self.kind == "group":
            self.group_id = _int(payload.get("group_id")) or self.group_id
            name = _str(payload.get("group_name")) or _str(payload.get("conversation_name"))
            self.group_name = name or self.group_name


class Refs:
    """Numbers for the messages of one run of the terminal client (see the module doc)."""

    def __init__(self, limit: int = MAX_REFS) -> None:
        self.limit = limit
        self._next = 1
        self._by_number: OrderedDict[int, Shown] = OrderedDict()
        self._by_id: dict[int, Shown] = {}

    @staticmethod
    def parse(text: str) -> int | None:
        """``#12`` or ``12`` -> 12; None for anything else."""
        found = _REF.fullmatch(text.strip())
        return int(found.group(1)) if found else None

    def get(self, number: int) -> Shown | None:
        return self._by_number.get(number)

    def of(self, message_id: int) -> Shown:
        """The entry of a message, numbered now if it has no number yet."""
        shown = self._by_id.get(message_id)
        if shown is None:
            shown = Shown(self._next, message_id)
            self._next += 1
            self._by_id[message_id] = shown
            self._by_number[shown.number] = shown
            while len(self._by_number) > self.limit:
                _, old = self._by_number.popitem(last=False)
                self._by_id.pop(old.message_id, None)
        return shown

    def note(self, payload: Mapping[str, Any], me: str | None) -> Shown | None:
        """A message about to be shown: its entry, with the state it is shown in.

        None for a payload without a ``message_id`` (it is shown without a number).
        """
        message_id = _int(payload.get("message_id"))
        if message_id is None:
            return None
        shown = self.of(message_id)
        shown.fill(payload, me)
        shown.retracted = payload.get("retracted") is True
        shown.text = "" if shown.retracted else _str(payload.get("text"))
        return shown

    def quoted(self, payload: Mapping[str, Any], me: str | None) -> Shown | None:
        """The message a reply quotes (``reply_to``), named in the reply's conversation."""
        quote = payload.get("reply_to")
        message_id = _int(quote.get("message_id")) if isinstance(quote, Mapping) else None
        if message_id is None or not isinstance(quote, Mapping):
            return None
        shown = self.of(message_id)
        shown.fill({**_where(payload, me), "seq": quote.get("seq"), "from": quote.get("from")}, me)
        return shown

    def target(
        self, change: Mapping[str, Any], current: Mapping[str, Any] | None, me: str | None
    ) -> Shown | None:
        """The message an edit or a retraction changes (``target_id``).

        ``current``: the message as the SDK knows it now (``Event.target``),
        which fills in who wrote it; without it the entry takes the
        conversation from the change.
        """
        target_id = _int(change.get("target_id"))
        if target_id is None:
            return None
        shown = self.of(target_id)
        if current is not None:
            shown.fill(current, me)
        elif shown.conversation_id is None:
            shown.fill(_where(change, me), me)
        return shown

    def sent(self, data: Mapping[str, Any], me: str | None, **payload: Any) -> Shown | None:
        """A message this user just sent (the ``ok`` of ``send`` / ``sendgroup``)."""
        return self.note({**payload, **data, "from": me}, me)

    def own_up_to(self, conversation_id: object, seq: int) -> Shown | None:
        """The user's own message with the highest seq at or below ``seq`` in a conversation."""
        best: Shown | None = None
        for shown in self._by_number.values():
            if (
                shown.own
                and shown.conversation_id == conversation_id
                and shown.seq is not None
                and shown.seq <= seq
                and (best is None or shown.seq > (best.seq or 0))
            ):
                best = shown
        return best
