"""Server settings: flags > environment > ``.env`` / ``wg.env`` files > defaults.

pydantic-settings does the layering: command-line flags are passed as init
arguments (the highest source), then ``P2SP_*`` variables, then the files.
The original P2SP servers' variable names (``DATABASE_URL``, ``HOST_IP``,
``PORT_CLIENT``) are accepted as aliases so their deployment files work
unchanged; the ``P2SP_`` name wins when both are set (docs/operations.md,
"Settings"). Their cluster names (``SERVER_ID``, ``PORT_SERVER``,
``REDIS_URL``) are refused until the cluster exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from p2sp.common.message import DEFAULT_JSON_DEPTH

DEFAULT_PORT = 18888
ENV_FILES = (".env", "wg.env")
#: Settings of features not built yet -> the variables that set them.
NOT_YET = {
    "server_id": "P2SP_SERVER_ID / SERVER_ID",
    "redis_url": "P2SP_REDIS_URL / REDIS_URL",
    "server_port": "P2SP_SERVER_PORT / PORT_SERVER",
}


def _alias(name: str, *seed_names: str) -> AliasChoices:
    return AliasChoices(f"P2SP_{name.upper()}", name, *seed_names)


class Settings(BaseSettings):
    """Everything an operator can set. Each field's name is its ``P2SP_`` variable."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILES,
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    # -- network
    host: str = Field("0.0.0.0", validation_alias=_alias("host", "HOST_IP"))
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, validation_alias=_alias("port", "PORT_CLIENT"))
    max_frame: int = Field(
        1024 * 1024, ge=1024, le=64 * 1024 * 1024, validation_alias=_alias("max_frame")
    )
    max_json_depth: int = Field(
        DEFAULT_JSON_DEPTH,
        ge=4,
        le=256,
        validation_alias=_alias("max_json_depth"),
        description="levels of arrays/objects a request may nest, its envelope included",
    )
    idle_timeout: float = Field(300.0, gt=0, validation_alias=_alias("idle_timeout"))
    send_buffer_limit: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        validation_alias=_alias("send_buffer_limit"),
        description="unsent bytes a connection may hold before it is kicked as a slow consumer",
    )
    shutdown_grace: float = Field(5.0, ge=0, validation_alias=_alias("shutdown_grace"))
    tls_cert: Path | None = Field(None, validation_alias=_alias("tls_cert"))
    tls_key: Path | None = Field(None, validation_alias=_alias("tls_key"))

    # -- storage
    database_url: str = Field(
        "sqlite+aiosqlite:///p2sp.db", validation_alias=_alias("database_url", "DATABASE_URL")
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL", validation_alias=_alias("sqlite_synchronous")
    )

    # -- accounts
    scrypt_n: int = Field(
        2**14, ge=2, validation_alias=_alias("scrypt_n"), description="scrypt CPU/memory cost"
    )
    scrypt_r: int = Field(8, ge=1, validation_alias=_alias("scrypt_r"))
    scrypt_p: int = Field(1, ge=1, validation_alias=_alias("scrypt_p"))
    login_max_failures: int = Field(
        5,
        ge=1,
        validation_alias=_alias("login_max_failures"),
        description="failed logins per username within login_failure_window before rate_limited",
    )
    login_max_failures_per_ip: int = Field(
        20, ge=1, validation_alias=_alias("login_max_failures_per_ip")
    )
    login_failure_window: float = Field(
        300.0, gt=0, validation_alias=_alias("login_failure_window")
    )
    reg_max_per_ip: int = Field(
        20,
        ge=1,
        validation_alias=_alias("reg_max_per_ip"),
        description="registration attempts one address may make within reg_window",
    )
    reg_window: float = Field(600.0, gt=0, validation_alias=_alias("reg_window"))
    hash_workers: int = Field(
        0,
        ge=0,
        le=256,
        validation_alias=_alias("hash_workers"),
        description="threads hashing passwords at once; 0 = one per CPU core",
    )
    hash_queue_limit: int = Field(
        1024,
        ge=0,
        validation_alias=_alias("hash_queue_limit"),
        description="password checks that may wait for a hashing thread before rate_limited",
    )
    admin_poll: float = Field(
        1.0,
        gt=0,
        le=60,
        validation_alias=_alias("admin_poll"),
        description="seconds between looks for promote/demote done by p2sp-server promote",
    )

    # -- messaging
    dm_policy: Literal["friends", "anyone"] = Field("friends", validation_alias=_alias("dm_policy"))
    max_text: int = Field(4096, ge=1, le=65536, validation_alias=_alias("max_text"))
    group_max_members: int = Field(
        50,
        ge=2,
        validation_alias=_alias("group_max_members"),
        description="max_members of a new group when its creator does not say",
    )
    group_member_cap: int = Field(
        5000,
        ge=2,
        validation_alias=_alias("group_member_cap"),
        description="the most members any group may allow; the public room allows this many",
    )
    commit_window: float = Field(
        0.002,
        ge=0,
        le=1,
        validation_alias=_alias("commit_window"),
        description="seconds a burst of sends may gather before it is committed as one transaction",
    )
    commit_max_batch: int = Field(512, ge=1, le=10000, validation_alias=_alias("commit_max_batch"))

    # -- history, edits, receipts, retention
    # (docs/protocol.md, "History, edits, receipts and search")
    edit_window: float = Field(
        300.0,
        ge=0,
        validation_alias=_alias("edit_window"),
        description="seconds after sending that the sender may edit a message; 0 = never",
    )
    retract_window: float = Field(
        120.0,
        ge=0,
        validation_alias=_alias("retract_window"),
        description="seconds after sending that the sender may retract a message",
    )
    receipt_group_limit: int = Field(
        20,
        ge=0,
        validation_alias=_alias("receipt_group_limit"),
        description="groups of at most this many members get receipt events",
    )
    retention_days: float = Field(
        0,
        ge=0,
        validation_alias=_alias("retention_days"),
        description="messages older than this many days are deleted (once delivered); 0 = keep",
    )
    max_messages_per_conversation: int = Field(
        0,
        ge=0,
        validation_alias=_alias("max_messages_per_conversation"),
        description="only the newest this many messages of a conversation are kept; 0 = all",
    )
    retention_interval: float = Field(3600.0, gt=0, validation_alias=_alias("retention_interval"))
    retention_batch: int = Field(500, ge=1, le=100_000, validation_alias=_alias("retention_batch"))

    # -- cluster: not built yet. Setting these is refused at start (below), so
    # that no operator believes a cluster is running.
    server_id: str | None = Field(None, validation_alias=_alias("server_id", "SERVER_ID"))
    server_port: int | None = Field(
        None, ge=0, le=65535, validation_alias=_alias("server_port", "PORT_SERVER")
    )
    redis_url: str | None = Field(None, validation_alias=_alias("redis_url", "REDIS_URL"))

    # -- logging
    log_level: str = Field("INFO", validation_alias=_alias("log_level"))

    @field_validator("scrypt_n")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("scrypt_n must be a power of two")
        return value

    @model_validator(mode="after")
    def _nothing_that_only_pretends(self) -> Settings:
        for name in NOT_YET:
            if getattr(self, name) is not None:
                raise ValueError(
                    f"{name} ({NOT_YET[name]}) is set, but this version of p2sp has no cluster: "
                    "one process serves everyone. Unset it."
                )
        return self

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from every source; ``overrides`` (flags) win, ``None`` values are ignored.

    ``config_file`` replaces the default ``.env`` / ``wg.env`` files; it is an
    env-style file (``P2SP_PORT=18889`` lines).
    """
    flags = {k: v for k, v in overrides.items() if v is not None}
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        return Settings(_env_file=path, **flags)  # type: ignore[call-arg]
    return Settings(**flags)
