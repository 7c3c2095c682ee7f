"""Settings precedence: flags > environment > .env / wg.env > defaults, and the seeds' names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from p2sp.server.config import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("P2SP_") or key in {
            "DATABASE_URL",
            "SERVER_ID",
            "HOST_IP",
            "PORT_CLIENT",
            "PORT_SERVER",
            "REDIS_URL",
        }:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    s = load_settings()
    assert s.port == 18888
    assert s.database_url == "sqlite+aiosqlite:///p2sp.db"
    assert s.dm_policy == "friends"
    assert s.sqlite_synchronous == "NORMAL"


def test_file_then_env_then_flag(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / ".env").write_text("P2SP_PORT=1111\nP2SP_DM_POLICY=anyone\n")
    assert load_settings().port == 1111
    monkeypatch.setenv("P2SP_PORT", "2222")
    assert load_settings().port == 2222
    assert load_settings(port=3333).port == 3333
    assert load_settings(port=None).port == 2222  # an unset flag does not override
    assert load_settings().dm_policy == "anyone"


def test_seed_names(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "wg.env").write_text(
        "SERVER_ID=serverA\nHOST_IP=127.0.0.1\nPORT_CLIENT=65432\nPORT_SERVER=65000\n"
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    s = load_settings()
    assert (s.server_id, s.host, s.port, s.server_port) == ("serverA", "127.0.0.1", 65432, 65000)
    assert s.database_url == "postgresql://u@h/db"
    monkeypatch.setenv("P2SP_DATABASE_URL", "sqlite+aiosqlite:///x.db")
    assert load_settings().database_url == "sqlite+aiosqlite:///x.db"  # p2sp's own name wins


def test_config_file(tmp_path) -> None:
    cfg = tmp_path / "prod.env"
    cfg.write_text("P2SP_PORT=4444\n")
    assert load_settings(cfg).port == 4444
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.env")


@pytest.mark.parametrize(
    ("key", "value"),
    [("port", 70000), ("scrypt_n", 1000), ("dm_policy", "everyone"), ("log_level", "LOUD")],
)
def test_bad_values_are_refused(key: str, value: object) -> None:
    with pytest.raises(ValidationError):
        load_settings(**{key: value})
