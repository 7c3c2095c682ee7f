"""Initial schema: the whole data model of ``p2sp/server/db/models.py``.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00+00:00

Written by hand rather than importing the models, so that later edits of
``models.py`` cannot silently change what this revision creates;
``tests/storage/test_schema.py`` checks that the two agree. Constraint names
follow ``models.NAMING_CONVENTION`` (``op.f`` marks a name as final).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MS_COMMENT = "milliseconds since the Unix epoch (UTC)"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("username_key", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("status", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("auth_token", sa.String(length=128), nullable=True),
        sa.Column("presence", sa.String(length=16), server_default="offline", nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latest_ip", sa.String(length=64), nullable=True),
        sa.Column("avatar_url", sa.String(length=512), nullable=True),
        sa.Column("user_pubkey", sa.Text(), nullable=True),
        sa.Column(
            "create_time", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username_key", name=op.f("uq_users_username_key")),
    )
    op.create_index(op.f("ix_users_auth_token"), "users", ["auth_token"])

    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=True),
        sa.Column("creator_user_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("is_public", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("max_members", sa.Integer(), server_default=sa.text("50"), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("pair_key", sa.String(length=64), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "create_time", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["creator_user_id"],
            ["users.id"],
            name=op.f("fk_conversations_creator_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("name", "creator_user_id", name="uq_conversations_name_creator"),
        sa.UniqueConstraint("pair_key", name=op.f("uq_conversations_pair_key")),
    )

    op.create_table(
        "conversation_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), server_default="member", nullable=False),
        sa.Column(
            "join_time", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("delivered_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("read_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_members_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_conversation_members_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_members")),
        sa.UniqueConstraint(
            "conversation_id",
            "user_id",
            name=op.f("uq_conversation_members_conversation_id_user_id"),
        ),
    )
    op.create_index(op.f("ix_conversation_members_user_id"), "conversation_members", ["user_id"])

    op.create_table(
        "messages",
        # INTEGER on SQLite: only "INTEGER PRIMARY KEY" auto-assigns ids there.
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=True),
        sa.Column("client_msg_id", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=16), server_default="text", nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False, comment=MS_COMMENT),
        sa.Column("edited_at", sa.BigInteger(), nullable=True, comment=MS_COMMENT),
        sa.Column("retracted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("notice", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["messages.id"],
            name=op.f("fk_messages_parent_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["users.id"], name=op.f("fk_messages_sender_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("conversation_id", "seq", name=op.f("uq_messages_conversation_id_seq")),
        sa.UniqueConstraint(
            "sender_id", "client_msg_id", name=op.f("uq_messages_sender_id_client_msg_id")
        ),
    )

    op.create_table(
        "user_friends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id_a", sa.Integer(), nullable=False),
        sa.Column("user_id_b", sa.Integer(), nullable=False),
        sa.Column(
            "create_time", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id_a"], ["users.id"], name=op.f("fk_user_friends_user_id_a_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id_b"], ["users.id"], name=op.f("fk_user_friends_user_id_b_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_friends")),
        sa.UniqueConstraint(
            "user_id_a", "user_id_b", name=op.f("uq_user_friends_user_id_a_user_id_b")
        ),
    )

    op.create_table(
        "user_login_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column(
            "login_time", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("login_ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_login_log_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_login_log")),
    )
    op.create_index(op.f("ix_user_login_log_user_id"), "user_login_log", ["user_id"])

    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("mime_type", sa.String(length=127), nullable=True),
        sa.Column("file_path", sa.String(length=1024), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_attachments_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    op.create_index(op.f("ix_attachments_message_id"), "attachments", ["message_id"])

    op.create_table(
        "server_info_table",
        sa.Column("server_id", sa.String(length=64), nullable=False),
        sa.Column("server_name", sa.String(length=64), nullable=True),
        sa.Column("server_pubip", sa.String(length=64), nullable=True),
        sa.Column("server_port", sa.Integer(), nullable=True),
        sa.Column("server_privip", sa.String(length=64), nullable=True),
        sa.Column("server_pubkey", sa.Text(), nullable=True),
        sa.Column("server_presharedkey", sa.Text(), nullable=True),
        sa.Column("last_heartbeat", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("server_id", name=op.f("pk_server_info_table")),
    )

    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_chat_sessions_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sessions")),
    )
    op.create_index(op.f("ix_chat_sessions_conversation_id"), "chat_sessions", ["conversation_id"])


def downgrade() -> None:
    # Children before parents, so no foreign key points at a dropped table.
    op.drop_index(op.f("ix_chat_sessions_conversation_id"), table_name="chat_sessions")
    op.drop_table("chat_sessions")
    op.drop_table("server_info_table")
    op.drop_index(op.f("ix_attachments_message_id"), table_name="attachments")
    op.drop_table("attachments")
    op.drop_index(op.f("ix_user_login_log_user_id"), table_name="user_login_log")
    op.drop_table("user_login_log")
    op.drop_table("user_friends")
    op.drop_table("messages")
    op.drop_index(op.f("ix_conversation_members_user_id"), table_name="conversation_members")
    op.drop_table("conversation_members")
    op.drop_table("conversations")
    op.drop_index(op.f("ix_users_auth_token"), table_name="users")
    op.drop_table("users")
