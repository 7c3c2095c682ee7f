"""Data access for ``messages`` and the delivery cursors.

``commit_batch`` is the hot path: many messages, one transaction, and a
fixed number of statements whatever the batch holds (``message_sql``):
direct chats and system inboxes met for the first time are created in it
(``ConversationKey``); resends (same sender and ``client_msg_id``) are
answered with the stored original, whether it was committed earlier or sits
earlier in the same batch; each conversation's seqs are taken with one
``last_seq = last_seq + n`` per conversation, all in one statement, so seqs
are gap-free and follow queue order; then every row is inserted at once.

The batch is plain synchronous code over a ``run(sql, params) -> rows``
function, so it runs whole wherever its connection lives: on a SQLite file,
on the writer's own thread and connection (one hand-off per batch; through
aiosqlite every statement was three: execute, fetch, close, and at low load,
with a message or two per batch, those hand-offs were most of the server's
CPU); elsewhere (PostgreSQL, in-memory SQLite) inside SQLAlchemy's
``run_sync`` on the writer engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.engine import Connection

from p2sp.server.db.engine import Database
from p2sp.server.repository.message_reads import MessageReads
from p2sp.server.repository.message_sql import BatchSQL

_json = msgspec.json.Encoder()

#: Runs one statement with its parameters and returns its rows.
Run = Callable[[str, tuple[Any, ...]], list[Any]]


def _rows(value: Any) -> tuple[str]:
    """One JSON array parameter (SQLite's JSON functions take text, not bytes)."""
    return (_json.encode(value).decode(),)


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """A direct chat or system inbox by its unique ``pair_key``: found, or
    created with its ``members``, inside the transaction that stores the
    message, so a first message costs no transaction of its own."""

    pair_key: str
    kind: str
    members: tuple[int, ...]


@dataclass(slots=True)
class Draft:
    """A message waiting to be stored."""

    conversation: int | ConversationKey
    sender_id: int | None
    content: str
    created_at: int
    type: str = "text"
    client_msg_id: str | None = None
    notice: dict[str, Any] | None = None
    #: The message this one replies to (same conversation).
    parent_id: int | None = None
    #: The message an ``edit`` / ``retract`` event changes.
    target_id: int | None = None
    #: The refusal code if the conversation is gone by commit time (a group
    #: deleted between the send's checks and its commit).
    gone_code: str = "no_such_conversation"


@dataclass(frozen=True, slots=True)
class Gone:
    """A draft whose conversation no longer existed when its batch committed."""

    conversation_id: int


@dataclass(frozen=True, slots=True)
class CursorMove:
    """An acknowledged position: the user has everything up to ``seq``
    (``read``: has read it, which implies delivered)."""

    user_id: int
    conversation_id: int
    seq: int
    read: bool = False


@dataclass(frozen=True, slots=True)
class Stored:
    """Where a draft landed. ``duplicate``: it was a resend of ``message_id``."""

    conversation_id: int
    seq: int
    message_id: int
    sent_at: int
    duplicate: bool = False


class MessageStore(MessageReads):
    """Writes messages and cursor moves in batches; reads for replay (``MessageReads``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sql = BatchSQL.for_dialect(db.dialect)
        self._thread: ThreadPoolExecutor | None = None
        self._sqlite: sqlite3.Connection | None = None
        if db.sqlite_file is not None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="p2sp-message-writer")

    async def close(self) -> None:
        """Close the writer's own SQLite connection and thread, if it has them."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._sqlite is not None:
            await asyncio.get_running_loop().run_in_executor(thread, self._sqlite.close)
            self._sqlite = None
        thread.shutdown(wait=False)

    # -- writing ------------------------------------------------------------------

    async def commit_batch(
        self, drafts: Sequence[Draft], cursor_moves: Sequence[CursorMove] = ()
    ) -> list[Stored | Gone]:
        """Store every draft and move the given delivery cursors, in one
        transaction; results in the drafts' order."""
        if self._thread is not None:
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, self._commit_on_sqlite, drafts, cursor_moves
            )
        async with self.db.writer.begin() as conn:
            return await conn.run_sync(self._commit_on, drafts, cursor_moves)

    def _commit_on_sqlite(
        self, drafts: Sequence[Draft], cursor_moves: Sequence[CursorMove]
    ) -> list[Stored | Gone]:
        """On the writer's thread: the batch in one transaction of its own connection."""
        if self._sqlite is None:
            self._sqlite = self.db.connect_sqlite()
        conn = self._sqlite

        def run(sql: str, params: tuple[Any, ...]) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        conn.execute("BEGIN IMMEDIATE")
        try:
            stored = self._commit(run, drafts, cursor_moves)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return stored

    def _commit_on(
        self, conn: Connection, drafts: Sequence[Draft], cursor_moves: Sequence[CursorMove]
    ) -> list[Stored | Gone]:
        """Through SQLAlchemy (``run_sync``): its transaction is the caller's."""

        def run(sql: str, params: tuple[Any, ...]) -> list[Any]:
            result = conn.exec_driver_sql(sql, params)
            return list(result.all()) if result.returns_rows else []

        return self._commit(run, drafts, cursor_moves)

    def _commit(
        self, run: Run, drafts: Sequence[Draft], cursor_moves: Sequence[CursorMove]
    ) -> list[Stored | Gone]:
        stored = self._store(run, drafts) if drafts else []
        if cursor_moves:
            for read, statement in (
                (False, self.sql.advance_cursors),
                (True, self.sql.advance_reads),
            ):
                furthest: dict[tuple[int, int], int] = {}
                for m in cursor_moves:
                    if m.read is read:
                        k = (m.user_id, m.conversation_id)
                        if m.seq > furthest.get(k, 0):
                            furthest[k] = m.seq
                if furthest:
                    run(statement, _rows([[uid, cid, seq] for (uid, cid), seq in furthest.items()]))
        return stored

    def _store(self, run: Run, drafts: Sequence[Draft]) -> list[Stored | Gone]:
        sql = self.sql
        conv_ids = self._resolve(run, drafts)
        results: list[Stored | Gone | None] = [None] * len(drafts)
        earlier = self._existing(run, drafts)
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
            latest: dict[int, int] = {}
            for i in fresh:
                cid = conv_ids[i]
                counts[cid] = counts.get(cid, 0) + 1
                latest[cid] = max(latest.get(cid, 0), drafts[i].created_at)
            bumped = run(
                sql.bump_seqs,
                _rows(sorted([cid, n, latest[cid]] for cid, n in counts.items())),
            )
            next_seq = {cid: last - counts[cid] + 1 for cid, last in bumped}
            if len(next_seq) != len(counts):
                # Deleted since the sends were checked: those drafts are
                # answered as refused; the rest of the batch goes on.
                for i in fresh:
                    if conv_ids[i] not in next_seq:
                        results[i] = Gone(conv_ids[i])
                fresh = [i for i in fresh if results[i] is None]
            rows = []
            for i in fresh:
                d = drafts[i]
                cid = conv_ids[i]
                seq = next_seq[cid]
                next_seq[cid] = seq + 1
                notice = None if d.notice is None else _json.encode(d.notice).decode()
                rows.append(
                    [
                        cid,
                        seq,
                        d.sender_id,
                        d.client_msg_id,
                        d.type,
                        d.content,
                        d.created_at,
                        notice,
                        d.parent_id,
                        d.target_id,
                    ]
                )
            ids = (
                {(cid, seq): mid for mid, cid, seq in run(sql.insert_messages, _rows(rows))}
                if rows
                else {}
            )
            for i, row in zip(fresh, rows, strict=True):
                results[i] = Stored(row[0], row[1], int(ids[(row[0], row[1])]), row[6])
            self._apply_changes(run, drafts, fresh, results)

        for i, d in enumerate(drafts):
            if results[i] is None:  # a resend of a draft earlier in this batch
                assert d.client_msg_id is not None
                orig = results[first_in_batch[(d.sender_id, d.client_msg_id)]]
                assert orig is not None
                results[i] = (
                    orig
                    if type(orig) is Gone
                    else Stored(
                        orig.conversation_id,  # type: ignore[union-attr]
                        orig.seq,  # type: ignore[union-attr]
                        orig.message_id,  # type: ignore[union-attr]
                        orig.sent_at,  # type: ignore[union-attr]
                        True,
                    )
                )
        return results  # type: ignore[return-value]

    def _apply_changes(
        self,
        run: Run,
        drafts: Sequence[Draft],
        fresh: Sequence[int],
        results: Sequence[Stored | Gone | None],
    ) -> None:
        """Apply the edits and retractions of the batch to their targets, in
        queue order, in the batch's transaction: an edit keeps the current
        text as a version and sets the new one (unless the target is
        retracted); a retraction erases the target's text, its versions and
        the texts of the edit events that changed it."""
        sql = self.sql
        for i in fresh:
            d = drafts[i]
            if d.target_id is None or d.type not in ("edit", "retract"):
                continue
            if d.type == "edit":
                event_id = results[i].message_id  # type: ignore[union-attr]
                run(sql.keep_version, (event_id, d.target_id))
                run(sql.apply_edit, (d.content, d.created_at, d.target_id))
            else:
                run(sql.erase_edit_events, (d.target_id,))
                run(sql.erase_versions, (d.target_id,))
                run(sql.apply_retract, (d.target_id,))
        # An edit whose target was retracted before it applied (earlier in
        # this batch, or by a batch committed after the edit was checked)
        # changed nothing; its own text is erased like the other versions.
        for i in fresh:
            d = drafts[i]
            if d.type == "edit" and d.target_id is not None:
                event_id = results[i].message_id  # type: ignore[union-attr]
                run(sql.erase_if_target_retracted, (event_id, d.target_id))

    def _resolve(self, run: Run, drafts: Sequence[Draft]) -> list[int]:
        """Each draft's conversation id, creating the keyed ones not there yet."""
        keys = {
            d.conversation.pair_key: d.conversation
            for d in drafts
            if type(d.conversation) is ConversationKey
        }
        found: dict[str, int] = {}
        if keys:
            sql = self.sql
            found = {k: i for i, k in run(sql.find_keyed, _rows(list(keys)))}
            missing = [keys[k] for k in keys if k not in found]
            if missing:
                created = {
                    k: i
                    for i, k in run(
                        sql.insert_keyed, _rows([[c.kind, c.pair_key] for c in missing])
                    )
                }
                if created:
                    run(
                        sql.insert_members,
                        _rows(
                            [[cid, uid] for k, cid in created.items() for uid in keys[k].members]
                        ),
                    )
                    found.update(created)
                if len(created) < len(missing):  # another process created them meanwhile
                    rest = [c.pair_key for c in missing if c.pair_key not in found]
                    found.update({k: i for i, k in run(sql.find_keyed, _rows(rest))})
        return [
            d.conversation if type(d.conversation) is int else found[d.conversation.pair_key]  # type: ignore[union-attr]
            for d in drafts
        ]

    def _existing(self, run: Run, drafts: Sequence[Draft]) -> dict[tuple[int | None, str], Stored]:
        wanted = {(d.sender_id, d.client_msg_id) for d in drafts if d.client_msg_id is not None}
        if not wanted:
            return {}
        rows = run(self.sql.find_sent, _rows(list(wanted)))
        return {(r[0], r[1]): Stored(r[2], r[3], r[4], r[5], True) for r in rows}
