"""Data access for groups: ``conversations`` of kind ``group`` and their members.

A group is a conversation (groups and conversations are one table,
``conversations``), so its messages, seqs and delivery cursors
are the same machinery as direct chats. A member who joins starts at the
group's current ``last_seq``: they receive what is said from then on, not
the backlog.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from p2sp.server.db.engine import Database
from p2sp.server.db.models import Base

conversations = Base.metadata.tables["conversations"]
members = Base.metadata.tables["conversation_members"]
users = Base.metadata.tables["users"]

NORMAL = 1
BLOCKED = 0


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: int
    name: str
    creator_id: int | None
    creator: str | None
    blocked: bool
    public: bool
    max_members: int
    description: str | None


_group_columns = (
    conversations.c.id,
    conversations.c.name,
    conversations.c.creator_user_id,
    users.c.username,
    conversations.c.status,
    conversations.c.is_public,
    conversations.c.max_members,
    conversations.c.description,
)


def _group_select():
    return (
        select(*_group_columns)
        .select_from(conversations)
        .outerjoin(users, users.c.id == conversations.c.creator_user_id)
        .where(conversations.c.kind == "group")
    )


def _row(r) -> GroupRow:
    return GroupRow(r[0], r[1], r[2], r[3], r[4] == BLOCKED, bool(r[5]), r[6], r[7])


class GroupRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading ----------------------------------------------------------------

    async def get(self, group_id: int) -> GroupRow | None:
        async with self.db.reader.connect() as conn:
            r = (await conn.execute(_group_select().where(conversations.c.id == group_id))).first()
        return _row(r) if r else None

    async def by_name(self, name: str, creator_id: int | None) -> GroupRow | None:
        cond = (
            conversations.c.creator_user_id.is_(None)
            if creator_id is None
            else conversations.c.creator_user_id == creator_id
        )
        async with self.db.reader.connect() as conn:
            r = (
                await conn.execute(_group_select().where(conversations.c.name == name, cond))
            ).first()
        return _row(r) if r else None

    async def count_created(self, creator_id: int) -> int:
        async with self.db.reader.connect() as conn:
            return (
                await conn.execute(
                    select(func.count())
                    .select_from(conversations)
                    .where(
                        conversations.c.kind == "group",
                        conversations.c.creator_user_id == creator_id,
                    )
                )
            ).scalar_one()

    async def role(self, group_id: int, user_id: int) -> str | None:
        async with self.db.reader.connect() as conn:
            return (
                await conn.execute(
                    select(members.c.role).where(
                        members.c.conversation_id == group_id, members.c.user_id == user_id
                    )
                )
            ).scalar_one_or_none()

    async def member_ids(self, group_id: int) -> list[int]:
        async with self.db.reader.connect() as conn:
            rows = await conn.execute(
                select(members.c.user_id).where(members.c.conversation_id == group_id)
            )
            return [r[0] for r in rows]

    async def members_of(self, group_ids: Iterable[int]) -> dict[int, list[int]]:
        ids = list(group_ids)
        out: dict[int, list[int]] = {gid: [] for gid in ids}
        if not ids:
            return out
        async with self.db.reader.connect() as conn:
            rows = await conn.execute(
                select(members.c.conversation_id, members.c.user_id).where(
                    members.c.conversation_id.in_(ids)
                )
            )
            for gid, uid in rows:
                out[gid].append(uid)
        return out

    async def count_members(self, group_id: int) -> int:
        async with self.db.reader.connect() as conn:
            return (
                await conn.execute(
                    select(func.count())
                    .select_from(members)
                    .where(members.c.conversation_id == group_id)
                )
            ).scalar_one()

    async def of_user(self, user_id: int) -> list[tuple[GroupRow, str]]:
        """The user's groups with their role, by id."""
        stmt = (
            _group_select()
            .add_columns(members.c.role)
            .join(members, members.c.conversation_id == conversations.c.id)
            .where(members.c.user_id == user_id)
            .order_by(conversations.c.id)
        )
        async with self.db.reader.connect() as conn:
            return [(_row(r), r[8]) for r in await conn.execute(stmt)]

    async def listing(self, *, public_only: bool, limit: int) -> list[GroupRow]:
        stmt = _group_select().order_by(conversations.c.id).limit(limit)
        if public_only:
            stmt = stmt.where(conversations.c.is_public.is_(True))
        async with self.db.reader.connect() as conn:
            return [_row(r) for r in await conn.execute(stmt)]

    async def roles_of(self, user_id: int, group_ids: Iterable[int]) -> dict[int, str]:
        ids = list(group_ids)
        if not ids:
            return {}
        async with self.db.reader.connect() as conn:
            rows = await conn.execute(
                select(members.c.conversation_id, members.c.role).where(
                    members.c.user_id == user_id, members.c.conversation_id.in_(ids)
                )
            )
            return {gid: role for gid, role in rows}

    # -- writing ----------------------------------------------------------------

    async def create(
        self,
        name: str,
        creator_id: int,
        *,
        public: bool,
        max_members: int,
        description: str | None,
        owner_is_member: bool = True,
    ) -> int | None:
        """Create the group with its owner; None if the creator has one of that name.

        The server's own rooms (owned by ``system``) have no owner membership,
        so ``system`` never counts as a member.
        """
        try:
            async with self.db.writer.begin() as conn:
                gid = (
                    await conn.execute(
                        insert(conversations)
                        .values(
                            kind="group",
                            name=name,
                            creator_user_id=creator_id,
                            is_public=public,
                            max_members=max_members,
                            description=description,
                        )
                        .returning(conversations.c.id)
                    )
                ).scalar_one()
                if owner_is_member:
                    await conn.execute(
                        insert(members).values(
                            conversation_id=gid, user_id=creator_id, role="owner"
                        )
                    )
                return int(gid)
        except IntegrityError:
            return None

    async def add_member(self, group: GroupRow, user_id: int, role: str = "member") -> str | None:
        """Add a member starting at the group's current seq.

        Returns None on success, else the refusal code (``already_member`` /
        ``group_full``). The group's row is locked first (``FOR UPDATE`` on
        PostgreSQL; SQLite has one writer at a time), so concurrent joins
        and invites of one group take turns: two cannot both count the same
        free place, nor both insert the same member.
        """
        try:
            async with self.db.writer.begin() as conn:
                last_seq = (
                    await conn.execute(
                        select(conversations.c.last_seq)
                        .where(conversations.c.id == group.id)
                        .with_for_update()
                    )
                ).scalar_one()
                if (
                    await conn.execute(
                        select(members.c.id).where(
                            members.c.conversation_id == group.id, members.c.user_id == user_id
                        )
                    )
                ).first():
                    return "already_member"
                total = (
                    await conn.execute(
                        select(func.count())
                        .select_from(members)
                        .where(members.c.conversation_id == group.id)
                    )
                ).scalar_one()
                if total >= group.max_members:
                    return "group_full"
                await conn.execute(
                    insert(members).values(
                        conversation_id=group.id,
                        user_id=user_id,
                        role=role,
                        joined_seq=last_seq,
                        delivered_seq=last_seq,
                        read_seq=last_seq,
                    )
                )
        except IntegrityError:
            # The unique (conversation, user) key: a concurrent add won.
            return "already_member"
        return None

    async def remove_member(self, group_id: int, user_id: int) -> bool:
        async with self.db.writer.begin() as conn:
            result = await conn.execute(
                delete(members).where(
                    members.c.conversation_id == group_id, members.c.user_id == user_id
                )
            )
            return bool(result.rowcount)

    async def set_role(self, group_id: int, user_id: int, role: str) -> None:
        async with self.db.writer.begin() as conn:
            await conn.execute(
                update(members)
                .where(members.c.conversation_id == group_id, members.c.user_id == user_id)
                .values(role=role)
            )

    async def delete(self, group_id: int) -> None:
        """Delete the group; its members and messages go with it (ON DELETE CASCADE)."""
        async with self.db.writer.begin() as conn:
            await conn.execute(delete(members).where(members.c.conversation_id == group_id))
            await conn.execute(delete(conversations).where(conversations.c.id == group_id))

    async def set_blocked(self, group_id: int, blocked: bool) -> None:
        async with self.db.writer.begin() as conn:
            await conn.execute(
                update(conversations)
                .where(conversations.c.id == group_id)
                .values(status=BLOCKED if blocked else NORMAL)
            )
