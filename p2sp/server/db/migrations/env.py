"""Alembic environment for p2sp.

Two ways in:

* programmatically (``p2sp.server.db.migrate``): the server passes its own
  open connection in ``config.attributes["connection"]``; nothing here touches
  logging or starts an event loop, since the server already runs one;
* the ``alembic`` command (``alembic.ini`` at the repository root): the URL
  comes from ``P2SP_DATABASE_URL`` (or its alias ``DATABASE_URL``), the engine
  is built exactly as the server builds it, and logging is configured from the
  ini file.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from p2sp.server.db.engine import Database, normalize_url
from p2sp.server.db.migrate import migration_connection
from p2sp.server.db.models import Base

#: The server's own default (``p2sp.server.config``), so that the CLI without
#: any setting looks at the same database file the server would use.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///p2sp.db"

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    return (
        os.environ.get("P2SP_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
        or DEFAULT_DATABASE_URL
    )


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the DDL instead of running it."""
    url = normalize_url(_database_url())
    context.configure(
        url=url.render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    database = Database.from_url(_database_url())
    try:
        async with migration_connection(database.writer) as conn:
            await conn.run_sync(_run)
    finally:
        await database.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_with_own_engine())


if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
