"""Fixtures shared by every test layer.

``database_url`` runs a test on SQLite always and on PostgreSQL when
``P2SP_TEST_DATABASE_URL`` names a server (any database on it; each test gets
a fresh database of its own, dropped afterwards). Under CI (``CI=true``) a
missing or unreachable PostgreSQL is a failure, not a skip: CI must cover both.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ENV = "P2SP_TEST_DATABASE_URL"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _asyncpg_dsn(url: str) -> str:
    """SQLAlchemy URL -> a DSN asyncpg itself accepts."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


def _pg_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    """The PostgreSQL server to make test databases on, or a skip."""
    url = os.environ.get(PG_ENV)
    if not url:
        _pg_unavailable(f"set {PG_ENV}=postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    assert url is not None
    try:
        asyncio.run(_pg_admin(url, "SELECT 1"))
    except Exception as exc:
        _pg_unavailable(f"cannot reach {url}: {exc}")
    return url


@pytest.fixture
def fresh_pg_url(pg_base_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test."""
    name = f"p2sp_test_{uuid.uuid4().hex[:16]}"
    asyncio.run(_pg_admin(pg_base_url, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(pg_base_url, name)
    finally:
        asyncio.run(_pg_admin(pg_base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'p2sp.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each supported kind."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("fresh_pg_url")
