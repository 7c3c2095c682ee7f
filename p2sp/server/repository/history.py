"""Reading what was said: conversation lists, history pages, one message, receipts.

Everything here reads; the writes (messages, edits, retractions, cursor
moves) go through the message writer (``messages.MessageStore``). Each
function returns plain rows or ``MessageRow`` values; who may see what is
decided by the services (``services/history.py``), which pass the visible
range in.

A member's visible range starts after ``joined_seq``: a member of a private
group sees what was said from the moment they joined; direct chats, system
inboxes and public rooms are visible from their first message (the service
passes 0 for them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql import Select

from p2sp.server.db.engine import Database
from p2sp.server.db.models import Base
from p2sp.server.repository.message_reads import REPLY_EXCERPT

messages = Base.metadata.tables["messages"]
conversations = Base.metadata.tables["conversations"]
members = Base.metadata.tables["conversation_members"]
users = Base.metadata.tables["users"]
versions = Base.metadata.tables["message_versions"]

#: Message types that count as unread and that search and retention look at;
#: edit and retract events never count.
CONTENT_TYPES = ("text", "image", "file", "system")


@dataclass(frozen=True, slots=True)
class MemberView:
    """A user's membership of a conversation, with what it needs for the rules."""

    conversation_id: int
    kind: str
    name: str | None
    is_public: bool
    blocked: bool
    last_seq: int
    role: str
    joined_seq: int
    delivered_seq: int
    read_seq: int
    #: The oldest seq still stored (retention deletes from the start); 1
    #: where the view was read without it.
    first_stored: int = 1

    @property
    def first_visible(self) -> int:
        """The first seq this member may see (before retention)."""
        if self.kind == "group" and not self.is_public:
            return self.joined_seq + 1
        return 1


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A stored message as history, search and the edit rules see it."""

    message_id: int
    conversation_id: int
    seq: int
    sender_id: int | None
    sender: str | None
    text: str
    type: str
    sent_at: int
    edited_at: int | None
    retracted: bool
    notice: dict[str, Any] | None
    target_id: int | None
    reply_to: dict[str, Any] | None


_parent = messages.alias("parent")
_parent_sender = users.alias("parent_sender")
_sender = users.alias("sender")

_MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.conversation_id,
    messages.c.seq,
    messages.c.sender_id,
    _sender.c.username,
    messages.c.content,
    messages.c.type,
    messages.c.created_at,
    messages.c.edited_at,
    messages.c.retracted,
    messages.c.notice,
    messages.c.target_id,
    _parent.c.id,
    _parent.c.seq,
    _parent_sender.c.username,
    _parent.c.content,
    _parent.c.retracted,
)


def _message_select(*extra: Any) -> Select[Any]:
    return (
        select(*_MESSAGE_COLUMNS, *extra)
        .select_from(messages)
        .outerjoin(_sender, _sender.c.id == messages.c.sender_id)
        .outerjoin(_parent, _parent.c.id == messages.c.parent_id)
        .outerjoin(_parent_sender, _parent_sender.c.id == _parent.c.sender_id)
    )


def message_row(r: Sequence[Any]) -> MessageRow:
    reply = None
    if r[12] is not None:
        reply = {
            "message_id": r[12],
            "seq": r[13],
            "from": r[14],
            "text": "" if r[16] else r[15][:REPLY_EXCERPT],
        }
    return MessageRow(
        message_id=r[0],
        conversation_id=r[1],
        seq=r[2],
        sender_id=r[3],
        sender=r[4],
        text="" if r[9] else r[5],
        type=r[6],
        sent_at=r[7],
        edited_at=r[8],
        retracted=bool(r[9]),
        notice=r[10],
        target_id=r[11],
        reply_to=reply,
    )


_MEMBER_COLUMNS = (
    conversations.c.id,
    conversations.c.kind,
    conversations.c.name,
    conversations.c.is_public,
    conversations.c.status,
    conversations.c.last_seq,
    members.c.role,
    members.c.joined_seq,
    members.c.delivered_seq,
    members.c.read_seq,
)


def _member_view(r: Sequence[Any]) -> MemberView:
    return MemberView(r[0], r[1], r[2], bool(r[3]), r[4] == 0, r[5], r[6], r[7], r[8], r[9])


def _unread_count(user_id: int) -> Any:
    """Correlated count of a member's unread messages (one per conversation row)."""
    m2 = messages.alias("unread")
    since = case(
        (
            and_(conversations.c.kind == "group", conversations.c.is_public.is_(False)),
            case(
                (members.c.read_seq > members.c.joined_seq, members.c.read_seq),
                else_=members.c.joined_seq,
            ),
        ),
        else_=members.c.read_seq,
    )
    return (
        select(func.count())
        .select_from(m2)
        .where(
            m2.c.conversation_id == conversations.c.id,
            m2.c.seq > since,
            m2.c.type.in_(CONTENT_TYPES),
            m2.c.retracted.is_(False),
            or_(m2.c.sender_id.is_(None), m2.c.sender_id != user_id),
        )
        .scalar_subquery()
    )


class HistoryRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def membership(self, user_id: int, conversation_id: int) -> MemberView | None:
        """The membership, with the oldest stored seq (one index probe) so a
        history page needs no statement of its own for it."""
        oldest = (
            select(func.min(messages.c.seq))
            .where(messages.c.conversation_id == conversation_id)
            .scalar_subquery()
        )
        stmt = (
            select(*_MEMBER_COLUMNS, oldest)
            .select_from(members)
            .join(conversations, conversations.c.id == members.c.conversation_id)
            .where(members.c.user_id == user_id, members.c.conversation_id == conversation_id)
        )
        async with self.db.reader.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        view = _member_view(row)
        return view if row[-1] is None else dataclasses.replace(view, first_stored=int(row[-1]))

    async def conversation_info(self, conversation_id: int) -> MemberView | None:
        """A conversation seen from outside (a server admin who is no member)."""
        stmt = select(
            conversations.c.id,
            conversations.c.kind,
            conversations.c.name,
            conversations.c.is_public,
            conversations.c.status,
            conversations.c.last_seq,
        ).where(conversations.c.id == conversation_id)
        async with self.db.reader.connect() as conn:
            r = (await conn.execute(stmt)).first()
        if r is None:
            return None
        return MemberView(r[0], r[1], r[2], bool(r[3]), r[4] == 0, r[5], "", 0, 0, 0)

    async def conversation_by_key(self, pair_key: str) -> int | None:
        async with self.db.reader.connect() as conn:
            return (
                await conn.execute(
                    select(conversations.c.id).where(conversations.c.pair_key == pair_key)
                )
            ).scalar_one_or_none()

    async def conversation_list(
        self, user_id: int, limit: int, before: tuple[int, int] | None
    ) -> list[tuple[MemberView, int, int, MessageRow | None]]:
        """(membership, last_activity, unread, last message) newest activity first."""
        activity = func.coalesce(conversations.c.last_activity, 0)
        # Conversations without a message yet (a new group) have no row in
        # ``messages``: select the memberships and join their last message.
        stmt = (
            select(*_MEMBER_COLUMNS, activity, _unread_count(user_id), *_MESSAGE_COLUMNS)
            .select_from(members)
            .join(conversations, conversations.c.id == members.c.conversation_id)
            .outerjoin(
                messages,
                and_(
                    messages.c.conversation_id == conversations.c.id,
                    messages.c.seq == conversations.c.last_seq,
                ),
            )
            .outerjoin(_sender, _sender.c.id == messages.c.sender_id)
            .outerjoin(_parent, _parent.c.id == messages.c.parent_id)
            .outerjoin(_parent_sender, _parent_sender.c.id == _parent.c.sender_id)
            .where(members.c.user_id == user_id)
            .order_by(activity.desc(), conversations.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            at, cid = before
            stmt = stmt.where(or_(activity < at, and_(activity == at, conversations.c.id < cid)))
        async with self.db.reader.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        n = len(_MEMBER_COLUMNS)
        out = []
        for r in rows:
            view = _member_view(r[:n])
            last = message_row(r[n + 2 :]) if r[n + 2] is not None else None
            out.append((view, int(r[n]), int(r[n + 1]), last))
        return out

    async def peers(self, user_id: int, conversation_ids: Iterable[int]) -> dict[int, str]:
        """The other member's name of each direct chat."""
        ids = list(conversation_ids)
        if not ids:
            return {}
        stmt = (
            select(members.c.conversation_id, users.c.username)
            .join(users, users.c.id == members.c.user_id)
            .where(members.c.conversation_id.in_(ids), members.c.user_id != user_id)
        )
        async with self.db.reader.connect() as conn:
            return {r[0]: r[1] for r in await conn.execute(stmt)}

    async def page(
        self,
        conversation_id: int,
        first: int,
        *,
        before_seq: int | None,
        after_seq: int | None,
        limit: int,
    ) -> tuple[list[MessageRow], bool]:
        """Up to ``limit`` messages (ascending) and whether more lie beyond them."""
        where = [messages.c.conversation_id == conversation_id, messages.c.seq >= first]
        if after_seq is not None:
            where.append(messages.c.seq > after_seq)
            order = messages.c.seq.asc()
        else:
            if before_seq is not None:
                where.append(messages.c.seq < before_seq)
            order = messages.c.seq.desc()
        stmt = _message_select().where(*where).order_by(order).limit(limit + 1)
        async with self.db.reader.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        more = len(rows) > limit
        found = [message_row(r) for r in rows[:limit]]
        if after_seq is None:
            found.reverse()
        return found, more

    async def message(self, message_id: int) -> MessageRow | None:
        async with self.db.reader.connect() as conn:
            row = (await conn.execute(_message_select().where(messages.c.id == message_id))).first()
        return None if row is None else message_row(row)

    async def sender_at(self, conversation_id: int, seq: int) -> int | None:
        """The sender of the message at ``seq`` (None: a notice, or none there)."""
        async with self.db.reader.connect() as conn:
            return (
                await conn.execute(
                    select(messages.c.sender_id).where(
                        messages.c.conversation_id == conversation_id, messages.c.seq == seq
                    )
                )
            ).scalar_one_or_none()

    async def versions(self, message_id: int) -> list[tuple[str, int]]:
        """Earlier texts of an edited message, oldest first: (text, made_at)."""
        stmt = (
            select(versions.c.text, versions.c.created_at)
            .where(versions.c.message_id == message_id)
            .order_by(versions.c.id)
        )
        async with self.db.reader.connect() as conn:
            return [(r[0], r[1]) for r in await conn.execute(stmt)]

    async def cursors_of_others(
        self, conversation_id: int, user_id: int | None
    ) -> list[tuple[int, str, int, int]]:
        """(user_id, username, delivered_seq, read_seq) of every member but ``user_id``."""
        stmt = (
            select(members.c.user_id, users.c.username, members.c.delivered_seq, members.c.read_seq)
            .join(users, users.c.id == members.c.user_id)
            .where(members.c.conversation_id == conversation_id)
            .order_by(users.c.username_key)
        )
        if user_id is not None:
            stmt = stmt.where(members.c.user_id != user_id)
        async with self.db.reader.connect() as conn:
            return [(r[0], r[1], r[2], r[3]) for r in await conn.execute(stmt)]

    async def unread(self, user_id: int, conversation_id: int) -> int:
        stmt = (
            select(_unread_count(user_id))
            .select_from(members)
            .join(conversations, conversations.c.id == members.c.conversation_id)
            .where(members.c.user_id == user_id, members.c.conversation_id == conversation_id)
        )
        async with self.db.reader.connect() as conn:
            found = (await conn.execute(stmt)).scalar_one_or_none()
        return int(found or 0)

    async def member_ids(self, conversation_id: int) -> list[int]:
        async with self.db.reader.connect() as conn:
            return [
                r[0]
                for r in await conn.execute(
                    select(members.c.user_id).where(members.c.conversation_id == conversation_id)
                )
            ]
