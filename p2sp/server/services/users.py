"""Accounts: registration, login, logout, admin rights.

The rules of seed 002's authentication in one place: password strength,
case-insensitive unique names, scrypt hashes, one live session per user (the
connection manager enforces it when the session is attached), blocked users
refused, and failed logins limited per name and per address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from p2sp.common.exceptions import ChatError
from p2sp.server.auth import FailureLimiter, PasswordHasher, new_token
from p2sp.server.managers.connection import Session
from p2sp.server.repository.users import UserRepository, UserRow
from p2sp.server.services.directory import name_key

log = logging.getLogger(__name__)

MIN_PASSWORD = 8
MAX_PASSWORD = 128


class UserService:
    """Registration, login and logout, with their rules."""

    def __init__(
        self,
        repo: UserRepository,
        hasher: PasswordHasher,
        *,
        name_limiter: FailureLimiter,
        ip_limiter: FailureLimiter,
    ) -> None:
        self.repo = repo
        self.hasher = hasher
        self.name_limiter = name_limiter
        self.ip_limiter = ip_limiter
        self._pending: set[asyncio.Task[None]] = set()

    async def register(self, username: str, password: str) -> int:
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise ChatError(
                "weak_password",
                f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            )
        key = name_key(username)
        if await self.repo.by_key(key) is not None:
            raise ChatError("user_exists", f"the name {username!r} is taken")
        password_hash = await self.hasher.hash(password)
        user_id = await self.repo.create(username, key, password_hash)
        if user_id is None:  # lost a race with another registration of the name
            raise ChatError("user_exists", f"the name {username!r} is taken")
        log.info("registered %s (id %d)", username, user_id)
        return user_id

    async def login(self, username: str, password: str, *, ip: str) -> Session:
        """Check the password and open a session; the caller attaches it."""
        key = name_key(username)
        wait = max(self.name_limiter.blocked(key), self.ip_limiter.blocked(ip))
        if wait:
            raise ChatError(
                "rate_limited",
                f"too many failed logins; try again in {int(wait) + 1} s",
                data={"retry_after": int(wait) + 1},
            )
        user = await self.repo.by_key(key)
        ok = await self.hasher.verify(password, user.password_hash if user else None)
        if user is None or not ok:
            self.name_limiter.fail(key)
            self.ip_limiter.fail(ip)
            if user is None:
                raise ChatError("no_such_user", f"no user named {username!r}")
            raise ChatError("bad_password", "wrong password")
        if user.blocked:
            raise ChatError("user_blocked", "this account is blocked by an administrator")
        self.name_limiter.clear(key)
        token = new_token()
        await self.repo.record_login(user.id, user.username, token, ip, _now())
        log.info("%s logged in from %s", user.username, ip or "?")
        return Session(user.id, user.username, token, user.is_admin)

    async def end_session(self, session: Session) -> None:
        """The session is over (logout, drop, kick): revoke its token, note when."""
        await self.repo.record_logout(session.user_id, session.token, _now())
        log.info("%s's session ended", session.username)

    def schedule_session_end(self, session: Session) -> None:
        """``end_session`` from a synchronous callback (a socket that closed)."""
        self.schedule(self.end_session(session))

    def schedule(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run session bookkeeping in the background; ``flush`` waits for it."""
        task = asyncio.get_running_loop().create_task(self._quietly(work))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @staticmethod
    async def _quietly(work: Coroutine[Any, Any, Any]) -> None:
        try:
            await work
        except Exception:
            log.exception("session bookkeeping failed")

    async def flush(self) -> None:
        """Wait for scheduled session ends (shutdown commits them)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def set_admin(self, username: str, is_admin: bool) -> UserRow:
        """``p2sp-server promote`` / ``demote``."""
        user = await self.repo.by_key(name_key(username))
        if user is None:
            raise ChatError("no_such_user", f"no user named {username!r}")
        await self.repo.set_admin(user.id, is_admin)
        return user


def _now() -> datetime:
    return datetime.now(UTC)
