"""Data access for ``user_friends``: both directions are stored, so a user's
friends are one indexed range scan, never an OR."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from p2sp.server.db.engine import Database
from p2sp.server.db.models import Base

friends = Base.metadata.tables["user_friends"]
users = Base.metadata.tables["users"]


@dataclass(frozen=True, slots=True)
class FriendRow:
    user_id: int
    username: str
    last_seen: datetime | None


class FriendRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_pair(self, a: int, b: int) -> bool:
        """Store the friendship both ways; False if it already existed.

        The two rows go in the same order whoever asks (lower id first), so
        two users adding each other at once queue on the first row instead
        of each holding one and waiting for the other (a deadlock on
        PostgreSQL); the second then meets the unique key.
        """
        low, high = min(a, b), max(a, b)
        try:
            async with self.db.writer.begin() as conn:
                await conn.execute(insert(friends).values(user_id_a=low, user_id_b=high))
                await conn.execute(insert(friends).values(user_id_a=high, user_id_b=low))
        except IntegrityError:
            return False
        return True

    async def friend_ids(self, user_id: int) -> set[int]:
        async with self.db.reader.connect() as conn:
            rows = await conn.execute(
                select(friends.c.user_id_b).where(friends.c.user_id_a == user_id)
            )
            return {r[0] for r in rows}

    async def list(self, user_id: int, limit: int) -> list[FriendRow]:
        stmt = (
            select(users.c.id, users.c.username, users.c.last_seen)
            .join(friends, friends.c.user_id_b == users.c.id)
            .where(friends.c.user_id_a == user_id)
            .order_by(users.c.username_key)
            .limit(limit)
        )
        async with self.db.reader.connect() as conn:
            return [FriendRow(*row) for row in await conn.execute(stmt)]
