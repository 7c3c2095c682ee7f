"""Migration 0002: existing accounts get PRECIS keys and skeletons; collisions are
reported, never deleted. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from p2sp.common.usernames import skeleton
from p2sp.server.db import migrate
from p2sp.server.db.engine import Database

users = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("username", sa.String),
    sa.column("username_key", sa.String),
    sa.column("username_skeleton", sa.String),
    sa.column("password_hash", sa.String),
)


@pytest.fixture
async def at_0001(database_url: str) -> AsyncIterator[Database]:
    db = Database.from_url(database_url)
    await migrate.upgrade(db, "0001")
    try:
        yield db
    finally:
        await db.dispose()


async def test_existing_names_are_normalised_and_collisions_reported(
    at_0001: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # Under the old rule (casefold keys) all of these could register side by side.
    names = ["alice", "ａｌｉｃｅ", "аlice", "Bob", "张三"]
    async with at_0001.writer.begin() as conn:
        for name in names:
            await conn.execute(
                sa.insert(users).values(
                    username=name, username_key=name.casefold(), password_hash="x"
                )
            )
    with caplog.at_level(logging.WARNING, logger="p2sp.server.db.migrations"):
        await migrate.upgrade(at_0001)
    async with at_0001.reader.connect() as conn:
        rows = {
            r.username: (r.username_key, r.username_skeleton)
            for r in await conn.execute(sa.select(users))
        }
    assert set(rows) == set(names)  # nothing deleted, nothing renamed
    assert rows["alice"] == ("alice", skeleton("alice"))
    assert rows["Bob"] == ("bob", skeleton("Bob"))
    assert rows["张三"] == ("张三", "张三")
    # The fullwidth twin keeps its old key; the Cyrillic look-alike keeps its
    # account; neither holds a skeleton, so look-alikes stay refused.
    assert rows["ａｌｉｃｅ"] == ("ａｌｉｃｅ", None)
    assert rows["аlice"][1] is None
    text = caplog.text
    assert "'ａｌｉｃｅ'" in text and "compares equal to 'alice'" in text
    assert "'аlice'" in text


async def test_skeletons_are_unique_after_the_migration(at_0001: Database) -> None:
    await migrate.upgrade(at_0001)
    async with at_0001.writer.begin() as conn:
        await conn.execute(
            sa.insert(users).values(
                username="bill",
                username_key="bill",
                username_skeleton=skeleton("bill"),
                password_hash="x",
            )
        )
    with pytest.raises(IntegrityError):
        async with at_0001.writer.begin() as conn:
            await conn.execute(
                sa.insert(users).values(
                    username="biII",
                    username_key="biii",
                    username_skeleton=skeleton("biII"),
                    password_hash="x",
                )
            )


async def test_downgrade_restores_casefold_keys(at_0001: Database) -> None:
    await migrate.upgrade(at_0001)
    await migrate.downgrade(at_0001, "0001")
    assert await migrate.current_revision(at_0001) == "0001"
