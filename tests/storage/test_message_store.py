"""MessageStore.commit_batch on a real database (SQLite and PostgreSQL).

The batch statements are plain SQL per database (``message_sql``), so each
rule of the write path is checked here on both: conversations created in
the message's transaction, gap-free seqs in queue order, resends answered
with the original, notices kept as JSON, cursors that only move forward,
and a failing batch that leaves nothing behind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from p2sp.server.db.engine import Database
from p2sp.server.db.models import direct_pair_key, system_pair_key
from p2sp.server.repository.message_reads import conversations, members, messages, users
from p2sp.server.repository.messages import (
    ConversationKey,
    CursorMove,
    Draft,
    Gone,
    MessageStore,
    Stored,
)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[MessageStore]:
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
    store = MessageStore(db)
    try:
        yield store
    finally:
        await store.close()
        await db.dispose()


def direct(a: int, b: int) -> ConversationKey:
    return ConversationKey(direct_pair_key(a, b), "direct", (min(a, b), max(a, b)))


async def rows(store: MessageStore, stmt: sa.Select) -> list[tuple]:
    async with store.db.reader.connect() as conn:
        return [tuple(r) for r in await conn.execute(stmt)]


async def test_first_messages_create_their_conversations_with_members(store: MessageStore) -> None:
    out = await store.commit_batch(
        [
            Draft(direct(1, 2), 1, "a", 10),
            Draft(direct(2, 1), 2, "b", 11),
            Draft(direct(1, 3), 1, "c", 12),
            Draft(ConversationKey(system_pair_key(3), "system", (3,)), None, "n", 13),
        ]
    )
    assert out[0].conversation_id == out[1].conversation_id != out[2].conversation_id
    assert [(s.seq, s.sent_at) for s in out] == [(1, 10), (2, 11), (1, 12), (1, 13)]
    # Known now: a later batch names it by id or by key and lands in the same one.
    again = await store.commit_batch(
        [Draft(direct(1, 2), 1, "d", 14), Draft(out[0].conversation_id, 2, "e", 15)]
    )
    cid = out[0].conversation_id
    assert [(s.conversation_id, s.seq) for s in again] == [(cid, 3), (cid, 4)]
    convs = await rows(
        store, sa.select(conversations.c.pair_key, conversations.c.kind, conversations.c.last_seq)
    )
    assert sorted(c for c in convs if c[0] and c[0][0] in "ds") == sorted(
        [
            (direct_pair_key(1, 2), "direct", 4),
            (direct_pair_key(1, 3), "direct", 1),
            (system_pair_key(3), "system", 1),
        ]
    )
    mem = await rows(
        store,
        sa.select(members.c.conversation_id, members.c.user_id).where(
            members.c.conversation_id.in_([s.conversation_id for s in out])
        ),
    )
    assert sorted(mem) == sorted(
        [
            (out[0].conversation_id, 1),
            (out[0].conversation_id, 2),
            (out[2].conversation_id, 1),
            (out[2].conversation_id, 3),
            (out[3].conversation_id, 3),
        ]
    )


async def test_resends_are_answered_with_the_original_and_take_no_seq(store: MessageStore) -> None:
    first = await store.commit_batch(
        [
            Draft(direct(1, 2), 1, "hi", 1, client_msg_id="c1"),
            Draft(direct(1, 2), 1, "hi", 2, client_msg_id="c1"),
        ]
    )
    assert not first[0].duplicate and first[1].duplicate
    assert first[1].message_id == first[0].message_id and first[1].seq == 1
    later = await store.commit_batch(
        [
            Draft(direct(1, 2), 1, "hi", 3, client_msg_id="c1"),
            Draft(direct(1, 2), 2, "same id, other sender", 4, client_msg_id="c1"),
        ]
    )
    assert later[0].duplicate and later[0].message_id == first[0].message_id
    assert later[0].sent_at == 1
    assert not later[1].duplicate and later[1].seq == 2
    assert len(await rows(store, sa.select(messages.c.id))) == 2


async def test_notices_are_stored_as_json_and_replayed(store: MessageStore) -> None:
    notice = {"kind": "friend_added", "username": "u2", "nested": [1, "二"]}
    (s,) = await store.commit_batch(
        [
            Draft(
                ConversationKey(system_pair_key(1), "system", (1,)),
                None,
                "u2 added you",
                5,
                type="system",
                notice=notice,
            )
        ]
    )
    (view,) = await store.pending(1, "u1", 0, 10)
    assert (view.conversation_id, view.seq, view.type, view.notice) == (
        s.conversation_id,
        1,
        "system",
        notice,
    )


async def test_cursors_move_forward_only(store: MessageStore) -> None:
    out = await store.commit_batch([Draft(direct(1, 2), 1, f"m{i}", i) for i in range(5)])
    cid = out[0].conversation_id
    await store.commit_batch([], [CursorMove(2, cid, 3), CursorMove(2, cid, 2)])
    assert (await store.cursors(2, [cid]))[cid] == (3, 5)
    await store.commit_batch([], [CursorMove(2, cid, 1)])
    assert (await store.cursors(2, [cid]))[cid] == (3, 5)
    await store.commit_batch([], [CursorMove(2, cid, 5), CursorMove(1, cid, 4)])
    assert (await store.cursors(2, [cid]))[cid] == (5, 5)
    assert (await store.cursors(1, [cid]))[cid] == (4, 5)
    assert await store.cursors(3, [cid]) == {}


async def test_a_draft_for_a_deleted_conversation_is_gone_and_the_rest_lands(
    store: MessageStore,
) -> None:
    """A group deleted between a send's checks and its commit: that draft comes
    back ``Gone`` (answered as refused), the others of the batch are stored."""
    out = await store.commit_batch([Draft(direct(1, 2), 1, "a", 1), Draft(999_999, 1, "b", 2)])
    assert isinstance(out[1], Gone) and out[1].conversation_id == 999_999
    assert isinstance(out[0], Stored) and out[0].seq == 1
    assert len(await rows(store, sa.select(messages.c.id))) == 1


async def test_a_failing_batch_leaves_nothing_behind(store: MessageStore) -> None:
    with pytest.raises((sa.exc.IntegrityError, sqlite3.IntegrityError)):
        # sender 999999 does not exist: the foreign key fails the whole batch
        await store.commit_batch(
            [Draft(direct(1, 2), 1, "a", 1), Draft(direct(1, 2), 999_999, "b", 2)]
        )
    assert await rows(store, sa.select(messages.c.id)) == []
    assert (
        await rows(
            store,
            sa.select(conversations.c.id).where(conversations.c.pair_key == direct_pair_key(1, 2)),
        )
        == []
    )
