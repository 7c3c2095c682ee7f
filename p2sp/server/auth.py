"""Passwords, session tokens and the failed-login limiter.

Passwords are stored only as salted scrypt hashes in a self-describing
string, ``scrypt$n$r$p$salt$hash`` (base64), so the cost can be raised in
settings without invalidating existing accounts: each hash is checked with the
parameters it was made with. scrypt runs in a worker thread (``hashlib``
releases the GIL for it), so a login storm never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

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


class PasswordHasher:
    """Async front of the scrypt functions: the work happens in the default executor."""

    def __init__(self, cost: ScryptCost) -> None:
        self.cost = cost
        # Lets a failed lookup (no such user) cost as much as a real check,
        # so response time does not tell which names exist.
        self._dummy = hash_password_sync(secrets.token_hex(8), cost)

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, hash_password_sync, password, self.cost)

    async def verify(self, password: str, stored: str | None) -> bool:
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, verify_password_sync, password, stored or self._dummy)
        return ok and stored is not None


def new_token() -> str:
    """An unguessable session token (256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def tokens_equal(a: str | None, b: str | None) -> bool:
    """Constant-time token comparison; ``None`` never matches."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


class FailureLimiter:
    """Counts failures per key in a sliding window: ``limit`` within ``window`` seconds.

    In memory on purpose: it guards one process against password guessing;
    a restart forgets it, which costs an attacker nothing they could not get
    by waiting out the window. Keys that go quiet are dropped, so memory is
    bounded by recent attackers, not by all users.
    """

    def __init__(self, limit: int, window: float, clock=time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
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
        if hits is None or len(hits) < self.limit:
            return 0.0
        return max(0.0, hits[0] + self.window - now)

    def fail(self, key: str) -> None:
        now = self._clock()
        self._sweep(now)
        hits = self._recent(key, now)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self.limit)
        hits.append(now)

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.window:
            return
        self._last_sweep = now
        for key in list(self._hits):
            self._recent(key, now)
