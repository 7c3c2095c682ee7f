"""History, replies, edits, retractions, receipts and search.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 00:00:00+00:00

* ``messages.target_id``: the message an ``edit`` or ``retract`` event changes.
* ``message_versions``: the earlier texts of edited messages (erased with the
  message when it is retracted), with the id of the edit event that replaced
  each, so a retraction can erase the events' texts too.
* ``conversation_members.joined_seq``: where a member's visible range starts
  (the group's ``last_seq`` when they joined); existing group members get the
  last seq committed before their ``join_time``.
* ``conversations.last_activity``: ms of the newest message, for the
  conversation list; filled from the messages already stored.
* The search index. SQLite: an FTS5 table with the trigram tokenizer over
  ``messages.content`` (external content, rowid = message id), kept in step
  by triggers, which run inside the writer's transaction. PostgreSQL: the
  ``pg_trgm`` extension and a GIN index over ``messages.content``. Neither is
  in ``models.py``: they are not tables or indexes SQLAlchemy can describe
  portably, and ``tests/storage/test_schema.py`` leaves them out of its
  comparison (``SEARCH_OBJECTS``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MS_COMMENT = "milliseconds since the Unix epoch (UTC)"
#: Message types the search index holds (edit and retract events are not searched).
INDEXED = "('text', 'image', 'file', 'system')"

SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "content, content='messages', content_rowid='id', tokenize='trigram')",
    f"INSERT INTO messages_fts (rowid, content) SELECT id, content FROM messages "
    f"WHERE type IN {INDEXED} AND retracted = 0",
    f"CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages "
    f"WHEN new.type IN {INDEXED} BEGIN "
    "INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content); END",
    f"CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages "
    f"WHEN old.type IN {INDEXED} BEGIN "
    "INSERT INTO messages_fts (messages_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); END",
    f"CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages "
    f"WHEN old.type IN {INDEXED} BEGIN "
    "INSERT INTO messages_fts (messages_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); "
    "INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content); END",
]
SQLITE_SEARCH_DOWN = [
    "DROP TRIGGER IF EXISTS messages_fts_update",
    "DROP TRIGGER IF EXISTS messages_fts_delete",
    "DROP TRIGGER IF EXISTS messages_fts_insert",
    "DROP TABLE IF EXISTS messages_fts",
]
PG_SEARCH = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_messages_content_trgm ON messages USING gin (content gin_trgm_ops)",
]
PG_SEARCH_DOWN = ["DROP INDEX IF EXISTS ix_messages_content_trgm"]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("target_id", sa.BigInteger(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_messages_target_id_messages"),
            "messages",
            ["target_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "message_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False, comment=MS_COMMENT),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_versions_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["messages.id"],
            name=op.f("fk_message_versions_event_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_versions")),
    )
    op.create_index(
        op.f("ix_message_versions_message_id"), "message_versions", ["message_id"], unique=False
    )
    with op.batch_alter_table("conversation_members") as batch:
        batch.add_column(
            sa.Column("joined_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(
            sa.Column("last_activity", sa.BigInteger(), nullable=True, comment=MS_COMMENT)
        )
    conn = op.get_bind()
    # Existing group members: their visible range starts after the last message
    # committed before they joined (public rooms are visible whole anyway).
    if dialect == "postgresql":
        join_ms = "(EXTRACT(EPOCH FROM cm.join_time) * 1000)::bigint"
    else:
        join_ms = "CAST((julianday(cm.join_time) - 2440587.5) * 86400000 AS INTEGER)"
    conn.exec_driver_sql(
        "UPDATE conversation_members SET joined_seq = COALESCE(("
        "SELECT MAX(m.seq) FROM messages m, conversation_members cm "
        "WHERE cm.id = conversation_members.id AND m.conversation_id = cm.conversation_id "
        f"AND m.created_at < {join_ms}), 0) "
        "WHERE conversation_id IN (SELECT id FROM conversations WHERE kind = 'group')"
    )
    conn.exec_driver_sql(
        "UPDATE conversations SET last_activity = ("
        "SELECT MAX(m.created_at) FROM messages m WHERE m.conversation_id = conversations.id)"
    )
    for statement in SQLITE_SEARCH if dialect == "sqlite" else PG_SEARCH:
        conn.exec_driver_sql(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    conn = op.get_bind()
    for statement in SQLITE_SEARCH_DOWN if dialect == "sqlite" else PG_SEARCH_DOWN:
        conn.exec_driver_sql(statement)
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("last_activity")
    with op.batch_alter_table("conversation_members") as batch:
        batch.drop_column("joined_seq")
    op.drop_index(op.f("ix_message_versions_message_id"), table_name="message_versions")
    op.drop_table("message_versions")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint(op.f("fk_messages_target_id_messages"), type_="foreignkey")
        batch.drop_column("target_id")
