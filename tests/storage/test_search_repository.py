"""SearchRepository on a real database (SQLite and PostgreSQL): every way a
search can be planned returns exactly what the rules allow, newest first.

The search takes different statements by query length (index or short
scan) and, on PostgreSQL, by how common the word is (the trigram index, or
each conversation walked back). A small database cannot make the planner
call a word common, so the test forces each branch and checks it against
the rule written out in Python: the caller's conversations, a private
group from the caller's join on, no retracted message, the latest text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from p2sp.server.db.engine import Database
from p2sp.server.db.models import direct_pair_key
from p2sp.server.repository.message_reads import conversations, members, messages, users
from p2sp.server.repository.messages import ConversationKey, Draft, MessageStore
from p2sp.server.repository.search import SearchRepository

WORDS = ["the cat", "THE dog", "theory", "other", "你好吗", "大家你好", "x", "ok then"]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    db = Database.from_url(database_url)
    await db.upgrade()
    async with db.writer.begin() as conn:
        await conn.execute(
            sa.insert(users),
            [
                {"id": i, "username": f"u{i}", "username_key": f"u{i}", "password_hash": "x"}
                for i in (1, 2, 3)
            ],
        )
        group = (
            await conn.execute(
                sa.insert(conversations)
                .values(kind="group", name="g", is_public=False, last_seq=0)
                .returning(conversations.c.id)
            )
        ).scalar_one()
        await conn.execute(
            sa.insert(members),
            [
                {"conversation_id": group, "user_id": 1, "role": "owner", "joined_seq": 0},
                {"conversation_id": group, "user_id": 2, "role": "member", "joined_seq": 8},
            ],
        )
    store = MessageStore(db)
    drafts = []
    for i in range(40):
        text = WORDS[i % len(WORDS)] + f" {i}"
        a, b = (1, 2) if i % 3 else (1, 3)
        key = ConversationKey(direct_pair_key(a, b), "direct", (a, b))
        drafts.append(Draft(key, a if i % 2 else b, text, 1000 + i))
        drafts.append(Draft(group, 1, "group " + text, 2000 + i))
    await store.commit_batch(drafts)
    await store.close()
    async with db.writer.begin() as conn:  # two retracted messages, erased as the writer does
        await conn.execute(
            sa.update(messages).where(messages.c.id.in_([3, 4])).values(retracted=True, content="")
        )
    try:
        yield db
    finally:
        await db.dispose()


async def expected(db: Database, user: int, query: str, **filters: Any) -> list[int]:
    """The rule, in Python: every message the user may see whose text holds the query."""
    stmt = (
        sa.select(
            messages.c.id,
            messages.c.content,
            messages.c.sender_id,
            messages.c.seq,
            messages.c.retracted,
            conversations.c.kind,
            members.c.joined_seq,
            messages.c.conversation_id,
        )
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .join(
            members,
            sa.and_(
                members.c.conversation_id == messages.c.conversation_id,
                members.c.user_id == user,
            ),
        )
    )
    async with db.reader.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    found = [
        r.id
        for r in rows
        if query.casefold() in r.content.casefold()
        and not r.retracted
        and (r.kind != "group" or r.seq > r.joined_seq)
        and filters.get("sender_id") in (None, r.sender_id)
        and filters.get("conversation_id") in (None, r.conversation_id)
        and (filters.get("before_id") is None or r.id < filters["before_id"])
    ]
    return sorted(found, reverse=True)


@pytest.mark.parametrize("common", [False, True])
async def test_every_plan_returns_what_the_rules_allow(
    db: Database, common: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def forced(*args: Any) -> bool:
        return common

    monkeypatch.setattr(SearchRepository, "_common", staticmethod(forced))
    repo = SearchRepository(db)
    for user in (1, 2, 3):
        for query in ("the", "THE", "你好", "好", "ok then", "group the", "x", "nothing"):
            for filters in ({}, {"sender_id": 1}, {"conversation_id": 1}, {"before_id": 40}):
                want = await expected(db, user, query, **filters)
                got: list[int] = []
                before = filters.get("before_id")
                while True:  # paging by before_id, 3 at a time
                    hits, more = await repo.search(
                        user,
                        query,
                        conversation_id=filters.get("conversation_id"),
                        sender_id=filters.get("sender_id"),
                        before_id=before,
                        limit=3,
                    )
                    got += [h.row.message_id for h in hits]
                    if not more:
                        break
                    before = hits[-1].row.message_id
                assert got == want, (user, query, filters)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has one plan
async def test_a_word_in_most_messages_counts_as_common_on_postgresql(db: Database) -> None:
    async with db.writer.begin() as conn:
        await conn.execute(sa.text("ANALYZE messages"))
    async with db.reader.connect() as conn:
        scope = await SearchRepository._scope(conn, 1, None)
        assert len(scope.ids) == 3 and scope.messages == 80
        assert await SearchRepository._common(conn, "%group%", scope, 1)
        assert not await SearchRepository._common(conn, "%zebra crossing%", scope, 1)
