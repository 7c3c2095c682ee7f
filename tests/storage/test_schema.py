"""The schema foundation: migrations, models and engine settings agree.

Every test that takes ``database_url`` runs on SQLite and on PostgreSQL (see
``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from p2sp.server.db import migrate
from p2sp.server.db.engine import Database, DatabaseUnavailable, normalize_url
from p2sp.server.db.models import (
    Base,
    Conversation,
    Message,
    User,
    direct_pair_key,
    system_pair_key,
)

ALL_TABLES = {
    "users",
    "conversations",
    "conversation_members",
    "messages",
    "user_friends",
    "user_login_log",
    "attachments",
    "server_info_table",
    "chat_sessions",
    "message_versions",
}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def migrated(db: Database) -> Database:
    await db.upgrade()
    return db


async def table_names(engine: AsyncEngine) -> set[str]:
    """Tables of the schema (the SQLite search index's FTS5 tables left out)."""
    async with engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    return {n for n in names if not n.startswith("messages_fts")}


async def scalar(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.exec_driver_sql(sql)).scalar_one()


async def insert(engine: AsyncEngine, table: sa.Table, **values: Any) -> int:
    """Insert one row in its own transaction and return its primary key."""
    async with engine.begin() as conn:
        result = await conn.execute(sa.insert(table).values(**values))
        return int(result.inserted_primary_key[0])


def user_row(name: str) -> dict[str, Any]:
    return {"username": name, "username_key": name.casefold(), "password_hash": "x"}


# 1. upgrade ------------------------------------------------------------------


async def test_upgrade_creates_every_table(db: Database) -> None:
    assert await table_names(db.writer) == set()
    assert await migrate.current_revision(db) is None

    await db.upgrade()

    assert set(Base.metadata.tables) == ALL_TABLES
    assert await table_names(db.writer) == ALL_TABLES | {"alembic_version"}
    assert await migrate.current_revision(db) == migrate.head_revision() == "0003"


async def test_upgrade_twice_is_a_no_op(migrated: Database) -> None:
    user_id = await insert(migrated.writer, User.__table__, **user_row("alice"))

    await migrated.upgrade()

    assert await table_names(migrated.writer) == ALL_TABLES | {"alembic_version"}
    assert await migrate.current_revision(migrated) == "0003"
    assert await scalar(migrated.reader, "SELECT username FROM users") == "alice"
    assert user_id == 1


async def test_concurrent_upgrades_serialise(database_url: str) -> None:
    """Several server processes may start together on one database."""
    first, second = Database.from_url(database_url), Database.from_url(database_url)
    try:
        await asyncio.gather(first.upgrade(), second.upgrade())
        assert await migrate.current_revision(first) == "0003"
        assert await table_names(second.writer) == ALL_TABLES | {"alembic_version"}
    finally:
        await first.dispose()
        await second.dispose()


# 2. migrations == models -------------------------------------------------------


#: The search index is made by migration 0003 outside the models (an FTS5
#: table and its shadow tables on SQLite, a pg_trgm GIN index on PostgreSQL).
SEARCH_OBJECTS = ("messages_fts", "ix_messages_content_trgm")


def _not_search(name: str | None, type_: str, parent_names: Any) -> bool:
    return not (name or "").startswith(SEARCH_OBJECTS)


async def test_migrations_match_models(migrated: Database) -> None:
    def diff(sync_conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            sync_conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_name": _not_search,
            },
        )
        return list(compare_metadata(context, Base.metadata))

    async with migrated.writer.connect() as conn:
        assert await conn.run_sync(diff) == []


# 3. constraints ---------------------------------------------------------------


async def test_username_key_is_unique_whatever_the_case(migrated: Database) -> None:
    users = User.__table__
    await insert(migrated.writer, users, **user_row("Alice"))
    with pytest.raises(IntegrityError):
        await insert(migrated.writer, users, **user_row("alice"))
    with pytest.raises(IntegrityError):
        await insert(migrated.writer, users, **user_row("ALICE"))


async def test_message_seq_and_client_msg_id_are_unique(migrated: Database) -> None:
    w = migrated.writer
    alice = await insert(w, User.__table__, **user_row("alice"))
    bob = await insert(w, User.__table__, **user_row("bob"))
    conv = await insert(w, Conversation.__table__, kind="direct", pair_key=direct_pair_key(1, 2))
    messages = Message.__table__

    def msg(seq: int, sender: int | None, client_msg_id: str | None) -> dict[str, Any]:
        return {
            "conversation_id": conv,
            "seq": seq,
            "sender_id": sender,
            "client_msg_id": client_msg_id,
            "content": "hi",
            "created_at": 1_700_000_000_000 + seq,
        }

    first = await insert(w, messages, **msg(1, alice, "c-1"))
    assert first >= 1  # the big-int primary key auto-assigns on both databases

    with pytest.raises(IntegrityError):  # same (conversation_id, seq)
        await insert(w, messages, **msg(1, bob, "c-9"))
    with pytest.raises(IntegrityError):  # same (sender_id, client_msg_id): a resend
        await insert(w, messages, **msg(2, alice, "c-1"))

    # Another sender may reuse the client id; NULL ids and NULL senders never clash.
    await insert(w, messages, **msg(2, bob, "c-1"))
    await insert(w, messages, **msg(3, alice, None))
    await insert(w, messages, **msg(4, alice, None))
    await insert(w, messages, **msg(5, None, None))
    await insert(w, messages, **msg(6, None, None))
    assert await scalar(migrated.reader, "SELECT count(*) FROM messages") == 6
    assert await scalar(migrated.reader, "SELECT max(created_at) FROM messages") == (
        1_700_000_000_006
    )


