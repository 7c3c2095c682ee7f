"""The reads of the delivery path: member cursors and the login replay.

Kept apart from the batch writer (``messages.MessageStore`` inherits them)
so each module holds one concern: what is written in the writer's batch,
and what delivery reads back.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, or_, select

from p2sp.server.db.engine import Database
from p2sp.server.db.models import Base
from p2sp.server.events import MessageView

messages = Base.metadata.tables["messages"]
conversations = Base.metadata.tables["conversations"]
members = Base.metadata.tables["conversation_members"]
users = Base.metadata.tables["users"]

#: Characters of the replied-to text a reply carries (``reply_to.text``).
REPLY_EXCERPT = 100


class MessageReads:
    db: Database

    # -- cursors ------------------------------------------------------------------

    async def cursors(
        self, user_id: int, conversation_ids: Iterable[int]
    ) -> dict[int, tuple[int, int]]:
        """conversation_id -> (delivered_seq, last_seq), for the user's own conversations only."""
        stmt = (
            select(members.c.conversation_id, members.c.delivered_seq, conversations.c.last_seq)
            .join(conversations, conversations.c.id == members.c.conversation_id)
            .where(
                members.c.user_id == user_id, members.c.conversation_id.in_(list(conversation_ids))
            )
        )
        async with self.db.reader.connect() as conn:
            return {r[0]: (r[1], r[2]) for r in await conn.execute(stmt)}

    # -- replay ---------------------------------------------------------------------

    async def pending(
        self, user_id: int, username: str, after_id: int, limit: int
    ) -> list[MessageView]:
        """Messages past the user's cursors with id > ``after_id``, in commit order.

        The user's own messages are not replayed to them: they were answered
        with ``ok`` when sent.
        """
        sender = users.alias("sender")
        parent = messages.alias("parent")
        parent_sender = users.alias("parent_sender")
        stmt = (
            select(
                messages.c.conversation_id,
                messages.c.seq,
                messages.c.id,
                conversations.c.kind,
                sender.c.username,
                messages.c.content,
                messages.c.type,
                messages.c.created_at,
                conversations.c.name,
                messages.c.notice,
                messages.c.target_id,
                messages.c.edited_at,
                messages.c.retracted,
                parent.c.id,
                parent.c.seq,
                parent_sender.c.username,
                parent.c.content,
                parent.c.retracted,
            )
            .select_from(members)
            .join(
                messages,
                and_(
                    messages.c.conversation_id == members.c.conversation_id,
                    messages.c.seq > members.c.delivered_seq,
                ),
            )
            .join(conversations, conversations.c.id == members.c.conversation_id)
            .outerjoin(sender, sender.c.id == messages.c.sender_id)
            .outerjoin(parent, parent.c.id == messages.c.parent_id)
            .outerjoin(parent_sender, parent_sender.c.id == parent.c.sender_id)
            .where(
                members.c.user_id == user_id,
                messages.c.id > after_id,
                conversations.c.status == 1,  # a blocked group delivers nothing until unblocked
                or_(messages.c.sender_id.is_(None), messages.c.sender_id != user_id),
            )
            .order_by(messages.c.id)
            .limit(limit)
        )
        async with self.db.reader.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            MessageView(
                conversation_id=r[0],
                seq=r[1],
                message_id=r[2],
                kind=r[3],
                sender=r[4],
                text=r[5],
                type=r[6],
                sent_at=r[7],
                recipient=username if r[3] == "direct" else None,
                group_id=r[0] if r[3] == "group" else None,
                group_name=r[8] if r[3] == "group" else None,
                notice=r[9],
                target_id=r[10],
                edited_at=r[11],
                retracted=bool(r[12]),
                reply_to=None
                if r[13] is None
                else {
                    "message_id": r[13],
                    "seq": r[14],
                    "from": r[15],
                    "text": "" if r[17] else r[16][:REPLY_EXCERPT],
                },
            )
            for r in rows
        ]
