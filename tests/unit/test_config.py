"""Settings precedence: flags > environment > .env / wg.env > defaults, and the alias names."""

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
    (tmp_path / "wg.env").write_text("HOST_IP=127.0.0.1\nPORT_CLIENT=65432\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    s = load_settings()
    assert (s.host, s.port) == ("127.0.0.1", 65432)
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


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("P2SP_REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("PORT_SERVER", "65000"),
        ("SERVER_ID", "serverA"),
    ],
)
def test_cluster_settings_are_refused_until_the_cluster_exists(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A setting that would do nothing is refused, so no one believes it works."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match="no cluster"):
        load_settings()


def test_cli_refuses_a_cluster_setting_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from p2sp.server.cli import main

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert main(["--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "no cluster" in err and "REDIS_URL" in err
