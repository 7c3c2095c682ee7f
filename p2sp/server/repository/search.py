"""Message search: one function, an index behind it on each database.

SQLite: the FTS5 table ``messages_fts`` with the trigram tokenizer (kept in
step with ``messages`` by triggers, inside the writer's transaction); the
query is one quoted phrase, so FTS5 operators in it (``NEAR``, ``*``,
``AND``, ``"``) are plain text, and the tokenizer's Unicode case folding
makes the match case-insensitive in every script. PostgreSQL: ``ILIKE``
with ``%``/``_``/``\\`` escaped, served by the ``pg_trgm`` GIN index.

Both need three characters: a query shorter than a trigram (``你好``)
cannot use either index and is answered by a bounded scan of the newest
messages of the user's conversations, matched in Python with ``casefold``.

Only the caller's conversations and visible ranges are searched, only
message types people write (text, image, file, system), never a
retracted message; edited messages are indexed under their latest text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, text
from sqlalchemy.sql import ColumnElement

from p2sp.server.db.engine import Database
from p2sp.server.repository.history import (
    CONTENT_TYPES,
    MessageRow,
    _message_select,
    conversations,
    members,
    message_row,
    messages,
)

#: How many of the newest visible messages a short query looks through.
SHORT_QUERY_SCAN = 5000
TRIGRAM = 3


@dataclass(frozen=True, slots=True)
class Hit:
    row: MessageRow
    kind: str
    name: str | None


def fts_phrase(query: str) -> str:
    """The query as one FTS5 string literal: every character is literal."""
    return '"' + query.replace('"', '""') + '"'


def like_pattern(query: str) -> str:
    """The query as an ``ILIKE`` substring pattern with ``\\`` as the escape."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SearchRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _visible(self, user_id: int) -> list[ColumnElement[bool]]:
        """Membership and visible range of the caller, as join conditions."""
        private_group = and_(conversations.c.kind == "group", conversations.c.is_public.is_(False))
        return [
            members.c.conversation_id == messages.c.conversation_id,
            members.c.user_id == user_id,
            messages.c.seq > case((private_group, members.c.joined_seq), else_=0),
        ]

    async def search(
        self,
        user_id: int,
        query: str,
        *,
        conversation_id: int | None,
        sender_id: int | None,
        before_id: int | None,
        limit: int,
    ) -> tuple[list[Hit], bool]:
        base = (
            _message_select(conversations.c.kind, conversations.c.name)
            .join(conversations, conversations.c.id == messages.c.conversation_id)
            .join(members, and_(*self._visible(user_id)))
            .where(messages.c.type.in_(CONTENT_TYPES), messages.c.retracted.is_(False))
        )
        if conversation_id is not None:
            base = base.where(messages.c.conversation_id == conversation_id)
        if sender_id is not None:
            base = base.where(messages.c.sender_id == sender_id)
        if before_id is not None:
            base = base.where(messages.c.id < before_id)
        if len(query) < TRIGRAM:
            return await self._scan(base, query, limit)
        if self.db.dialect == "sqlite":
            stmt = base.where(
                messages.c.id.in_(
                    text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH :q").bindparams(
                        q=fts_phrase(query)
                    )
                )
            )
        else:
            stmt = base.where(messages.c.content.ilike(like_pattern(query), escape="\\"))
        stmt = stmt.order_by(messages.c.id.desc()).limit(limit + 1)
        async with self.db.reader.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return _hits(rows[:limit]), len(rows) > limit

    async def _scan(self, base: Any, query: str, limit: int) -> tuple[list[Hit], bool]:
        folded = query.casefold()
        stmt = base.order_by(messages.c.id.desc()).limit(SHORT_QUERY_SCAN)
        found: list[Sequence[Any]] = []
        async with self.db.reader.connect() as conn:
            for row in await conn.execute(stmt):
                if folded in row[5].casefold():
                    found.append(row)
                    if len(found) > limit:
                        break
        return _hits(found[:limit]), len(found) > limit


def _hits(rows: Sequence[Sequence[Any]]) -> list[Hit]:
    return [Hit(message_row(r), r[-2], r[-1]) for r in rows]
