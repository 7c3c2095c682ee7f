"""The shapes of the events the server pushes (docs/protocol.md, "Events"), in one place.

Live delivery and login replay build ``message`` events with the same
function, so a replayed message differs from a live one only in ``replay``.
Each returns finished frame bytes: encode once, write to every recipient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from p2sp.common.message import event_frame

if TYPE_CHECKING:
    from p2sp.server.repository.history import MessageRow


@dataclass(frozen=True, slots=True)
class MessageView:
    """What a recipient is told about a stored message."""

    conversation_id: int
    seq: int
    message_id: int
    kind: str  # direct | group | system
    sender: str | None
    text: str
    type: str
    sent_at: int
    recipient: str | None = None  # direct: the user it was sent to
    group_id: int | None = None
    group_name: str | None = None
    notice: dict[str, Any] | None = None
    reply_to: dict[str, Any] | None = None
    target_id: int | None = None
    edited_at: int | None = None
    retracted: bool = False


def message_payload(view: MessageView, *, replay: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "conversation_id": view.conversation_id,
        "seq": view.seq,
        "message_id": view.message_id,
        "kind": view.kind,
        "from": view.sender,
        "text": view.text,
        "type": view.type,
        "sent_at": view.sent_at,
        "system": view.kind == "system" or view.type == "system",
        "replay": replay,
        "reply_to": view.reply_to,
        "target_id": view.target_id,
        "edited_at": view.edited_at,
        "retracted": view.retracted,
        "attachments": [],
    }
    if view.kind == "direct":
        payload["to"] = view.recipient
    elif view.kind == "group":
        payload["group_id"] = view.group_id
        payload["group_name"] = view.group_name
    else:
        payload["notice"] = view.notice or {}
    return payload


def row_payload(
    row: MessageRow, *, kind: str, recipient: str | None, group_name: str | None
) -> dict[str, Any]:
    """A stored message (history, search, a conversation's last message) in
    the shape of a ``message`` event, in its current state."""
    return message_payload(
        MessageView(
            row.conversation_id,
            row.seq,
            row.message_id,
            kind,
            row.sender,
            row.text,
            row.type,
            row.sent_at,
            recipient=recipient if kind == "direct" else None,
            group_id=row.conversation_id if kind == "group" else None,
            group_name=group_name if kind == "group" else None,
            notice=row.notice,
            reply_to=row.reply_to,
            target_id=row.target_id,
            edited_at=row.edited_at,
            retracted=row.retracted,
        ),
        replay=False,
    )


def message_event(view: MessageView, *, replay: bool = False) -> bytes:
    return event_frame("message", message_payload(view, replay=replay))


def presence_event(username: str, online: bool) -> bytes:
    return event_frame(
        "presence",
        {"username": username, "online": online, "status": "online" if online else "offline"},
    )


def sync_done_event(count: int) -> bytes:
    return event_frame("sync_done", {"count": count})
