"""Apply Alembic migrations from inside the running server (and from tests).

The server migrates at startup, already inside its event loop and holding
async engines, so Alembic is driven in code: no ``alembic.ini`` lookup, no
``asyncio.run`` of its own, no logging reconfiguration. The connection is
handed to ``migrations/env.py`` through ``Config.attributes["connection"]``.
``alembic.ini`` at the repository root is only for developers running the
``alembic`` command (``revision --autogenerate``), and goes through
:func:`migration_connection` too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if TYPE_CHECKING:
    from p2sp.server.db.engine import Database

#: The package's migration scripts, found next to this file so that an
#: installed wheel migrates without the source tree.
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"

#: Key of the PostgreSQL advisory lock that serialises migrations when several
#: server processes start at once (ASCII "p2sp").
PG_MIGRATION_LOCK_KEY: Final = 0x70327370


class MigrationError(RuntimeError):
    """A migration left the database inconsistent and was rolled back."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code, pointing at the package's migrations."""
    cfg = Config()
    # ConfigParser interpolates '%': escape it in case the path contains one.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest revision the package ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@asynccontextmanager
async def migration_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in one transaction, made safe for running migrations on it.

    SQLite: foreign-key enforcement is switched off for the duration (it can
    only be changed outside a transaction), because batch migrations rebuild a
    table by DROP + RENAME and a DROP with enforcement on would run ON DELETE
    CASCADE into the child tables - e.g. rebuilding ``conversations`` would
    delete every message. ``PRAGMA foreign_key_check`` then verifies the result
    before commit. The writer's ``BEGIN IMMEDIATE`` already keeps two
    processes from migrating at once.

    PostgreSQL: DDL is transactional, so the whole upgrade commits or none of
    it does; an advisory lock makes a second process starting at the same
    moment wait and then find the schema already current.
    """
    async with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            await conn.run_sync(_sqlite_pragma_outside_transaction, "PRAGMA foreign_keys=OFF")
        try:
            async with conn.begin():
                if conn.dialect.name == "postgresql" and not await _is_cockroachdb(conn):
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY}
                    )
                yield conn
                if sqlite:
                    violations = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if violations:
                        raise MigrationError(
                            f"migration broke {len(violations)} foreign key(s), rolled back: "
                            f"{violations[:5]}"
                        )
        finally:
            if sqlite:
                await conn.run_sync(_sqlite_pragma_outside_transaction, "PRAGMA foreign_keys=ON")


def _sqlite_pragma_outside_transaction(sync_conn: Connection, sql: str) -> None:
    """Run a pragma on the raw connection, which SQLAlchemy would otherwise wrap in BEGIN."""
    cursor = sync_conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


async def _is_cockroachdb(conn: AsyncConnection) -> bool:
    """CockroachDB speaks the PostgreSQL protocol but has no advisory locks."""
    version = (await conn.exec_driver_sql("SELECT version()")).scalar_one()
    return "cockroach" in str(version).lower()


async def upgrade(database: Database, revision: str = "head") -> None:
    """Migrate ``database`` up to ``revision`` (the newest by default)."""

    def _upgrade(sync_conn: Connection) -> None:
        command.upgrade(alembic_config(sync_conn), revision)

    async with migration_connection(database.writer) as conn:
        await conn.run_sync(_upgrade)


async def downgrade(database: Database, revision: str) -> None:
    """Migrate ``database`` down to ``revision`` (``"base"`` removes every table)."""

    def _downgrade(sync_conn: Connection) -> None:
        command.downgrade(alembic_config(sync_conn), revision)

    async with migration_connection(database.writer) as conn:
        await conn.run_sync(_downgrade)


async def current_revision(database: Database) -> str | None:
    """The revision the database is at, or None before the first migration."""

    def _current(sync_conn: Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with database.writer.connect() as conn:
        return await conn.run_sync(_current)


__all__ = [
    "MIGRATIONS_DIR",
    "PG_MIGRATION_LOCK_KEY",
    "MigrationError",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "migration_connection",
    "upgrade",
]
