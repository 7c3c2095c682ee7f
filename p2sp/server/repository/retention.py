"""Deleting old messages for retention: which may go, and the deletion itself.

A message may go when it is older than the cutoff or beyond the newest
``max_messages_per_conversation`` of its conversation, and every member
but its sender has acknowledged it (``delivered_seq`` at or past it):
retention never takes a message from someone who has not received it. Only
a prefix of each conversation goes (everything before the first message
someone still waits for), so history never has holes: its ``first_seq`` is
the oldest message kept. Deletion is in small batches, each its own short
transaction, so the message writer is never held up for long.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, func, or_, select

from p2sp.server.db.engine import Database
from p2sp.server.db.models import Base

messages = Base.metadata.tables["messages"]
conversations = Base.metadata.tables["conversations"]
members = Base.metadata.tables["conversation_members"]


class RetentionRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def candidates(self, cutoff_ms: int | None, keep: int | None) -> list[tuple[int, int]]:
        """(conversation_id, last_seq) of conversations holding a message too old
        or beyond the newest ``keep``."""
        oldest_seq = (
            select(func.min(messages.c.seq))
            .where(messages.c.conversation_id == conversations.c.id)
            .scalar_subquery()
        )
        conditions = []
        if cutoff_ms is not None:
            first_at = (
                select(func.min(messages.c.created_at))
                .where(messages.c.conversation_id == conversations.c.id)
                .scalar_subquery()
            )
            conditions.append(first_at < cutoff_ms)
        if keep is not None:
            conditions.append(conversations.c.last_seq - oldest_seq >= keep)
        if not conditions:
            return []
        stmt = select(conversations.c.id, conversations.c.last_seq).where(or_(*conditions))
        async with self.db.reader.connect() as conn:
            return [(r[0], r[1]) for r in await conn.execute(stmt)]

    async def first_awaited(self, conversation_id: int) -> int | None:
        """The first seq some member (not its sender) has not acknowledged."""
        stmt = (
            select(func.min(messages.c.seq))
            .select_from(messages)
            .join(members, members.c.conversation_id == messages.c.conversation_id)
            .where(
                messages.c.conversation_id == conversation_id,
                members.c.delivered_seq < messages.c.seq,
                or_(messages.c.sender_id.is_(None), members.c.user_id != messages.c.sender_id),
            )
        )
        async with self.db.reader.connect() as conn:
            return (await conn.execute(stmt)).scalar_one_or_none()

    async def delete_batch(
        self,
        conversation_id: int,
        before_seq: int | None,
        *,
        cutoff_ms: int | None,
        below_seq: int | None,
        batch: int,
    ) -> int:
        """Delete up to ``batch`` of the oldest deletable messages (all before
        ``before_seq``, if given); returns how many went."""
        old = []
        if cutoff_ms is not None:
            old.append(messages.c.created_at < cutoff_ms)
        if below_seq is not None:
            old.append(messages.c.seq < below_seq)
        if not old:
            return 0
        where = [messages.c.conversation_id == conversation_id, or_(*old)]
        if before_seq is not None:
            where.append(messages.c.seq < before_seq)
        ids = select(messages.c.id).where(and_(*where)).order_by(messages.c.seq).limit(batch)
        async with self.db.writer.begin() as conn:
            # Through a list: MySQL-style "DELETE ... WHERE id IN (SELECT ... LIMIT)"
            # is refused by some databases, and the batch is small.
            found = [r[0] for r in await conn.execute(ids)]
            if not found:
                return 0
            result = await conn.execute(delete(messages).where(messages.c.id.in_(found)))
        return int(result.rowcount or 0)
