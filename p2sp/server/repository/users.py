"""Data access for accounts: ``users`` and ``user_login_log``.

SQLAlchemy Core statements returning plain rows, not ORM objects: a login
reads one row and writes two, and nothing here needs identity tracking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from p2sp.common.usernames import skeleton
from p2sp.server.db.engine import Database
from p2sp.server.db.models import Base

users = Base.metadata.tables["users"]
login_log = Base.metadata.tables["user_login_log"]

BLOCKED = 0
NORMAL = 1
SYSTEM_USER = "system"
#: Not a scrypt hash: no password ever matches it.
UNUSABLE_PASSWORD = "!"


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    password_hash: str
    blocked: bool
    is_admin: bool


_user_columns = (
    users.c.id,
    users.c.username,
    users.c.password_hash,
    users.c.status,
    users.c.is_admin,
)


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_key(self, key: str) -> UserRow | None:
        async with self.db.reader.connect() as conn:
            row = (
                await conn.execute(select(*_user_columns).where(users.c.username_key == key))
            ).first()
        if row is None:
            return None
        return UserRow(row.id, row.username, row.password_hash, row.status == BLOCKED, row.is_admin)

    async def by_skeleton(self, skeleton: str) -> UserRow | None:
        """The user whose name looks like one with this skeleton, if any."""
        async with self.db.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(*_user_columns).where(users.c.username_skeleton == skeleton)
                )
            ).first()
        if row is None:
            return None
        return UserRow(row.id, row.username, row.password_hash, row.status == BLOCKED, row.is_admin)

    async def create(
        self, username: str, key: str, skeleton: str, password_hash: str
    ) -> int | None:
        """Insert a user; None if the name, or one that looks like it, was
        taken meanwhile (unique key and unique skeleton)."""
        try:
            async with self.db.writer.begin() as conn:
                result = await conn.execute(
                    insert(users)
                    .values(
                        username=username,
                        username_key=key,
                        username_skeleton=skeleton,
                        password_hash=password_hash,
                    )
                    .returning(users.c.id)
                )
                return int(result.scalar_one())
        except IntegrityError:
            return None

    async def record_login(
        self, user_id: int, username: str, token: str, ip: str, now: datetime
    ) -> None:
        async with self.db.writer.begin() as conn:
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(
                    auth_token=token,
                    latest_ip=ip or None,
                    last_seen=now,
                    presence="online",
                )
            )
            await conn.execute(
                insert(login_log).values(
                    user_id=user_id, username=username, login_time=now, login_ip=ip or None
                )
            )

    async def record_logout(self, user_id: int, token: str, now: datetime) -> None:
        """Revoke ``token`` and mark the user offline, unless a newer session replaced it."""
        async with self.db.writer.begin() as conn:
            await conn.execute(
                update(users)
                .where(users.c.id == user_id, users.c.auth_token == token)
                .values(auth_token=None, presence="offline", last_seen=now)
            )

    async def admin_ids(self) -> set[int]:
        """Every server admin's id (few: the admin watcher asks often)."""
        async with self.db.reader.connect() as conn:
            return {r[0] for r in await conn.execute(select(users.c.id).where(users.c.is_admin))}

    async def is_admin(self, user_id: int) -> bool:
        async with self.db.reader.connect() as conn:
            found = (
                await conn.execute(select(users.c.is_admin).where(users.c.id == user_id))
            ).scalar_one_or_none()
        return bool(found)

    async def set_admin(self, user_id: int, is_admin: bool) -> None:
        async with self.db.writer.begin() as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(is_admin=is_admin))

    async def token_of(self, user_id: int) -> str | None:
        """The stored session token (for tests and operators; auth itself is in memory)."""
        async with self.db.reader.connect() as conn:
            return (
                await conn.execute(select(users.c.auth_token).where(users.c.id == user_id))
            ).scalar_one_or_none()

    async def set_blocked(self, user_id: int, blocked: bool) -> None:
        async with self.db.writer.begin() as conn:
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(status=BLOCKED if blocked else NORMAL)
            )

    async def listing(self, limit: int) -> list[tuple[int, str, bool, bool, datetime | None]]:
        """(id, username, blocked, is_admin, last_seen) of every user, by name."""
        stmt = (
            select(
                users.c.id, users.c.username, users.c.status, users.c.is_admin, users.c.last_seen
            )
            .order_by(users.c.username_key)
            .limit(limit)
        )
        async with self.db.reader.connect() as conn:
            return [(r[0], r[1], r[2] == BLOCKED, r[3], r[4]) for r in await conn.execute(stmt)]

    async def all_ids(self, *, include_blocked: bool = False) -> list[int]:
        stmt = select(users.c.id).where(users.c.password_hash != UNUSABLE_PASSWORD)
        if not include_blocked:
            stmt = stmt.where(users.c.status == NORMAL)
        async with self.db.reader.connect() as conn:
            return [r[0] for r in await conn.execute(stmt)]

    async def ensure_system_user(self) -> int:
        """The ``system`` account that owns the public room; it can never log in."""
        found = await self.by_key(SYSTEM_USER)
        if found is not None:
            return found.id
        created = await self.create(
            SYSTEM_USER, SYSTEM_USER, skeleton(SYSTEM_USER), UNUSABLE_PASSWORD
        )
        if created is None:  # another process made it meanwhile
            found = await self.by_key(SYSTEM_USER)
            assert found is not None
            return found.id
        return created
