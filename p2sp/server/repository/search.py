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

How the statements are shaped, and why (measured on a million messages,
bench/RESULTS.md "Reading a large history"):

- A search is two statements: the matching ids, newest first, then the
  full rows of that one page by id.
- SQLite walks the index (or, for a short query, the messages) newest
  first and stops at the page's end: ``CROSS JOIN`` keeps that table the
  outer loop, where the planner would otherwise start from the caller's
  memberships and sort every match (400,000 rows for ``the``).
- PostgreSQL plans each search with its values (``plan_cache_mode =
  force_custom_plan`` for the transaction): a prepared statement's generic
  plan cannot use the trigram index, whose pattern is a parameter. The
  caller's conversation ids are given as ``= ANY(:ids)`` so the planner
  sees how few conversations it has to look in.
- PostgreSQL, a common word for a caller in few conversations: each of
  them is walked back from its newest message (``LATERAL``), which finds a
  page in a few dozen rows where the trigram index would return every
  match in the table to be sorted. Common or not is the planner's own
  estimate for the pattern (``_common``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

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
#: PostgreSQL: a caller in at most this many conversations, and a word
#: expected this many times over a page in them, walks each conversation back.
PER_CONVERSATION_MAX = 100
COMMON_HITS = 10

#: The caller's visible range (``cm`` is their membership): no edit or
#: retract events, nothing retracted, a private group from the join on.
_VISIBLE = (
    "m.type IN ({types}) AND NOT m.retracted "
    "AND m.seq > CASE WHEN c.kind = 'group' AND NOT c.is_public THEN cm.joined_seq ELSE 0 END"
).format(types=", ".join(f"'{t}'" for t in CONTENT_TYPES))


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


def candidates_sql(
    dialect: str,
    *,
    indexed: bool,
    conversation: bool,
    sender: bool,
    before: bool,
    per_conversation: bool = False,
) -> str:
    """The statement that finds the matching ids (and texts), newest first.

    ``indexed``: the query is long enough for the index; otherwise the
    newest visible messages are returned for the caller to match.
    ``per_conversation`` (PostgreSQL, a common word): each of the caller's
    conversations walked back from its newest message to its first hits.
    """
    sqlite = dialect == "sqlite"
    join = "CROSS JOIN" if sqlite else "JOIN"
    fts = sqlite and indexed
    head = "messages AS m"
    if fts:
        head = "messages_fts AS f CROSS JOIN messages AS m ON m.id = f.rowid"
    order = "f.rowid" if fts else "m.id"
    where = [_VISIBLE]
    if fts:
        where.append("f.messages_fts MATCH :q")
    elif indexed:
        where.append("m.content ILIKE :q ESCAPE '\\'")
    if conversation:
        where.append("m.conversation_id = :conversation_id")
    if sender:
        where.append("m.sender_id = :sender_id")
    if before:
        where.append(f"{order} < :before_id")
    if per_conversation:
        return (
            "SELECT s.id, s.content FROM conversation_members AS cm "
            "JOIN conversations AS c ON c.id = cm.conversation_id "
            "CROSS JOIN LATERAL (SELECT m.id, m.content FROM messages AS m "
            f"WHERE m.conversation_id = cm.conversation_id AND {' AND '.join(where)} "
            "ORDER BY m.seq DESC LIMIT :n) AS s "
            "WHERE cm.user_id = :user_id ORDER BY s.id DESC LIMIT :n"
        )
    if not sqlite:
        where.append("m.conversation_id = ANY(:ids)")
    return (
        f"SELECT m.id, m.content FROM {head} "
        f"{join} conversations AS c ON c.id = m.conversation_id "
        f"{join} conversation_members AS cm "
        "ON cm.conversation_id = m.conversation_id AND cm.user_id = :user_id "
        f"WHERE {' AND '.join(where)} ORDER BY {order} DESC LIMIT :n"
    )


@dataclass(frozen=True, slots=True)
class Scope:
    """The caller's conversations, as the PostgreSQL planner needs them."""

    ids: list[int]
    #: Messages in them (their ``last_seq``s), and in the whole table (estimated).
    messages: int
    table_rows: float


class SearchRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

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
        dialect = self.db.dialect
        indexed = len(query) >= TRIGRAM
        params: dict[str, Any] = {
            "user_id": user_id,
            "n": limit + 1 if indexed else SHORT_QUERY_SCAN,
        }
        if indexed:
            params["q"] = fts_phrase(query) if dialect == "sqlite" else like_pattern(query)
        for name, value in (
            ("conversation_id", conversation_id),
            ("sender_id", sender_id),
            ("before_id", before_id),
        ):
            if value is not None:
                params[name] = value
        shape = {
            "indexed": indexed,
            "conversation": conversation_id is not None,
            "sender": sender_id is not None,
            "before": before_id is not None,
        }
        async with self.db.reader.connect() as conn:
            if dialect == "sqlite":
                stmt = text(candidates_sql(dialect, **shape))
            else:
                await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
                scope = await self._scope(conn, user_id, conversation_id)
                common = indexed and await self._common(conn, params["q"], scope, limit)
                stmt = text(candidates_sql(dialect, **shape, per_conversation=common))
                if not common:
                    params["ids"] = scope.ids
                    # integer[], the column's own type: compared with bigint[] the
                    # planner misjudges the ANY and sorts every visible message.
                    stmt = stmt.bindparams(bindparam("ids", type_=ARRAY(Integer)))
            found = (await conn.execute(stmt, params)).all()
            if not indexed:
                folded = query.casefold()
                found = [r for r in found if folded in r[1].casefold()][: limit + 1]
            ids = [r[0] for r in found[:limit]]
            return await self._hits(conn, ids), len(found) > limit

    @staticmethod
    async def _scope(conn: AsyncConnection, user_id: int, conversation_id: int | None) -> Scope:
        table_rows = text("(SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass)")
        stmt = (
            select(conversations.c.id, conversations.c.last_seq, table_rows)
            .join(members, members.c.conversation_id == conversations.c.id)
            .where(members.c.user_id == user_id)
        )
        if conversation_id is not None:
            stmt = stmt.where(conversations.c.id == conversation_id)
        rows = (await conn.execute(stmt)).all()
        return Scope(
            [r[0] for r in rows], sum(r[1] for r in rows), float(rows[0][2]) if rows else 0.0
        )

    @staticmethod
    async def _common(conn: AsyncConnection, pattern: str, scope: Scope, limit: int) -> bool:
        """Whether the caller's conversations hold so many matches (by the
        planner's estimate for the whole table) that walking back from their
        newest messages finds a page sooner than the trigram index.

        The index answers rare words in a few milliseconds; for a common
        word it returns every match in the table (400,000 for ``the``) to be
        sorted, where walking back finds a page in a few dozen rows. The
        planner estimates a pattern's matches well, but not how they fall in
        one user's conversations, so the choice is made here. A user in
        very many conversations keeps the single statement: PostgreSQL then
        walks the messages newest first itself.
        """
        if not 0 < len(scope.ids) <= PER_CONVERSATION_MAX or scope.table_rows <= 0:
            return False
        plan = (
            await conn.execute(
                text(
                    "EXPLAIN (FORMAT JSON) SELECT 1 FROM messages WHERE content ILIKE :q "
                    "ESCAPE '\\'"
                ),
                {"q": pattern},
            )
        ).scalar_one()
        if isinstance(plan, str):
            plan = json.loads(plan)
        estimated = float(plan[0]["Plan"]["Plan Rows"])
        expected = estimated / scope.table_rows * scope.messages
        return expected >= COMMON_HITS * (limit + 1)

    @staticmethod
    async def _hits(conn: AsyncConnection, ids: list[int]) -> list[Hit]:
        """The full rows of one page of hits, newest first."""
        if not ids:
            return []
        stmt = (
            _message_select(conversations.c.kind, conversations.c.name)
            .join(conversations, conversations.c.id == messages.c.conversation_id)
            .where(messages.c.id.in_(ids))
            .order_by(messages.c.id.desc())
        )
        return [_hit(r) for r in await conn.execute(stmt)]


def _hit(r: Sequence[Any]) -> Hit:
    return Hit(message_row(r), r[-2], r[-1])
