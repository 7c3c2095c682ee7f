"""Recently seen messages, by ``message_id``, with edits and retractions applied.

An edit or a retraction is itself a message of the conversation
(docs/protocol.md, "History, edits, receipts and search"): ``type: "edit"``
with the new ``text``, or ``type: "retract"``, and ``target_id`` = the
message it changes. An application that shows messages needs to find the one
that changed; ``MessageCache`` keeps the last ``size`` messages the SDK
handed over or fetched (events, ``history`` pages, one's own sends) and
applies each change to its copy, so the application gets the message as it
now is (``Event.target``, ``Client.message(message_id)``).

The cache is bounded (oldest seen first out) and belongs to one user: a
login as someone else empties it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final

#: message types that change another message instead of saying something
CHANGE_TYPES: Final = frozenset({"edit", "retract"})


def change_of(payload: Mapping[str, Any]) -> tuple[str, int] | None:
    """``(type, target_id)`` of an edit or retract message; None for any other."""
    kind = payload.get("type")
    target = payload.get("target_id")
    if kind not in CHANGE_TYPES or not isinstance(target, int) or isinstance(target, bool):
        return None
    return str(kind), target


class MessageCache:
    """The last ``size`` messages by ``message_id`` (see the module doc)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._messages: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._messages)

    def get(self, message_id: int) -> dict[str, Any] | None:
        """A copy of the message as it now is, or None if it is not (or no longer) here."""
        found = self._messages.get(message_id)
        return dict(found) if found is not None else None

    def clear(self) -> None:
        self._messages.clear()

    def remember(self, payloads: Iterable[Mapping[str, Any]]) -> None:
        """Keep messages (newer states replace older ones); changes themselves are not kept."""
        for payload in payloads:
            message_id = payload.get("message_id")
            if not isinstance(message_id, int) or change_of(payload) is not None:
                continue
            if self.size <= 0:
                return
            self._messages[message_id] = dict(payload)
            self._messages.move_to_end(message_id)
            while len(self._messages) > self.size:
                self._messages.popitem(last=False)

    def observe(self, payload: Mapping[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        """A message handed to the application: remember it, or apply the change it is.

        Returns ``(change, target)``: ``change`` is ``"edit"`` / ``"retract"``
        for a change (None for an ordinary message), ``target`` the changed
        message as it now is, if it was here (else None).
        """
        change = change_of(payload)
        if change is None:
            self.remember([payload])
            return None, None
        kind, target_id = change
        if kind == "edit":
            edited_at = payload.get("edited_at") or payload.get("sent_at")
            return kind, self.edited(target_id, payload.get("text"), edited_at)
        return kind, self.retracted(target_id)

    def edited(self, message_id: int, text: object, edited_at: object) -> dict[str, Any] | None:
        """Apply an edit: the new text and ``edited_at``; the message as it now is, or None.

        An edit older than the state already here changes nothing: after a
        login the server replays a message in its current state and then the
        edits that led there, which must not take it back to an older text.
        """
        found = self._messages.get(message_id)
        if found is None:
            return None
        before = found.get("edited_at")
        newer = not isinstance(before, int | float) or (
            isinstance(edited_at, int | float) and edited_at >= before
        )
        if newer and found.get("retracted") is not True:
            found["text"] = text if isinstance(text, str) else ""
            found["edited_at"] = edited_at
        return dict(found)

    def retracted(self, message_id: int) -> dict[str, Any] | None:
        """Apply a retraction: text, attachments and quotes in replies erased."""
        for message in self._messages.values():
            quote = message.get("reply_to")
            if isinstance(quote, dict) and quote.get("message_id") == message_id:
                message["reply_to"] = {**quote, "text": ""}
        found = self._messages.get(message_id)
        if found is None:
            return None
        found.update(text="", retracted=True, attachments=[])
        return dict(found)

    def sent(
        self,
        data: Mapping[str, Any],
        sender: str | None,
        text: str,
        reply_to: int | None,
        **where: Any,
    ) -> None:
        """Remember a message this client sent, from the ``ok`` of ``send`` / ``sendgroup``.

        The server does not send a sender their own messages, so this is how
        one's own messages get here (to be found when someone retracts one).
        """
        self.remember(
            [
                {
                    "conversation_id": data.get("conversation_id"),
                    "seq": data.get("seq"),
                    "message_id": data.get("message_id"),
                    **where,
                    "from": sender,
                    "text": text,
                    "type": "text",
                    "sent_at": data.get("sent_at"),
                    "system": False,
                    "replay": False,
                    "reply_to": self.quote(reply_to) if reply_to is not None else None,
                    "target_id": None,
                    "edited_at": None,
                    "retracted": False,
                    "attachments": [],
                }
            ]
        )

    def quote(self, message_id: int, limit: int = 100) -> dict[str, Any]:
        """The ``reply_to`` excerpt of a message, as the server makes it (as far as known)."""
        found = self._messages.get(message_id)
        if found is None:
            return {"message_id": message_id}
        text = found.get("text")
        return {
            "message_id": message_id,
            "seq": found.get("seq"),
            "from": found.get("from"),
            "text": text[:limit] if isinstance(text, str) else "",
        }
