"""Data access for ``messages`` and the delivery cursors.

``commit_batch`` is the hot path: many messages, one transaction. Per
conversation it takes its seqs with a single
``UPDATE conversations SET last_seq = last_seq + n ... RETURNING last_seq``,
so seqs are gap-free and assigned at commit in queue order, then inserts all
rows with one ``executemany``. Resends (same sender and ``client_msg_id``)
are answered with the stored original, whether it was committed earlier or
sits earlier in the same batch. Plain Core rows throughout: no ORM objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from p2sp.server.db.engine import Database
from p2sp.server.db.models import Base
from p2sp.server.events import MessageView

messages = Base.metadata.tables["messages"]
conversations = Base.metadata.tables["conversations"]
members = Base.metadata.tables["conversation_members"]
users = Base.metadata.tables["users"]


@dataclass(slots=True)
class Draft:
    """A message waiting to be stored."""

    conversation_id: int
    sender_id: int | None
    content: str
    created_at: int
    type: str = "text"
    client_msg_id: str | None = None
    notice: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CursorMove:
    """An acknowledged position: the user has everything up to ``seq``."""

    user_id: int
    conversation_id: int
    seq: int


#: Moves a delivery cursor forward, never back.
_advance = (
    update(members)
    .where(
        members.c.user_id == bindparam("uid"),
        members.c.conversation_id == bindparam("cid"),
        members.c.delivered_seq < bindparam("seq"),
    )
    .values(delivered_seq=bindparam("seq"))
)


@dataclass(frozen=True, slots=True)
class Stored:
    """Where a draft landed. ``duplicate``: it was a resend of ``message_id``."""

    conversation_id: int
    seq: int
    message_id: int
    sent_at: int
    duplicate: bool = False


class MessageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writing ------------------------------------------------------------------

    async def commit_batch(
        self, drafts: Sequence[Draft], cursor_moves: Sequence[CursorMove] = ()
    ) -> list[Stored]:
        """Store every draft and move the given delivery cursors, in one
        transaction; results in the drafts' order."""
        async with self.db.writer.begin() as conn:
            stored = await self._store(conn, drafts) if drafts else []
            if cursor_moves:
                await conn.execute(
                    _advance,
                    [
                        {"uid": m.user_id, "cid": m.conversation_id, "seq": m.seq}
                        for m in cursor_moves
                    ],
                )
            return stored

    async def _store(self, conn: AsyncConnection, drafts: Sequence[Draft]) -> list[Stored]:
        results: list[Stored | None] = [None] * len(drafts)
        earlier = await self._existing(conn, drafts)
        first_in_batch: dict[tuple[int | None, str], int] = {}
        fresh: list[int] = []
        for i, d in enumerate(drafts):
            if d.client_msg_id is not None:
                key = (d.sender_id, d.client_msg_id)
                if key in earlier:
                    results[i] = earlier[key]
                    continue
                if key in first_in_batch:
                    continue  # resolved after the first one is stored
                first_in_batch[key] = i
            fresh.append(i)

        if fresh:
            counts: dict[int, int] = {}
            for i in fresh:
                cid = drafts[i].conversation_id
                counts[cid] = counts.get(cid, 0) + 1
            next_seq: dict[int, int] = {}
            for cid, n in counts.items():
                last = (
                    await conn.execute(
                        update(conversations)
                        .where(conversations.c.id == cid)
                        .values(last_seq=conversations.c.last_seq + n)
                        .returning(conversations.c.last_seq)
                    )
                ).scalar_one()
                next_seq[cid] = last - n + 1
            rows = []
            for i in fresh:
                d = drafts[i]
                seq = next_seq[d.conversation_id]
                next_seq[d.conversation_id] = seq + 1
                rows.append(
                    {
                        "conversation_id": d.conversation_id,
                        "seq": seq,
                        "sender_id": d.sender_id,
                        "client_msg_id": d.client_msg_id,
                        "type": d.type,
                        "content": d.content,
                        "created_at": d.created_at,
                        "notice": d.notice,
                    }
                )
            ids = (
                (
                    await conn.execute(
                        insert(messages).returning(messages.c.id, sort_by_parameter_order=True),
                        rows,
                    )
                )
                .scalars()
                .all()
            )
            for i, row, mid in zip(fresh, rows, ids, strict=True):
                results[i] = Stored(row["conversation_id"], row["seq"], int(mid), row["created_at"])

        for i, d in enumerate(drafts):
            if results[i] is None:  # a resend of a draft earlier in this batch
                assert d.client_msg_id is not None
                orig = results[first_in_batch[(d.sender_id, d.client_msg_id)]]
                assert orig is not None
                results[i] = Stored(
                    orig.conversation_id, orig.seq, orig.message_id, orig.sent_at, True
                )
        return results  # type: ignore[return-value]

    async def _existing(
        self, conn: AsyncConnection, drafts: Sequence[Draft]
    ) -> dict[tuple[int | None, str], Stored]:
        by_sender: dict[int | None, set[str]] = {}
        for d in drafts:
            if d.client_msg_id is not None:
                by_sender.setdefault(d.sender_id, set()).add(d.client_msg_id)
        if not by_sender:
            return {}
        # One ``sender_id = ? AND client_msg_id IN (...)`` per sender: an index
        # search on the unique key in SQLite and PostgreSQL alike. (A row-value
        # ``(sender_id, client_msg_id) IN (...)`` made SQLite scan the index.)
        rows = await conn.execute(
            select(
                messages.c.sender_id,
                messages.c.client_msg_id,
                messages.c.conversation_id,
                messages.c.seq,
                messages.c.id,
                messages.c.created_at,
            ).where(
                or_(
                    *(
                        and_(messages.c.sender_id == sender, messages.c.client_msg_id.in_(ids))
                        for sender, ids in by_sender.items()
                    )
                )
            )
        )
        return {(r[0], r[1]): Stored(r[2], r[3], r[4], r[5], True) for r in rows}

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
            )
            for r in rows
        ]
