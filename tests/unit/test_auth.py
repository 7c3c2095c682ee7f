"""Password hashing, tokens and the failed-login limiter."""

from __future__ import annotations

import asyncio

from p2sp.server.auth import (
    AttemptLimiter,
    PasswordHasher,
    ScryptCost,
    hash_password_sync,
    new_token,
    tokens_equal,
    verify_password_sync,
)

CHEAP = ScryptCost(n=2**10, r=8, p=1)


def test_hash_is_salted_and_verifies() -> None:
    a = hash_password_sync("secret pw", CHEAP)
    b = hash_password_sync("secret pw", CHEAP)
    assert a != b and a.startswith("scrypt$1024$8$1$")
    assert verify_password_sync("secret pw", a)
    assert not verify_password_sync("secret pX", a)


def test_hash_keeps_its_own_cost() -> None:
    old = hash_password_sync("pw pw pw", ScryptCost(n=2**8))
    assert verify_password_sync("pw pw pw", old)  # checked with n=256, whatever the setting now


def test_malformed_hash_never_matches() -> None:
    for stored in ("", "plain", "md5$x", "scrypt$a$b$c$d$e", "scrypt$1024$8$1$!!$!!"):
        assert not verify_password_sync("anything", stored)


async def test_async_hasher_runs_off_the_loop() -> None:
    hasher = PasswordHasher(CHEAP)
    stored = await hasher.hash("pw pw pw")
    results = await asyncio.gather(*(hasher.verify("pw pw pw", stored) for _ in range(8)))
    assert all(results)
    assert not await hasher.verify("pw pw pw", None)  # no such user: dummy check, never True


def test_tokens() -> None:
    t = new_token()
    assert len(t) >= 43 and t != new_token()
    assert tokens_equal(t, t)
    assert not tokens_equal(t, t + "x")
    assert not tokens_equal(None, t) and not tokens_equal(t, None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(limiter: AttemptLimiter, key: str) -> None:
    assert limiter.acquire(key) == 0
    limiter.settle(key, failed=True)


def test_limiter_blocks_after_limit_and_expires() -> None:
    clock = FakeClock()
    limiter = AttemptLimiter(limit=3, window=60, clock=clock)
    for _ in range(2):
        _fail(limiter, "k")
    assert limiter.blocked("k") == 0
    _fail(limiter, "k")
    assert 59 <= limiter.blocked("k") <= 60
    clock.now += 30
    assert 29 <= limiter.blocked("k") <= 30
    clock.now += 31
    assert limiter.blocked("k") == 0


def test_limiter_clear_and_independent_keys() -> None:
    limiter = AttemptLimiter(limit=1, window=60, clock=FakeClock())
    _fail(limiter, "a")
    assert limiter.blocked("a") and not limiter.blocked("b")
    limiter.clear("a")
    assert not limiter.blocked("a")


def test_limiter_forgets_quiet_keys() -> None:
    clock = FakeClock()
    limiter = AttemptLimiter(limit=5, window=10, clock=clock)
    for i in range(100):
        _fail(limiter, f"ip{i}")
    clock.now += 11
    _fail(limiter, "new")
    assert len(limiter._hits) == 1


def test_attempts_in_flight_count_against_the_limit() -> None:
    """Parallel guesses: the reservation is taken before the hash, so the
    fourth concurrent attempt is refused although none has failed yet."""
    limiter = AttemptLimiter(limit=3, window=60, clock=FakeClock())
    assert [limiter.acquire("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire("k") > 0  # refused, nothing reserved
    limiter.settle("k", failed=False)  # one succeeded: its slot is free again
    assert limiter.acquire("k") == 0
    for _ in range(3):
        limiter.settle("k", failed=True)
    assert limiter.acquire("k") > 0
    assert limiter._in_flight == {}


async def test_hasher_refuses_work_past_its_queue() -> None:
    from p2sp.server.auth import HasherBusy

    hasher = PasswordHasher(ScryptCost(n=2**10), workers=1, queue_limit=2)
    stored = hasher._dummy
    results = await asyncio.gather(
        *(hasher.verify("pw", stored) for _ in range(6)), return_exceptions=True
    )
    busy = [r for r in results if isinstance(r, HasherBusy)]
    assert len(busy) == 3  # 1 running + 2 waiting were accepted
    assert hasher.in_use == 0
    hasher.close()