async def test_pair_key_is_unique(migrated: Database) -> None:
    conversations = Conversation.__table__
    await insert(migrated.writer, conversations, kind="direct", pair_key=direct_pair_key(7, 3))
    with pytest.raises(IntegrityError):
        await insert(migrated.writer, conversations, kind="direct", pair_key=direct_pair_key(3, 7))

    await insert(migrated.writer, conversations, kind="system", pair_key=system_pair_key(3))
    with pytest.raises(IntegrityError):
        await insert(migrated.writer, conversations, kind="system", pair_key=system_pair_key(3))

    # Groups have no pair_key; any number of NULLs coexist.
    await insert(migrated.writer, conversations, kind="group", name="a")
    await insert(migrated.writer, conversations, kind="group", name="b")


async def test_group_name_is_unique_per_creator(migrated: Database) -> None:
    owner = await insert(migrated.writer, User.__table__, **user_row("owner"))
    other = await insert(migrated.writer, User.__table__, **user_row("other"))
    conversations = Conversation.__table__
    await insert(migrated.writer, conversations, kind="group", name="team", creator_user_id=owner)
    await insert(migrated.writer, conversations, kind="group", name="team", creator_user_id=other)
    with pytest.raises(IntegrityError):
        await insert(
            migrated.writer, conversations, kind="group", name="team", creator_user_id=owner
        )


async def test_foreign_keys_are_enforced(migrated: Database) -> None:
    with pytest.raises(IntegrityError):
        await insert(
            migrated.writer,
            Message.__table__,
            conversation_id=12345,
            seq=1,
            content="orphan",
            created_at=0,
        )


async def test_deleting_a_conversation_cascades_to_its_messages(migrated: Database) -> None:
    w = migrated.writer
    conv = await insert(w, Conversation.__table__, kind="group", name="g")
    await insert(w, Message.__table__, conversation_id=conv, seq=1, content="x", created_at=0)
    async with w.begin() as conn:
        await conn.execute(sa.delete(Conversation.__table__))
    assert await scalar(migrated.reader, "SELECT count(*) FROM messages") == 0


async def test_server_defaults_fill_omitted_columns(migrated: Database) -> None:
    """The hot path inserts with Core, so the defaults must live in the database."""
    user_id = await insert(migrated.writer, User.__table__, **user_row("dee"))
    async with migrated.reader.connect() as conn:
        row = (
            await conn.execute(sa.select(User.__table__).where(User.__table__.c.id == user_id))
        ).one()
    assert (row.status, row.is_admin, row.presence) == (1, False, "offline")
    assert row.create_time is not None


# 4. SQLite settings -------------------------------------------------------------


async def test_sqlite_defaults_to_wal_and_synchronous_normal(sqlite_url: str) -> None:
    database = Database.from_url(sqlite_url)
    try:
        for engine in (database.writer, database.reader):
            assert await scalar(engine, "PRAGMA journal_mode") == "wal"
            assert await scalar(engine, "PRAGMA synchronous") == 1
            assert await scalar(engine, "PRAGMA foreign_keys") == 1
            assert await scalar(engine, "PRAGMA busy_timeout") == 5000
    finally:
        await database.dispose()


async def test_sqlite_synchronous_full_on_request(sqlite_url: str) -> None:
    database = Database.from_url(sqlite_url, sqlite_synchronous="FULL")
    try:
        assert await scalar(database.writer, "PRAGMA synchronous") == 2
        assert await scalar(database.reader, "PRAGMA synchronous") == 2
    finally:
        await database.dispose()


