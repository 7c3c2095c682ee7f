"""Fixtures shared by every test layer.

``database_url`` runs a test on SQLite always and on PostgreSQL when
``P2SP_TEST_DATABASE_URL`` names a server (any database on it; each test gets
a fresh database of its own, dropped afterwards). Under CI (``CI=true``) a
missing or unreachable PostgreSQL is a failure, not a skip: CI must cover both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2sp import launcher

PG_ENV = "P2SP_TEST_DATABASE_URL"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _pg_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    """The PostgreSQL server to make test databases on, or a skip."""
    url = os.environ.get(PG_ENV)
    if not url:
        _pg_unavailable(f"set {PG_ENV}=postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    assert url is not None
    try:
        launcher.check_postgres(url)
    except Exception as exc:
        _pg_unavailable(f"cannot reach {url}: {exc}")
    return url


@pytest.fixture
def fresh_pg_url(pg_base_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test (``p2sp.launcher``)."""
    with launcher.temporary_database(postgres_url=pg_base_url) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return launcher.sqlite_url(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each supported kind."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("fresh_pg_url")
