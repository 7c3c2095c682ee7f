"""Passwords, session tokens and the attempt limiters of logins and registrations.

Passwords are stored only as salted scrypt hashes in a self-describing
string, ``scrypt$n$r$p$salt$hash`` (base64), so the cost can be raised in
settings without invalidating existing accounts: each hash is checked with the
parameters it was made with. scrypt runs on a bounded pool of worker threads
(``hashlib`` releases the GIL for it), so a login storm never stalls the
event loop and a flood of them cannot queue unbounded work.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

SALT_BYTES = 16
KEY_BYTES = 32
TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class ScryptCost:
    """scrypt's parameters; memory used is about ``128 * n * r`` bytes."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    @property
    def maxmem(self) -> int:
        return 128 * self.n * self.r * (self.p + 2) + 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password_sync(password: str, cost: ScryptCost) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=cost.n,
        r=cost.r,
        p=cost.p,
        maxmem=cost.maxmem,
        dklen=KEY_BYTES,
    )
    return f"scrypt${cost.n}${cost.r}${cost.p}${_b64(salt)}${_b64(key)}"


def verify_password_sync(password: str, stored: str) -> bool:
    """Constant-time check against a stored hash; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        cost = ScryptCost(int(n), int(r), int(p))
        expected = base64.b64decode(key)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=cost.n,
            r=cost.r,
            p=cost.p,
            maxmem=cost.maxmem,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


class HasherBusy(Exception):
    """More password checks are waiting than the hashing pool accepts."""


class PasswordHasher:
    """Async front of the scrypt functions, on a bounded pool of its own.

    scrypt is the costliest thing a request can make the server do, and a
    flood of ``login`` or ``reg`` requests from many connections would
    otherwise queue unbounded work (and memory: each hash holds
    ``128 * n * r`` bytes) in the loop's shared executor. Here at most
    ``workers`` hashes run and at most ``queue_limit`` wait; past that the
    caller is told at once (``HasherBusy``) instead of waiting in line.
    """

    def __init__(self, cost: ScryptCost, *, workers: int = 0, queue_limit: int = 1024) -> None:
        self.cost = cost
        self.workers = workers or os.cpu_count() or 1
        self.queue_limit = queue_limit
        self._pool: ThreadPoolExecutor | None = None
        #: Hashes running or waiting, counted in the loop's thread only.
        self.in_use = 0
        # Lets a failed lookup (no such user) cost as much as a real check,
        # so response time does not tell which names exist.
        self._dummy = hash_password_sync(secrets.token_hex(8), cost)

    async def _run(self, func: Callable[..., Any], *args: Any) -> Any:
        if self.in_use >= self.workers + self.queue_limit:
            raise HasherBusy("too many password checks waiting")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="p2sp-scrypt")
        self.in_use += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)
        finally:
            self.in_use -= 1

    async def hash(self, password: str) -> str:
        return await self._run(hash_password_sync, password, self.cost)

    async def verify(self, password: str, stored: str | None) -> bool:
        ok = await self._run(verify_password_sync, password, stored or self._dummy)
        return ok and stored is not None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def new_token() -> str:
    """An unguessable session token (256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def tokens_equal(a: str | None, b: str | None) -> bool:
    """Constant-time token comparison; ``None`` never matches."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


class AttemptLimiter:
    """At most ``limit`` attempts per key within ``window`` seconds, in flight included.

    The check and the reservation are one step (``acquire``), taken before
    the slow work (hashing a password) and settled after it: a guess still
    being hashed already counts. With a check before the hash and a count
    after it, a client sending many guesses at once got every one of them
    checked. A settled attempt that failed stays counted for ``window``
    seconds; one that succeeded is forgotten (``settle(failed=False)``).
    A limiter that counts every attempt (registrations per address) settles
    them all as failed.

    In memory on purpose: it guards one process against guessing and
    flooding; a restart forgets it, which costs an attacker nothing they
    could not get by waiting out the window. Keys that go quiet are dropped,
    so memory is bounded by recent attackers, not by all users.
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self._last_sweep = clock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        cutoff = now - self.window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def blocked(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        now = self._clock()
        hits = self._recent(key, now)
        used = (len(hits) if hits else 0) + self._in_flight.get(key, 0)
        if used < self.limit:
            return 0.0
        if hits:  # the oldest counted failure leaves the window then
            return max(0.001, hits[0] + self.window - now)
        return 1.0  # only attempts in flight: they settle within a moment

    def acquire(self, key: str) -> float:
        """Reserve an attempt for ``key``: 0.0 if reserved (``settle`` it later),
        else the seconds to wait, and nothing is reserved."""
        wait = self.blocked(key)
        if wait:
            return wait
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return 0.0

    def settle(self, key: str, *, failed: bool) -> None:
        """End a reservation; a failed attempt counts for the window."""
        left = self._in_flight.get(key, 0) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)
        if failed:
            now = self._clock()
            self._sweep(now)
            hits = self._recent(key, now)
            if hits is None:
                hits = self._hits[key] = deque(maxlen=self.limit)
            hits.append(now)

    def clear(self, key: str) -> None:
        """Forget ``key``'s failures (a successful login); attempts in flight stay."""
        self._hits.pop(key, None)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.window:
            return
        self._last_sweep = now
        for key in list(self._hits):
            self._recent(key, now)