def test_sqlite_synchronous_is_validated(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        Database.from_url(sqlite_url, sqlite_synchronous="OFF")


async def test_sqlite_has_one_writer_connection_and_separate_readers(sqlite_url: str) -> None:
    database = Database.from_url(sqlite_url)
    try:
        assert database.dialect == "sqlite"
        assert database.reader is not database.writer
        pool: Any = database.writer.pool
        assert pool.size() == 1
        assert pool._max_overflow == 0  # no public accessor for it
        async with database.writer.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
            assert pool.checkedout() == 1
        assert database.reader.pool.size() > 1  # type: ignore[attr-defined]
    finally:
        await database.dispose()


async def test_sqlite_readers_cannot_write(sqlite_url: str) -> None:
    database = Database.from_url(sqlite_url)
    try:
        await database.upgrade()
        with pytest.raises(OperationalError, match="readonly"):
            await insert(database.reader, User.__table__, **user_row("sneaky"))
    finally:
        await database.dispose()


async def test_sqlite_foreign_keys_back_on_after_migrating(sqlite_url: str) -> None:
    """Migrations switch enforcement off for table rebuilds; it must come back."""
    database = Database.from_url(sqlite_url)
    try:
        await database.upgrade()
        await migrate.downgrade(database, "base")
        await database.upgrade()
        assert await scalar(database.writer, "PRAGMA foreign_keys") == 1
    finally:
        await database.dispose()


async def test_sqlite_creates_missing_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "chat.db"
    database = Database.from_url(f"sqlite+aiosqlite:///{path}")
    try:
        await database.check()
        assert path.exists()
    finally:
        await database.dispose()


async def test_in_memory_sqlite_shares_one_engine() -> None:
    database = Database.from_url("sqlite+aiosqlite://")
    try:
        assert database.reader is database.writer
        assert isinstance(database.writer.pool, StaticPool)
        await database.upgrade()
        await insert(database.writer, User.__table__, **user_row("mem"))
        assert await scalar(database.reader, "SELECT username FROM users") == "mem"
    finally:
        await database.dispose()


# 5. downgrade ---------------------------------------------------------------------


async def test_downgrade_to_base_removes_every_table(migrated: Database) -> None:
    await insert(migrated.writer, User.__table__, **user_row("gone"))

    await migrate.downgrade(migrated, "base")

    assert await table_names(migrated.writer) <= {"alembic_version"}
    assert await migrate.current_revision(migrated) is None

    await migrated.upgrade()  # and the way back up still works
    assert await table_names(migrated.writer) == ALL_TABLES | {"alembic_version"}


# 6. URLs and the startup check -------------------------------------------------------


@pytest.mark.parametrize(
    "pasted",
    [
        "postgres://chat:pw@db.example:5432/chat",
        "postgresql://chat:pw@db.example:5432/chat",
        "postgresql+asyncpg://chat:pw@db.example:5432/chat",
        "cockroachdb://chat:pw@db.example:5432/chat",
    ],
)
async def test_postgres_urls_are_rewritten_for_asyncpg(pasted: str) -> None:
    database = Database.from_url(pasted)
    try:
        assert database.url == "postgresql+asyncpg://chat:pw@db.example:5432/chat"
        assert database.safe_url == "postgresql+asyncpg://chat:***@db.example:5432/chat"
        assert database.dialect == "postgresql"
        assert database.reader is database.writer
    finally:
        await database.dispose()


def test_sslmode_becomes_asyncpgs_ssl() -> None:
    url = normalize_url("postgres://u@h/db?sslmode=require")
    assert url.drivername == "postgresql+asyncpg"
    assert dict(url.query) == {"ssl": "require"}


def test_bare_sqlite_url_gets_the_async_driver() -> None:
    assert normalize_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"


def test_unknown_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        Database.from_url("mysql://root:pw@localhost/chat")


async def test_check_passes_on_a_reachable_database(db: Database) -> None:
    await db.check()


async def test_check_names_the_host_but_not_the_password() -> None:
    database = Database.from_url("postgres://chat:hunter2-secret@127.0.0.1:1/chat")
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await database.check()
    finally:
        await database.dispose()
    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "hunter2-secret" not in message
    assert "***" in message


async def test_check_on_an_unopenable_sqlite_file(tmp_path: Path) -> None:
    (tmp_path / "a-directory.db").mkdir()
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'a-directory.db'}")
    try:
        with pytest.raises(DatabaseUnavailable, match=r"a-directory\.db"):
            await database.check()
    finally:
        await database.dispose()


async def test_sqlite_table_rebuild_in_a_migration_keeps_child_rows(sqlite_url: str) -> None:
    """Batch mode rebuilds a table with DROP + RENAME; that must not cascade.

    With foreign keys enforced, dropping ``conversations`` would delete every
    message through ON DELETE CASCADE; migration_connection() prevents it.
    """
    from alembic.operations import Operations

    database = Database.from_url(sqlite_url)
    try:
        await database.upgrade()
        conv = await insert(database.writer, Conversation.__table__, kind="group", name="g")
        await insert(
            database.writer,
            Message.__table__,
            conversation_id=conv,
            seq=1,
            content="keep me",
            created_at=0,
        )

        def rebuild(sync_conn: Connection) -> None:
            ops = Operations(MigrationContext.configure(sync_conn))
            with ops.batch_alter_table("conversations", recreate="always") as batch:
                batch.add_column(sa.Column("topic", sa.String(64)))

        async with migrate.migration_connection(database.writer) as conn:
            await conn.run_sync(rebuild)

        assert await scalar(database.reader, "SELECT content FROM messages") == "keep me"
        assert await scalar(database.writer, "PRAGMA foreign_keys") == 1
    finally:
        await database.dispose()


def test_sqlite_directory_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a directory")
    with pytest.raises(DatabaseUnavailable, match="cannot create directory"):
        Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'plain-file' / 'chat.db'}")
