"""Accounts: registration, login, logout, admin rights.

The account rules in one place: the username rule (``p2sp.common.usernames``:
PRECIS forms, one script, no look-alikes), password length, scrypt hashes,
blocked users refused, failed logins limited per name and per address with
attempts in flight counted, registrations limited per address. One live
session per user and the block check at login are the connection manager's
(``ConnectionManager.attach``), where the session is attached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from p2sp.common.exceptions import ChatError, invalid_request
from p2sp.common.limits import PASSWORD_MAX, PASSWORD_MIN
from p2sp.common.usernames import UsernameError, check_new_username, name_key
from p2sp.server.auth import AttemptLimiter, HasherBusy, PasswordHasher, new_token
from p2sp.server.managers.connection import Session
from p2sp.server.repository.users import UserRepository, UserRow

log = logging.getLogger(__name__)


def _rate_limited(wait: float, what: str) -> ChatError:
    seconds = int(wait) + 1
    return ChatError(
        "rate_limited", f"{what}; try again in {seconds} s", data={"retry_after": seconds}
    )


def _busy() -> ChatError:
    return _rate_limited(0, "the server is busy checking passwords")


class UserService:
    """Registration, login and logout, with their rules."""

    def __init__(
        self,
        repo: UserRepository,
        hasher: PasswordHasher,
        *,
        name_limiter: AttemptLimiter,
        ip_limiter: AttemptLimiter,
        reg_limiter: AttemptLimiter,
    ) -> None:
        self.repo = repo
        self.hasher = hasher
        self.name_limiter = name_limiter
        self.ip_limiter = ip_limiter
        self.reg_limiter = reg_limiter
        self._pending: set[asyncio.Task[None]] = set()
        #: Per-user lock (and its number of users) for ``_session_turn``.
        self._turns: dict[int, list[Any]] = {}

    async def register(self, username: str, password: str, *, ip: str = "") -> int:
        """A new account; the name rule is ``p2sp.common.usernames``."""
        try:
            shown, key, skeleton = check_new_username(username)
        except UsernameError as exc:
            raise invalid_request(f"{exc.reason} - at `data.username`") from None
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise ChatError(
                "weak_password", f"a password needs {PASSWORD_MIN} to {PASSWORD_MAX} characters"
            )
        wait = self.reg_limiter.acquire(ip)
        if wait:
            raise _rate_limited(wait, "too many registrations from your address")
        try:
            await self._refuse_taken(shown, key, skeleton)
            try:
                password_hash = await self.hasher.hash(password)
            except HasherBusy:
                raise _busy() from None
            user_id = await self.repo.create(shown, key, skeleton, password_hash)
            if user_id is None:  # lost a race with a registration of the same or a similar name
                await self._refuse_taken(shown, key, skeleton)
                raise ChatError("user_exists", f"the name {shown!r} is taken")
        finally:
            self.reg_limiter.settle(ip, failed=True)  # every registration counts
        log.info("registered %s (id %d)", shown, user_id)
        return user_id

    async def _refuse_taken(self, shown: str, key: str, skeleton: str) -> None:
        if await self.repo.by_key(key) is not None:
            raise ChatError("user_exists", f"the name {shown!r} is taken")
        similar = await self.repo.by_skeleton(skeleton)
        if similar is not None:
            raise ChatError(
                "user_exists",
                f"the name {shown!r} looks too much like the existing user "
                f"{similar.username!r}; choose another",
            )

    async def login(
        self,
        username: str,
        password: str,
        *,
        ip: str,
        attach: Callable[[Session], None] | None = None,
    ) -> Session:
        """Check the password and open a session, made live by ``attach``.

        Each attempt reserves its place in the per-name and per-address
        limits before the password is hashed and settles it after, so
        guesses sent in parallel are limited like guesses sent in a row.

        Recording the session (``users.auth_token``, presence) and making it
        live (``attach``: the connection manager's one-session and block
        rules) are one step per user: two logins of one user take turns
        through it, so the stored token is always the live session's. If
        ``attach`` refuses, the recorded session is ended again.
        """
        key = name_key(username)
        name_slot = key if key is not None else f"?{username}"
        wait = self.name_limiter.acquire(name_slot)
        if not wait:
            wait = self.ip_limiter.acquire(ip)
            if wait:
                self.name_limiter.settle(name_slot, failed=False)
        if wait:
            raise _rate_limited(wait, "too many failed logins")
        failed = False
        try:
            user = await self.repo.by_key(key) if key is not None else None
            try:
                # No password over the limit was ever accepted: no need to hash one.
                ok = len(password) <= PASSWORD_MAX and await self.hasher.verify(
                    password, user.password_hash if user else None
                )
            except HasherBusy:
                raise _busy() from None
            if user is None or not ok:
                failed = True
                if user is None:
                    raise ChatError("no_such_user", f"no user named {username!r}")
                raise ChatError("bad_password", "wrong password")
        finally:
            self.name_limiter.settle(name_slot, failed=failed)
            self.ip_limiter.settle(ip, failed=failed)
        if user.blocked:
            raise ChatError("user_blocked", "this account is blocked by an administrator")
        self.name_limiter.clear(name_slot)
        session = Session(user.id, user.username, new_token(), user.is_admin)
        async with self._session_turn(user.id):
            await self.repo.record_login(user.id, user.username, session.token, ip, _now())
            if attach is not None:
                try:
                    attach(session)
                except BaseException:
                    self.schedule_session_end(session)
                    raise
        log.info("%s logged in from %s", user.username, ip or "?")
        return session

    @contextlib.asynccontextmanager
    async def _session_turn(self, user_id: int) -> AsyncIterator[None]:
        """One login of a user at a time between recording and attaching."""
        entry = self._turns.get(user_id)
        if entry is None:
            entry = self._turns[user_id] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._turns[user_id]

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
        key = name_key(username)
        user = await self.repo.by_key(key) if key is not None else None
        if user is None:
            raise ChatError("no_such_user", f"no user named {username!r}")
        await self.repo.set_admin(user.id, is_admin)
        return user


def _now() -> datetime:
    return datetime.now(UTC)
