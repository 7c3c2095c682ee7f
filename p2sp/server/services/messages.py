"""Direct messages, system notices and delivery cursors.

The rules of sending in one place: text bounds, the friendship requirement
(unless ``dm_policy`` is ``anyone``), idempotent resends. A message is
committed (through the group-commit writer) before the sender is answered;
the recipient, if online, gets the event from the writer's commit callback,
so live delivery follows commit order. The cursor moves only on ``ack``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from p2sp.common.actions import AckItem
from p2sp.common.exceptions import ChatError, invalid_request
from p2sp.common.message import now_ms
from p2sp.server.events import MessageView, message_event
from p2sp.server.managers.connection import Session
from p2sp.server.managers.router import Router
from p2sp.server.repository.messages import (
    ConversationKey,
    CursorMove,
    Draft,
    MessageStore,
    Stored,
)
from p2sp.server.services.directory import Directory
from p2sp.server.services.writer import MessageWriter, Pending

log = logging.getLogger(__name__)


class Replies(Protocol):
    async def reply_to(
        self, me: Session, conversation: int | ConversationKey, message_id: int
    ) -> dict[str, Any]: ...


class MessageService:
    def __init__(
        self,
        *,
        directory: Directory,
        store: MessageStore,
        writer: MessageWriter,
        router: Router,
        dm_policy: str,
        max_text: int,
    ) -> None:
        self.directory = directory
        self.store = store
        self.writer = writer
        self.router = router
        self.dm_policy = dm_policy
        self.max_text = max_text
        #: Resolves a ``reply_to`` (the edit service; set by the composition root).
        self.replies: Replies | None = None
        #: Told of every ack once committed (the receipt service).
        self.on_acked: Callable[[Session, dict[int, int]], None] | None = None

    async def reply_excerpt(
        self, me: Session, conversation: int | ConversationKey, reply_to: int | None
    ) -> dict[str, Any] | None:
        if reply_to is None:
            return None
        if self.replies is None:
            raise ChatError("no_such_message", "replies are not available")
        return await self.replies.reply_to(me, conversation, reply_to)

    def check_text(self, text: str) -> None:
        if len(text) > self.max_text:
            raise invalid_request(f"text: longer than {self.max_text} characters")

    async def send_direct(
        self,
        me: Session,
        to: str,
        text: str,
        client_msg_id: str | None,
        reply_to: int | None = None,
    ) -> Pending[Stored]:
        """Queue a direct message; the answer (``sent_data``) waits for its commit."""
        self.check_text(text)
        target = await self.directory.user(to)
        if target is None:
            raise ChatError("no_such_user", f"no user named {to!r}")
        if target.id == me.user_id:
            raise ChatError("cannot_send_to_self", "you cannot send a message to yourself")
        if self.dm_policy != "anyone" and target.id not in await self.directory.friends_of(
            me.user_id
        ):
            raise ChatError("not_friends", f"{target.username} is not your friend; add them first")
        conv = self.directory.direct_conversation(me.user_id, target.id)
        excerpt = await self.reply_excerpt(me, conv, reply_to)
        draft = Draft(
            conv,
            me.user_id,
            text,
            now_ms(),
            client_msg_id=client_msg_id,
            parent_id=excerpt["message_id"] if excerpt else None,
        )
        sender, recipient, router = me.username, target, self.router

        def deliver(stored: Stored) -> None:
            view = MessageView(
                stored.conversation_id,
                stored.seq,
                stored.message_id,
                "direct",
                sender,
                text,
                "text",
                stored.sent_at,
                recipient=recipient.username,
                reply_to=excerpt,
            )
            router.deliver(recipient.id, message_event(view), stored.conversation_id, stored.seq)

        return Pending(self.writer.submit(draft, deliver), sent_data)

    async def notify(self, user_id: int, notice: dict[str, Any], text: str) -> Stored:
        """Store a system notice in the user's inbox and push it if they are online."""
        conv = self.directory.system_conversation(user_id)
        draft = Draft(conv, None, text, now_ms(), type="system", notice=notice)
        router = self.router

        def deliver(stored: Stored) -> None:
            view = MessageView(
                stored.conversation_id,
                stored.seq,
                stored.message_id,
                "system",
                None,
                text,
                "system",
                stored.sent_at,
                notice=notice,
            )
            router.deliver(user_id, message_event(view), stored.conversation_id, stored.seq)

        return await self.writer.write(draft, deliver)

    async def ack(
        self, me: Session, acks: list[AckItem], given: Mapping[int, int]
    ) -> Pending[None]:
        """Advance cursors; an ack naming a conversation not the user's, or a
        seq not yet assigned, is refused whole and changes nothing.

        ``given`` is what this connection was sent (conversation -> highest
        seq): an ack within it is valid without asking the database, which
        is nearly every ack. Only the rest (say, an ack sent again after a
        reconnect) is checked against the user's memberships and each
        conversation's last seq. A cursor only moves forward: the writer's
        update skips a seq at or behind it.
        """
        wanted: dict[int, int] = {}
        for item in acks:
            if item.seq > wanted.get(item.conversation_id, 0):
                wanted[item.conversation_id] = item.seq
        unknown = [cid for cid, seq in wanted.items() if seq > given.get(cid, 0)]
        if unknown:
            cursors = await self.store.cursors(me.user_id, unknown)
            for cid in unknown:
                if cid not in cursors:
                    raise invalid_request(f"acks: conversation {cid} is not one of yours")
                if wanted[cid] > cursors[cid][1]:
                    raise invalid_request(
                        f"acks: conversation {cid} has no message {wanted[cid]} "
                        f"(last is {cursors[cid][1]})"
                    )
        moves = [CursorMove(me.user_id, cid, seq) for cid, seq in wanted.items()]
        future = self.writer.advance(moves)
        on_acked = self.on_acked
        if on_acked is not None:

            def acked(done: asyncio.Future[None]) -> None:
                if not done.cancelled() and done.exception() is None:
                    on_acked(me, wanted)

            future.add_done_callback(acked)
        return Pending(future, _no_data)


def _no_data(_: object) -> None:
    return None


def sent_data(stored: Stored) -> dict[str, Any]:
    """The ``ok`` data of a send: where the message landed."""
    return {
        "conversation_id": stored.conversation_id,
        "seq": stored.seq,
        "message_id": stored.message_id,
        "sent_at": stored.sent_at,
    }
