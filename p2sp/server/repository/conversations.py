"""Data access for ``conversations`` and ``conversation_members``.

Direct chats and system inboxes are found by ``pair_key`` (unique), which
makes get-or-create safe against two creators racing: the loser's insert
fails on the key and it reads the winner's row.
"""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from p2sp.server.db.engine import Database
from p2sp.server.db.models import Base, direct_pair_key, system_pair_key

conversations = Base.metadata.tables["conversations"]
members = Base.metadata.tables["conversation_members"]


class ConversationRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def direct(self, a: int, b: int) -> int:
        """The direct conversation of two users, created on first use."""
        return await self._keyed(direct_pair_key(a, b), "direct", sorted({a, b}))

    async def system(self, user_id: int) -> int:
        """A user's system inbox, where notices are stored like any message."""
        return await self._keyed(system_pair_key(user_id), "system", [user_id])

    async def _keyed(self, key: str, kind: str, user_ids: list[int]) -> int:
        found = await self._by_key(key)
        if found is not None:
            return found
        try:
            async with self.db.writer.begin() as conn:
                conv_id = (
                    await conn.execute(
                        insert(conversations)
                        .values(kind=kind, pair_key=key)
                        .returning(conversations.c.id)
                    )
                ).scalar_one()
                await conn.execute(
                    insert(members),
                    [
                        {"conversation_id": conv_id, "user_id": uid, "role": "member"}
                        for uid in user_ids
                    ],
                )
                return int(conv_id)
        except IntegrityError:
            found = await self._by_key(key)
            if found is None:
                raise
            return found

    async def _by_key(self, key: str) -> int | None:
        async with self.db.reader.connect() as conn:
            return (
                await conn.execute(
                    select(conversations.c.id).where(conversations.c.pair_key == key)
                )
            ).scalar_one_or_none()
