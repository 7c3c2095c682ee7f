"""Login interleavings the end-to-end races (``tests/e2e/test_races.py``)
reach only by chance, forced step by step.

A login is two steps: ``UserService.login`` checks the password, then, in
one turn per user, records the session in the database and attaches it in
memory (``ConnectionManager.attach``, through the handler's callback).
Here one login is held between the two while the other side of the race
runs to its end, on the objects the server builds (in-memory SQLite,
sockets faked).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from p2sp.common.actions import Credentials
from p2sp.common.exceptions import ChatError
from p2sp.server.auth import AttemptLimiter, PasswordHasher, ScryptCost
from p2sp.server.db.engine import Database
from p2sp.server.handler import ServerMessageHandler
from p2sp.server.managers.connection import Connection
from p2sp.server.managers.connections import ConnectionManager
from p2sp.server.managers.router import LocalRouter
from p2sp.server.repository.friends import FriendRepository
from p2sp.server.repository.users import UserRepository
from p2sp.server.services.admin import AdminService
from p2sp.server.services.directory import Directory
from p2sp.server.services.users import UserService

PW = "password1"


class HeldRepository(UserRepository):
    """``record_login`` that, for a login from an address given to ``hold``,
    waits after its write until released."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._held: dict[str, tuple[asyncio.Event, asyncio.Event]] = {}

    def hold(self, ip: str) -> tuple[asyncio.Event, asyncio.Event]:
        """(written, release): set when the login from ``ip`` has recorded its
        session; set it to let that login go on."""
        self._held[ip] = (asyncio.Event(), asyncio.Event())
        return self._held[ip]

    async def record_login(
        self, user_id: int, username: str, token: str, ip: str, now: datetime
    ) -> None:
        await super().record_login(user_id, username, token, ip, now)
        if ip in self._held:
            written, release = self._held[ip]
            written.set()
            await release.wait()


class FakeTransport:
    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.closed = False

    def get_extra_info(self, name: str):
        return (self.ip, 5555) if name == "peername" else None

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None: ...

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.closed = True


class NoFriends:
    async def announce(self, user_id: int, username: str, online: bool) -> None: ...


class Server:
    """The login path of the server: repository, service, sessions, handler, admin."""

    def __init__(self, db: Database) -> None:
        self.repo = HeldRepository(db)
        self.users = UserService(
            self.repo,
            PasswordHasher(ScryptCost(n=2**8)),
            name_limiter=AttemptLimiter(100, 60),
            ip_limiter=AttemptLimiter(100, 60),
            reg_limiter=AttemptLimiter(1000, 60),
        )
        self.manager = ConnectionManager(idle_timeout=300)
        self.handler = ServerMessageHandler(
            self.manager,
            self.users,
            NoFriends(),
            None,
            None,
            None,
            None,  # type: ignore[arg-type]
        )
        self.admin = AdminService(
            users=self.repo,
            directory=Directory(self.repo, FriendRepository(db)),
            messages=None,  # type: ignore[arg-type]
            groups=None,  # type: ignore[arg-type]
            router=LocalRouter(self.manager),
        )

    def connection(self, ip: str) -> Connection:
        conn = Connection(self.manager, self.handler, max_frame=4096, send_buffer_limit=1 << 20)
        conn.connection_made(FakeTransport(ip))  # type: ignore[arg-type]
        return conn

    async def login(self, conn: Connection, name: str) -> object:
        return await self.handler.login(conn, None, Credentials(name, PW))


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    db = Database.from_url("sqlite+aiosqlite://")
    await db.upgrade()
    yield Server(db)
    await db.dispose()


async def test_a_block_landing_after_the_password_check_refuses_the_login(
    server: Server,
) -> None:
    """``blockuser`` answers while a login is past its password check and its
    session is recorded: the login is refused (``user_blocked``) when it
    attaches, the user is never online, and the recorded session is ended."""
    await server.users.register("root", PW)
    uid = await server.users.register("vic", PW)
    root = await server.users.login("root", PW, ip="10.0.0.9")
    await server.repo.set_admin(root.user_id, True)
    conn = server.connection("10.0.0.1")
    written, release = server.repo.hold("10.0.0.1")
    login = asyncio.ensure_future(server.login(conn, "vic"))
    await written.wait()
    await server.admin.block_user(root, "vic", True)
    release.set()
    with pytest.raises(ChatError) as refused:
        await login
    assert refused.value.code == "user_blocked"
    assert not server.manager.is_online(uid) and conn.session is None
    await server.users.flush()
    assert await server.repo.token_of(uid) is None


async def test_the_stored_token_is_the_live_sessions(server: Server) -> None:
    """Login A records its session and is held there; login B of the same user
    comes meanwhile. Recording and attaching are one turn per user, so B waits
    for A's turn, then records and attaches its own: the stored token is the
    live session's, and its end marks the user offline. (Before, B could record
    and attach inside A's gap, and A then attached over it with B's token
    stored: presence stayed 'online' after A's end.)"""
    uid = await server.users.register("solo", PW)
    a, b = server.connection("10.0.0.1"), server.connection("10.0.0.2")
    written, release = server.repo.hold("10.0.0.1")
    first = asyncio.ensure_future(server.login(a, "solo"))
    await written.wait()
    second = asyncio.ensure_future(server.login(b, "solo"))
    await asyncio.sleep(0.05)
    assert not second.done()  # waiting for A's turn to end
    release.set()
    await first
    await second
    live = server.manager.session_of(uid)
    assert live is b and a.closing
    assert b.session is not None
    assert await server.repo.token_of(uid) == b.session.token
    server.handler.connection_closed(b)
    await server.users.flush()
    assert await server.repo.token_of(uid) is None
