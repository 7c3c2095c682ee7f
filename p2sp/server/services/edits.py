"""Replies, edits and retractions: who may change what, and until when.

The rules in one place:

* ``reply_to`` names a message of the same conversation that the sender may
  see; anything else is ``no_such_message``.
* Only the sender edits, only a text message that is not retracted, within
  ``edit_window`` seconds of sending (0 turns editing off).
* The sender retracts within ``retract_window`` seconds; a group's owner and
  admins retract any message of their group, server admins any message, at
  any time.
* An edit or a retraction is itself a message of the conversation (type
  ``edit`` / ``retract``, ``target_id``), committed by the message writer,
  which applies the change to the target in the same transaction: the new
  text (the old one kept as a version), or the erasure of the text, every
  earlier version and the texts of the edit events.
* A message id that does not exist or that the user may not see is
  ``no_such_message``, so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from p2sp.common.exceptions import ChatError
from p2sp.common.message import now_ms
from p2sp.server.events import MessageView, message_event
from p2sp.server.managers.connection import Session
from p2sp.server.managers.router import Router
from p2sp.server.repository.history import (
    REPLY_EXCERPT,
    HistoryRepository,
    MemberView,
    MessageRow,
)
from p2sp.server.repository.messages import ConversationKey, Draft, Stored
from p2sp.server.services.history import HistoryService
from p2sp.server.services.writer import MessageWriter, Pending

#: Types of message that can be replied to, edited (text only) or retracted.
CHANGEABLE = ("text", "image", "file")

MAX_CACHED_DIRECT = 200_000


def no_such_message() -> ChatError:
    return ChatError("no_such_message", "no such message among those you can see")


class EditService:
    def __init__(
        self,
        *,
        repo: HistoryRepository,
        history: HistoryService,
        writer: MessageWriter,
        router: Router,
        group_members: Callable[[int], Awaitable[frozenset[int]]],
        check_text: Callable[[str], Any],
        is_admin: Callable[[Session], Awaitable[bool]],
        edit_window: float,
        retract_window: float,
    ) -> None:
        self.repo = repo
        self.history = history
        self.writer = writer
        self.router = router
        self.group_members = group_members
        #: Direct chat -> its two members (they never change).
        self._direct: dict[int, tuple[int, ...]] = {}
        self.check_text = check_text
        self.is_admin = is_admin
        self.edit_window = edit_window
        self.retract_window = retract_window

    async def visible(self, me: Session, message_id: int) -> tuple[MessageRow, MemberView]:
        row = await self.repo.message(message_id)
        if row is None:
            raise no_such_message()
        view = await self.history.can_see(me, row)
        if view is None:
            raise no_such_message()
        return row, view

    async def reply_to(
        self, me: Session, conversation: int | ConversationKey, message_id: int
    ) -> dict[str, Any]:
        """The excerpt of the message a new one replies to (``reply_to`` of the
        event); it must be a visible message of the same conversation."""
        if type(conversation) is ConversationKey:
            found = await self.repo.conversation_by_key(conversation.pair_key)
            if found is None:  # no message was ever sent here
                raise no_such_message()
            conversation = found
        row, _ = await self.visible(me, message_id)
        if row.conversation_id != conversation or row.type not in CHANGEABLE:
            raise no_such_message()
        return {
            "message_id": row.message_id,
            "seq": row.seq,
            "from": row.sender,
            "text": row.text[:REPLY_EXCERPT],
        }

    async def edit(self, me: Session, message_id: int, text: str) -> Pending[Stored]:
        self.check_text(text)
        row, view = await self.visible(me, message_id)
        if row.sender_id != me.user_id:
            raise ChatError("not_permitted", "only the sender edits a message")
        if row.type != "text":
            raise ChatError("not_permitted", "only a text message can be edited")
        if row.retracted:
            raise ChatError("message_retracted", "this message was retracted")
        if self.edit_window <= 0:
            raise ChatError("edit_window_passed", "editing is turned off on this server")
        if now_ms() - row.sent_at > self.edit_window * 1000:
            raise ChatError(
                "edit_window_passed",
                f"a message can be edited for {self.edit_window:g} s after it was sent",
            )
        self._check_group(view)
        draft = Draft(
            view.conversation_id, me.user_id, text, now_ms(), type="edit", target_id=row.message_id
        )
        future = self.writer.submit(draft, await self._deliverer(view, me, draft))
        return Pending(
            future,
            lambda s: {"conversation_id": s.conversation_id, "seq": s.seq, "edited_at": s.sent_at},
        )

    async def retract(self, me: Session, message_id: int) -> Pending[Stored]:
        admin = await self.is_admin(me)
        try:
            row, view = await self.visible(me, message_id)
        except ChatError:
            if not admin:
                raise
            row, view = await self._as_admin(message_id)
        if row.type not in CHANGEABLE:
            raise ChatError("not_permitted", "only a message someone sent can be retracted")
        if row.retracted:
            raise ChatError("message_retracted", "this message was already retracted")
        moderator = admin or (view.kind == "group" and view.role in ("owner", "admin"))
        if not moderator:
            if row.sender_id != me.user_id:
                raise ChatError(
                    "not_permitted", "only the sender or a moderator retracts a message"
                )
            if now_ms() - row.sent_at > self.retract_window * 1000:
                raise ChatError(
                    "retract_window_passed",
                    f"a message can be retracted for {self.retract_window:g} s after it was sent",
                )
        self._check_group(view)
        draft = Draft(
            view.conversation_id, me.user_id, "", now_ms(), type="retract", target_id=row.message_id
        )
        future = self.writer.submit(draft, await self._deliverer(view, me, draft))
        return Pending(future, lambda s: {"conversation_id": s.conversation_id, "seq": s.seq})

    async def _deliverer(
        self, view: MemberView, me: Session, draft: Draft
    ) -> Callable[[Stored], None]:
        """The event of an edit or retraction, for every member but its author,
        once committed (members read now, in request order, as for a send)."""
        if view.kind == "group":
            members: frozenset[int] | tuple[int, ...] = await self.group_members(
                view.conversation_id
            )
        elif view.kind == "direct":
            members = self._direct.get(view.conversation_id) or ()
            if not members:
                members = tuple(await self.repo.member_ids(view.conversation_id))
                if len(self._direct) >= MAX_CACHED_DIRECT:
                    self._direct.clear()
                self._direct[view.conversation_id] = members
        else:
            members = ()
        names = await self.repo.peers(me.user_id, [view.conversation_id])
        router = self.router
        author = me.username

        def deliver(stored: Stored) -> None:
            frame = message_event(
                MessageView(
                    stored.conversation_id,
                    stored.seq,
                    stored.message_id,
                    view.kind,
                    author,
                    draft.content,
                    draft.type,
                    stored.sent_at,
                    recipient=names.get(view.conversation_id) if view.kind == "direct" else None,
                    group_id=view.conversation_id if view.kind == "group" else None,
                    group_name=view.name if view.kind == "group" else None,
                    target_id=draft.target_id,
                )
            )
            cid, seq = stored.conversation_id, stored.seq
            if view.kind == "group":
                router.deliver_group(members, me.user_id, frame, cid, seq)  # type: ignore[arg-type]
            else:
                for uid in members:
                    if uid != me.user_id:
                        router.deliver(uid, frame, cid, seq)

        return deliver

    async def _as_admin(self, message_id: int) -> tuple[MessageRow, MemberView]:
        """A server admin may retract in a conversation they are not a member of."""
        row = await self.repo.message(message_id)
        if row is None:
            raise no_such_message()
        info = await self.repo.conversation_info(row.conversation_id)
        if info is None:
            raise no_such_message()
        return row, info

    @staticmethod
    def _check_group(view: MemberView) -> None:
        if view.blocked:
            raise ChatError("group_blocked", f"{view.name} is blocked by an administrator")

    async def versions(self, me: Session, message_id: int) -> dict[str, Any]:
        """Every text the message has had, oldest first; the current one last."""
        row, _ = await self.visible(me, message_id)
        if row.retracted:
            return {"versions": []}
        earlier = await self.repo.versions(row.message_id)
        out = [{"text": text, "edited_at": at} for text, at in earlier]
        if out:
            out[0]["edited_at"] = None  # the original was not an edit
        out.append({"text": row.text, "edited_at": row.edited_at})
        return {"versions": out}
