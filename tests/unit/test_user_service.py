"""UserService rules on an in-memory database: no sockets, the same objects the server builds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from p2sp.common.exceptions import ChatError
from p2sp.server.auth import AttemptLimiter, PasswordHasher, ScryptCost
from p2sp.server.db.engine import Database
from p2sp.server.repository.users import UserRepository
from p2sp.server.services.users import UserService

PW = "password1"


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    database = Database.from_url("sqlite+aiosqlite://")
    await database.upgrade()
    yield database
    await database.dispose()


@pytest.fixture
def service(db: Database) -> UserService:
    return UserService(
        UserRepository(db),
        PasswordHasher(ScryptCost(n=2**8)),
        name_limiter=AttemptLimiter(3, 60),
        ip_limiter=AttemptLimiter(10, 60),
        reg_limiter=AttemptLimiter(1000, 60),
    )


async def _code(coro) -> str:
    with pytest.raises(ChatError) as err:
        await coro
    return err.value.code


async def test_register_rules(service: UserService) -> None:
    uid = await service.register("Ann", PW)
    assert uid >= 1
    assert await _code(service.register("ann", PW)) == "user_exists"
    assert await _code(service.register("ANN", PW)) == "user_exists"
    assert await _code(service.register("bo", "1234567")) == "weak_password"
    assert await _code(service.register("bo", "x" * 129)) == "weak_password"
    assert await service.register("bo", "x" * 128) > uid


async def test_login_session_and_codes(service: UserService) -> None:
    uid = await service.register("cy", PW)
    session = await service.login("CY", PW, ip="10.0.0.1")
    assert (session.user_id, session.username, session.is_admin) == (uid, "cy", False)
    assert await service.repo.token_of(uid) == session.token
    assert await _code(service.login("nobody", PW, ip="x")) == "no_such_user"
    assert await _code(service.login("cy", "wrong pw!", ip="x")) == "bad_password"


async def test_limiter_counts_failures_and_success_clears_the_name(service: UserService) -> None:
    await service.register("di", PW)
    for _ in range(2):
        await _code(service.login("di", "nope nope", ip="a"))
    await service.login("di", PW, ip="a")  # clears the name's count
    for _ in range(3):
        await _code(service.login("di", "nope nope", ip="a"))
    assert await _code(service.login("di", PW, ip="a")) == "rate_limited"


async def test_session_end_revokes_only_its_own_token(service: UserService) -> None:
    uid = await service.register("ed", PW)
    first = await service.login("ed", PW, ip="a")
    second = await service.login("ed", PW, ip="b")
    await service.end_session(first)  # the older session ends after the newer began
    assert await service.repo.token_of(uid) == second.token
    await service.end_session(second)
    assert await service.repo.token_of(uid) is None


async def test_blocked_and_admin(service: UserService, db: Database) -> None:
    from sqlalchemy import update

    from p2sp.server.repository.users import users

    await service.register("fay", PW)
    await service.set_admin("FAY", True)
    assert (await service.login("fay", PW, ip="a")).is_admin
    async with db.writer.begin() as conn:
        await conn.execute(update(users).values(status=0))
    assert await _code(service.login("fay", PW, ip="a")) == "user_blocked"
    assert await _code(service.set_admin("ghost", True)) == "no_such_user"
