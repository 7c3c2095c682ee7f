"""The write path's statements, one set per database, each taking one JSON array.

A batch of any size is a fixed number of statements: every row of a step
travels as one JSON array parameter that the database unpacks itself
(``json_each`` in SQLite, ``jsonb_array_elements`` in PostgreSQL). A
statement per conversation (seq bumps, conversation creation) made the
cost of a batch grow with the number of distinct conversations in it,
which with 1,000 clients chatting at random is nearly one per message.
Plain SQL, not SQLAlchemy Core: nothing to compile per batch, and the same
text runs on the writer's own ``sqlite3`` connection or through
``exec_driver_sql`` (see ``messages.MessageStore``).

Every array holds arrays (positional fields) in the order the docstring of
each statement gives. ``notice`` travels as JSON text (or null).

The plans were checked with ``EXPLAIN QUERY PLAN``: the JSON rows drive the
loop and each probes a unique index (sender + client_msg_id, conversation
primary key, pair_key, member (conversation, user)); no statement scans a
table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchSQL:
    #: [[pair_key, ...]] -> rows (id, pair_key) of those that exist.
    find_keyed: str
    #: [[kind, pair_key], ...] -> rows (id, pair_key) of those inserted now
    #: (a key someone else inserted first is skipped, not an error).
    insert_keyed: str
    #: [[conversation_id, user_id], ...]
    insert_members: str
    #: [[sender_id, client_msg_id], ...] -> rows (sender_id, client_msg_id,
    #: conversation_id, seq, id, created_at) of messages already stored.
    find_sent: str
    #: [[conversation_id, n, at], ...] -> rows (id, last_seq) after adding n;
    #: ``last_activity`` becomes ``at`` (ms) if that is later.
    bump_seqs: str
    #: [[conversation_id, seq, sender_id, client_msg_id, type, content,
    #: created_at, notice_json, parent_id, target_id], ...] -> rows (id,
    #: conversation_id, seq).
    insert_messages: str
    #: [[user_id, conversation_id, seq], ...], one per (user, conversation):
    #: moves each delivery cursor forward to seq, never back.
    advance_cursors: str
    #: The same for reads: ``read_seq`` forward to seq, and ``delivered_seq``
    #: up to it (what was read was delivered).
    advance_reads: str
    #: (event_id, target_id): keep the target's current text as a version.
    keep_version: str
    #: (text, edited_at, target_id): the target's new text, unless retracted.
    apply_edit: str
    #: (target_id,): erase the texts of the edit events that changed the target.
    erase_edit_events: str
    #: (target_id,): erase the target's earlier versions.
    erase_versions: str
    #: (target_id,): erase the target's text and mark it retracted.
    apply_retract: str
    #: (event_id, target_id): erase an edit event's text if its target is retracted.
    erase_if_target_retracted: str

    @staticmethod
    def for_dialect(dialect: str) -> BatchSQL:
        if dialect == "sqlite":
            return SQLITE
        if dialect == "postgresql":
            return POSTGRESQL
        raise ValueError(f"no batch statements for {dialect!r}")


def _j(i: int, row: str = "value") -> str:
    return f"json_extract({row}, '$[{i}]')"


SQLITE = BatchSQL(
    find_keyed="SELECT id, pair_key FROM conversations "
    "WHERE pair_key IN (SELECT value FROM json_each(?))",
    # "WHERE true": SQLite's parser needs it before ON CONFLICT after a SELECT.
    insert_keyed=f"INSERT INTO conversations (kind, pair_key) "
    f"SELECT {_j(0)}, {_j(1)} FROM json_each(?) WHERE true "
    "ON CONFLICT (pair_key) DO NOTHING RETURNING id, pair_key",
    insert_members=f"INSERT INTO conversation_members (conversation_id, user_id) "
    f"SELECT {_j(0)}, {_j(1)} FROM json_each(?)",
    # CROSS JOIN: SQLite keeps the left table outermost, so each JSON row
    # probes the (sender_id, client_msg_id) unique index.
    find_sent="SELECT m.sender_id, m.client_msg_id, m.conversation_id, m.seq, m.id, "
    "m.created_at FROM json_each(?) AS j CROSS JOIN messages AS m "
    f"ON m.sender_id = {_j(0, 'j.value')} AND m.client_msg_id = {_j(1, 'j.value')}",
    bump_seqs="UPDATE conversations SET last_seq = last_seq + j.n, "
    "last_activity = max(coalesce(last_activity, 0), j.at) "
    f"FROM (SELECT {_j(0)} AS id, {_j(1)} AS n, {_j(2)} AS at FROM json_each(?)) AS j "
    "WHERE conversations.id = j.id RETURNING id, last_seq",
    insert_messages="INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, "
    "type, content, created_at, notice, parent_id, target_id) "
    f"SELECT {', '.join(_j(i) for i in range(10))} FROM json_each(?) "
    "RETURNING id, conversation_id, seq",
    advance_cursors="UPDATE conversation_members SET delivered_seq = j.seq "
    f"FROM (SELECT {_j(0)} AS uid, {_j(1)} AS cid, {_j(2)} AS seq FROM json_each(?)) AS j "
    "WHERE conversation_members.conversation_id = j.cid "
    "AND conversation_members.user_id = j.uid AND conversation_members.delivered_seq < j.seq",
    advance_reads="UPDATE conversation_members SET read_seq = j.seq, "
    "delivered_seq = max(conversation_members.delivered_seq, j.seq) "
    f"FROM (SELECT {_j(0)} AS uid, {_j(1)} AS cid, {_j(2)} AS seq FROM json_each(?)) AS j "
    "WHERE conversation_members.conversation_id = j.cid "
    "AND conversation_members.user_id = j.uid AND conversation_members.read_seq < j.seq",
    keep_version="INSERT INTO message_versions (message_id, event_id, text, created_at) "
    "SELECT id, ?, content, coalesce(edited_at, created_at) FROM messages "
    "WHERE id = ? AND retracted = 0",
    apply_edit="UPDATE messages SET content = ?, edited_at = ? WHERE id = ? AND retracted = 0",
    erase_edit_events="UPDATE messages SET content = '' WHERE id IN "
    "(SELECT event_id FROM message_versions WHERE message_id = ?)",
    erase_versions="DELETE FROM message_versions WHERE message_id = ?",
    apply_retract="UPDATE messages SET content = '', retracted = 1 WHERE id = ?",
    erase_if_target_retracted="UPDATE messages SET content = '' WHERE id = ? "
    "AND (SELECT t.retracted FROM messages AS t WHERE t.id = ?) = 1",
)

_ROWS = "jsonb_array_elements($1::jsonb) AS e"

POSTGRESQL = BatchSQL(
    find_keyed="SELECT id, pair_key FROM conversations "
    "WHERE pair_key IN (SELECT jsonb_array_elements_text($1::jsonb))",
    insert_keyed=f"INSERT INTO conversations (kind, pair_key) SELECT e->>0, e->>1 FROM {_ROWS} "
    "ON CONFLICT (pair_key) DO NOTHING RETURNING id, pair_key",
    insert_members="INSERT INTO conversation_members (conversation_id, user_id) "
    f"SELECT (e->>0)::int, (e->>1)::int FROM {_ROWS}",
    find_sent="SELECT m.sender_id, m.client_msg_id, m.conversation_id, m.seq, m.id, "
    f"m.created_at FROM {_ROWS} "
    "JOIN messages AS m ON m.sender_id = (e->>0)::int AND m.client_msg_id = e->>1",
    # Rows are locked in the order the join meets them; callers sort by id so
    # that two processes bumping the same conversations cannot deadlock.
    bump_seqs="UPDATE conversations AS c SET last_seq = c.last_seq + (e->>1)::bigint, "
    "last_activity = greatest(coalesce(c.last_activity, 0), (e->>2)::bigint) "
    f"FROM {_ROWS} WHERE c.id = (e->>0)::int RETURNING c.id, c.last_seq",
    insert_messages="INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, "
    "type, content, created_at, notice, parent_id, target_id) "
    "SELECT (e->>0)::int, (e->>1)::bigint, (e->>2)::int, e->>3, e->>4, e->>5, "
    "(e->>6)::bigint, (e->>7)::json, (e->>8)::bigint, (e->>9)::bigint "
    f"FROM {_ROWS} RETURNING id, conversation_id, seq",
    advance_cursors="UPDATE conversation_members AS cm SET delivered_seq = (e->>2)::bigint "
    f"FROM {_ROWS} WHERE cm.conversation_id = (e->>1)::int AND cm.user_id = (e->>0)::int "
    "AND cm.delivered_seq < (e->>2)::bigint",
    advance_reads="UPDATE conversation_members AS cm SET read_seq = (e->>2)::bigint, "
    "delivered_seq = greatest(cm.delivered_seq, (e->>2)::bigint) "
    f"FROM {_ROWS} WHERE cm.conversation_id = (e->>1)::int AND cm.user_id = (e->>0)::int "
    "AND cm.read_seq < (e->>2)::bigint",
    keep_version="INSERT INTO message_versions (message_id, event_id, text, created_at) "
    "SELECT id, $1, content, coalesce(edited_at, created_at) FROM messages "
    "WHERE id = $2 AND NOT retracted",
    apply_edit="UPDATE messages SET content = $1, edited_at = $2 WHERE id = $3 AND NOT retracted",
    erase_edit_events="UPDATE messages SET content = '' WHERE id IN "
    "(SELECT event_id FROM message_versions WHERE message_id = $1)",
    erase_versions="DELETE FROM message_versions WHERE message_id = $1",
    apply_retract="UPDATE messages SET content = '', retracted = true WHERE id = $1",
    erase_if_target_retracted="UPDATE messages SET content = '' WHERE id = $1 "
    "AND (SELECT t.retracted FROM messages AS t WHERE t.id = $2)",
)
