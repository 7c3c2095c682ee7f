"""Conversations and history: who may read what, and how pages are cut.

The rules of reading in one place:

* A user reads only the conversations they are a member of; any other id,
  existing or not, is ``no_such_conversation``, so ids cannot be probed.
* The visible range of a private group starts after the seq at which the
  member joined; direct chats, system inboxes and public rooms start at 1.
  Retention may have deleted the oldest messages: ``first_seq`` is then the
  oldest one kept.
* Pages are cut by seq: ``before_seq`` pages back, ``after_seq`` forward, and
  the pages of either walk list every visible seq once.
* A message is shown in its current state: the latest text and
  ``edited_at``, or ``retracted`` with its text erased.
* The sender of a direct message sees its ``status`` (sent, delivered,
  read) from the other member's cursors.
"""

from __future__ import annotations

from typing import Any

from p2sp.common.exceptions import ChatError
from p2sp.server.db.models import direct_pair_key
from p2sp.server.events import row_payload
from p2sp.server.managers.connection import Session
from p2sp.server.repository.history import HistoryRepository, MemberView, MessageRow
from p2sp.server.services.directory import Directory

DEFAULT_PAGE = 50
MAX_PAGE = 200


def no_such_conversation() -> ChatError:
    return ChatError("no_such_conversation", "no such conversation among yours")


def message_status(row: MessageRow, peer_delivered: int, peer_read: int) -> str:
    if peer_read >= row.seq:
        return "read"
    if peer_delivered >= row.seq:
        return "delivered"
    return "sent"


class HistoryService:
    def __init__(self, *, repo: HistoryRepository, directory: Directory) -> None:
        self.repo = repo
        self.directory = directory

    async def member(self, me: Session, conversation_id: int) -> MemberView:
        view = await self.repo.membership(me.user_id, conversation_id)
        if view is None:
            raise no_such_conversation()
        return view

    async def resolve(
        self,
        me: Session,
        *,
        conversation_id: int | None = None,
        username: str | None = None,
        group_id: int | None = None,
    ) -> MemberView:
        """The membership named by exactly one of the three ways of naming a conversation."""
        given = [x for x in (conversation_id, username, group_id) if x is not None]
        if len(given) != 1:
            raise ChatError(
                "invalid_request",
                "name the conversation by one of conversation_id, username or group_id",
                status="error",
            )
        if username is not None:
            peer = await self.directory.user(username)
            if peer is None or peer.id == me.user_id:
                raise no_such_conversation()
            found = await self.repo.conversation_by_key(direct_pair_key(me.user_id, peer.id))
            if found is None:
                raise no_such_conversation()
            conversation_id = found
        elif group_id is not None:
            conversation_id = group_id
        assert conversation_id is not None
        view = await self.member(me, conversation_id)
        if group_id is not None and view.kind != "group":
            raise no_such_conversation()
        return view

    async def can_see(self, me: Session, row: MessageRow) -> MemberView | None:
        """The reader's membership if ``row`` is within their visible range."""
        view = await self.repo.membership(me.user_id, row.conversation_id)
        if view is None or row.seq < view.first_visible:
            return None
        return view

    async def history(
        self,
        me: Session,
        *,
        conversation_id: int | None,
        username: str | None,
        group_id: int | None,
        before_seq: int | None,
        after_seq: int | None,
        limit: int,
    ) -> dict[str, Any]:
        if before_seq is not None and after_seq is not None:
            raise ChatError(
                "invalid_request", "give before_seq or after_seq, not both", status="error"
            )
        view = await self.resolve(
            me, conversation_id=conversation_id, username=username, group_id=group_id
        )
        first = max(view.first_visible, view.first_stored)
        rows, more = await self.repo.page(
            view.conversation_id,
            first,
            before_seq=before_seq,
            after_seq=after_seq,
            limit=limit,
        )
        out = await self.payloads(me, view, rows)
        return {
            "conversation_id": view.conversation_id,
            "messages": out,
            "has_more": more,
            "first_seq": first,
        }

    async def payloads(
        self, me: Session, view: MemberView, rows: list[MessageRow]
    ) -> list[dict[str, Any]]:
        """Rows as the client sees them: names resolved, own direct messages with status."""
        peer_name = None
        peer_cursors = (0, 0)
        if view.kind == "direct":
            others = await self.repo.cursors_of_others(view.conversation_id, me.user_id)
            if others:
                _, peer_name, delivered, read = others[0]
                peer_cursors = (delivered, read)
        out = []
        for row in rows:
            payload = row_payload(
                row,
                kind=view.kind,
                recipient=(me.username if row.sender_id != me.user_id else peer_name),
                group_name=view.name,
            )
            if view.kind == "direct" and row.sender_id == me.user_id:
                payload["status"] = message_status(row, *peer_cursors)
            out.append(payload)
        return out

    async def conversations(
        self, me: Session, *, limit: int, before: int | None, before_id: int | None
    ) -> dict[str, Any]:
        cursor = None
        if before is not None:
            cursor = (before, before_id if before_id is not None else 2**63 - 1)
        rows = await self.repo.conversation_list(me.user_id, limit + 1, cursor)
        more = len(rows) > limit
        rows = rows[:limit]
        peers = await self.repo.peers(
            me.user_id, [v.conversation_id for v, *_ in rows if v.kind == "direct"]
        )
        out = []
        for view, activity, unread, last in rows:
            peer = peers.get(view.conversation_id)
            last_message = None
            if last is not None and last.seq >= view.first_visible:
                last_message = row_payload(
                    last,
                    kind=view.kind,
                    recipient=(me.username if last.sender_id != me.user_id else peer),
                    group_name=view.name,
                )
            out.append(
                {
                    "conversation_id": view.conversation_id,
                    "kind": view.kind,
                    "peer": peer,
                    "group_id": view.conversation_id if view.kind == "group" else None,
                    "name": view.name if view.kind == "group" else None,
                    "last_seq": view.last_seq,
                    "last_activity": activity,
                    "last_message": last_message,
                    "unread": unread,
                    "delivered_seq": view.delivered_seq,
                    "read_seq": view.read_seq,
                }
            )
        return {"conversations": out, "has_more": more}
