"""The whole data model, declared once for SQLite and PostgreSQL alike.

One ``messages`` table with a per-conversation ``seq`` plus two cursors per
member (``delivered_seq``, ``read_seq``) give history, offline delivery,
unread counts and receipts without a separate offline-message or receipt
table. docs/architecture.md, "Choices that differ from the shared design",
explains the columns added for p2sp's own needs.

The migrations in ``migrations/versions`` are written by hand and must stay in
step with these classes; ``tests/storage/test_schema.py`` compares the two with
Alembic's autogenerate so a drift fails the build.

Timestamps: tables written rarely use ``DateTime(timezone=True)`` columns
named ``*_time`` / ``*_at`` with a server default of ``now``. The message hot
path uses integer milliseconds instead (``messages.created_at`` and
``messages.edited_at``), see :class:`Message`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Constraint and index names are spelled out by convention so that they are
#: the same on SQLite and PostgreSQL, and so that a later migration can drop or
#: alter them by a known name (SQLite batch mode needs names to find them).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: SQLite only auto-assigns ids to a column declared exactly ``INTEGER PRIMARY
#: KEY`` (an alias of the rowid, itself 64-bit); ``BIGINT PRIMARY KEY`` would
#: demand explicit ids. PostgreSQL gets a real ``BIGINT`` (``BIGSERIAL``).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

# Values of the enumerated string columns. They are plain strings in the
# database (no CHECK constraints) so that a new kind needs no table rebuild on
# SQLite; the service layer is the one place that validates them.
USER_STATUS_BLOCKED = 0
USER_STATUS_NORMAL = 1
CONVERSATION_STATUS_BLOCKED = 0
CONVERSATION_STATUS_NORMAL = 1
CONVERSATION_KINDS = ("direct", "group", "system")
MEMBER_ROLES = ("owner", "admin", "member")
MESSAGE_TYPES = ("text", "image", "file", "system")
PRESENCE_OFFLINE = "offline"


def direct_pair_key(user_a: int, user_b: int) -> str:
    """The ``pair_key`` of the direct chat between two users.

    Ordering the ids makes A→B and B→A the same key, so the unique constraint
    lets exactly one of two racing creators win.
    """
    low, high = sorted((user_a, user_b))
    return f"d:{low}:{high}"


def system_pair_key(user_id: int) -> str:
    """The ``pair_key`` of a user's system inbox (one per user, by the same constraint)."""
    return f"s:{user_id}"


class Base(DeclarativeBase):
    """Declarative base whose metadata carries the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """An account.

    ``username`` keeps the name as registered (for display); ``username_key``
    is its PRECIS UsernameCaseMapped form and carries the unique constraint,
    so "Alice", "alice" and fullwidth "ａｌｉｃｅ" cannot all register, and
    lookups are an index hit instead of a ``lower()`` scan that SQLite and
    PostgreSQL would collate differently. ``username_skeleton`` (unique) is
    what the name looks like (``p2sp.common.usernames.skeleton``), so a
    look-alike cannot register either; it is NULL only for accounts that
    already collided when the rule came in (migration 0002 reports them).
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), nullable=False)
    username_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    username_skeleton: Mapped[str | None] = mapped_column(String(255), unique=True, index=True)
    display_name: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[int] = mapped_column(
        Integer, nullable=False, default=USER_STATUS_NORMAL, server_default=text("1")
    )
    is_admin: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    auth_token: Mapped[str | None] = mapped_column(String(128), index=True)
    presence: Mapped[str] = mapped_column(
        String(16), nullable=False, default=PRESENCE_OFFLINE, server_default=PRESENCE_OFFLINE
    )
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    latest_ip: Mapped[str | None] = mapped_column(String(64))
    avatar_url: Mapped[str | None] = mapped_column(String(512))
    user_pubkey: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class Conversation(Base):
    """A direct chat, a group or a user's system inbox: anything with its own ``seq``.

    Groups and conversations are one table here so
    that every message, whatever it was sent to, has one conversation and one
    ordering. ``last_seq`` is the counter the sender path bumps (``UPDATE ...
    SET last_seq = last_seq + n``) to assign gap-free seqs at commit.

    ``pair_key`` names the conversations that must exist at most once
    (``d:{low}:{high}`` direct chats, ``s:{user}`` system inboxes; NULL for
    groups): an ``INSERT ... ON CONFLICT DO NOTHING`` on it makes get-or-create
    race-free on both databases.
    """

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("name", "creator_user_id", name="uq_conversations_name_creator"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str | None] = mapped_column(String(64))
    creator_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[int] = mapped_column(
        Integer, nullable=False, default=CONVERSATION_STATUS_NORMAL, server_default=text("1")
    )
    is_public: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    max_members: Mapped[int] = mapped_column(
        Integer, nullable=False, default=50, server_default=text("50")
    )
    description: Mapped[str | None] = mapped_column(Text)
    pair_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    last_seq: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )
    last_activity: Mapped[int | None] = mapped_column(
        BigInteger,
        comment="milliseconds since the Unix epoch (UTC)",
        doc="When the newest message was sent (ms); the conversation list's order.",
    )
    create_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class ConversationMember(Base):
    """Membership plus the two cursors that replace offline and receipt tables.

    ``delivered_seq`` moves only when the member's client acknowledges, so
    "messages past it" is exactly what to replay at login; ``read_seq`` drives
    unread counts and read receipts. The unique (conversation, user) index also
    serves "members of a conversation"; ``user_id`` has its own index for
    "conversations of a user" at login.
    """

    __tablename__ = "conversation_members"
    __table_args__ = (UniqueConstraint("conversation_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    role: Mapped[str] = mapped_column(
        String(16), nullable=False, default="member", server_default="member"
    )
    join_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    delivered_seq: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )
    read_seq: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )
    #: The group's ``last_seq`` when this member joined: a private group's
    #: history is visible to them from the next seq on.
    joined_seq: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )


class Message(Base):
    """Every message of every conversation, never deleted on delivery.

    (conversation_id, seq) is unique and is the order clients see; it is also
    the index that replay and history read. (sender_id, client_msg_id) is
    unique so that a client resending after a lost ``ok`` lands its message
    once (NULL client ids never conflict).

    ``created_at`` and ``edited_at`` are integer milliseconds since the Unix
    epoch (UTC), not ``DateTime``: the hot path writes and reads them without
    datetime conversion, and they go on the wire as they are.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("sender_id", "client_msg_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    client_msg_id: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(
        String(16), nullable=False, default="text", server_default="text"
    )
    content: Mapped[str] = mapped_column(Text, nullable=False)
    parent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="SET NULL")
    )
    created_at: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        comment="milliseconds since the Unix epoch (UTC)",
        doc="Milliseconds since the Unix epoch (UTC); integer so the hot path skips datetime.",
    )
    edited_at: Mapped[int | None] = mapped_column(
        BigInteger,
        comment="milliseconds since the Unix epoch (UTC)",
        doc="Milliseconds since the Unix epoch (UTC) of the last edit, NULL if never edited.",
    )
    retracted: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    notice: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The message an ``edit`` or ``retract`` event changes.
    target_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="SET NULL")
    )


class MessageVersion(Base):
    """An earlier text of an edited message (``edits`` lists them).

    ``event_id`` is the edit event that replaced this text, so a retraction
    can erase the texts of the edit events along with the versions.
    ``created_at`` is when this text was written (the message's send time
    for the original).
    """

    __tablename__ = "message_versions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True
    )
    event_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="SET NULL")
    )
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="milliseconds since the Unix epoch (UTC)"
    )


class UserFriend(Base):
    """A friendship, stored once in each direction.

    Two rows per friendship make "friends of X" a single index range on
    ``user_id_a`` and "are X and Y friends" a single unique-key probe, without
    ``OR`` queries over both columns.
    """

    __tablename__ = "user_friends"
    __table_args__ = (UniqueConstraint("user_id_a", "user_id_b"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id_a: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    user_id_b: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    create_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class UserLoginLog(Base):
    """One row per successful login, for the admin's audit view.

    ``username`` is copied rather than joined so the log still reads right
    after a rename.
    """

    __tablename__ = "user_login_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    username: Mapped[str] = mapped_column(String(32), nullable=False)
    login_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    login_ip: Mapped[str | None] = mapped_column(String(64))


class Attachment(Base):
    """File metadata of an image or file message.

    The bytes live at ``file_path`` outside the database; the row goes with its
    message (CASCADE).
    """

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True
    )
    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    file_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    mime_type: Mapped[str | None] = mapped_column(String(127))
    file_path: Mapped[str] = mapped_column(String(1024), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class ServerInfo(Base):
    """A cluster node, keyed by its configured ``SERVER_ID``.

    Nodes register themselves and refresh ``last_heartbeat``; the columns are
    nullable because a node may not know, say, its public address.
    """

    __tablename__ = "server_info_table"

    server_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    server_name: Mapped[str | None] = mapped_column(String(64))
    server_pubip: Mapped[str | None] = mapped_column(String(64))
    server_port: Mapped[int | None] = mapped_column(Integer)
    server_privip: Mapped[str | None] = mapped_column(String(64))
    server_pubkey: Mapped[str | None] = mapped_column(Text)
    server_presharedkey: Mapped[str | None] = mapped_column(Text)
    last_heartbeat: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ChatSession(Base):
    """An active period of a conversation (from "active session" to "end session").

    Kept apart from ``conversations`` because a conversation can have many
    sessions over time; ``ended_at`` is NULL while ``is_active``.
    """

    __tablename__ = "chat_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_active: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=true()
    )


__all__ = [
    "CONVERSATION_KINDS",
    "CONVERSATION_STATUS_BLOCKED",
    "CONVERSATION_STATUS_NORMAL",
    "MEMBER_ROLES",
    "MESSAGE_TYPES",
    "NAMING_CONVENTION",
    "PRESENCE_OFFLINE",
    "USER_STATUS_BLOCKED",
    "USER_STATUS_NORMAL",
    "Attachment",
    "Base",
    "BigIntPK",
    "ChatSession",
    "Conversation",
    "ConversationMember",
    "Message",
    "ServerInfo",
    "User",
    "UserFriend",
    "UserLoginLog",
    "direct_pair_key",
    "system_pair_key",
]
