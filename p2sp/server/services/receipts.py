"""Read cursors, receipt events and the receipts query.

Two cursors per member say how far they got: ``delivered_seq`` (moved by
``ack``) and ``read_seq`` (moved by ``read``, which also moves
``delivered_seq`` up to it). Both move only forward, in the message
writer's batch, like everything else that writes the hot tables.

When a member's cursors move, the other member of a direct chat, and the
online members of a group of at most ``receipt_group_limit`` members, get a
``receipt`` event ``{conversation_id, username, delivered_seq, read_seq}``:
at most one per member and conversation per ``interval`` (1 s), carrying
the latest values, so a client acking every message costs its peers one
event a second, not one per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from p2sp.common.exceptions import ChatError, invalid_request
from p2sp.common.message import event_frame
from p2sp.server.managers.connection import Session
from p2sp.server.managers.router import Router
from p2sp.server.repository.history import HistoryRepository
from p2sp.server.repository.messages import CursorMove
from p2sp.server.services.history import HistoryService
from p2sp.server.services.writer import MessageWriter

log = logging.getLogger(__name__)

MAX_LISTED = 200
MAX_KNOWN = 100_000

Key = tuple[int, int]  # (conversation_id, user_id)


class ReceiptService:
    def __init__(
        self,
        *,
        repo: HistoryRepository,
        history: HistoryService,
        writer: MessageWriter,
        router: Router,
        group_members: Callable[[int], Awaitable[frozenset[int]]],
        group_limit: int,
        interval: float = 1.0,
    ) -> None:
        self.repo = repo
        self.history = history
        self.writer = writer
        self.router = router
        self.group_members = group_members
        self.group_limit = group_limit
        self.interval = interval
        #: Latest moves not yet announced, per (conversation, mover).
        self._pending: dict[Key, tuple[str, int, int]] = {}
        #: Keys announced less than ``interval`` ago.
        self._cooling: set[Key] = set()
        #: Last known (delivered, read) per key, so an ack's receipt can say
        #: the read cursor without a query.
        self._known: OrderedDict[Key, tuple[int, int]] = OrderedDict()
        #: Conversation -> its kind and, for a direct chat, its two members.
        self._direct: dict[int, tuple[str, tuple[int, ...]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- actions --------------------------------------------------------------

    async def read(self, me: Session, conversation_id: int, seq: int) -> dict[str, Any]:
        view = await self.history.member(me, conversation_id)
        if seq > view.last_seq:
            raise invalid_request(
                f"seq: conversation {conversation_id} has no message {seq} "
                f"(last is {view.last_seq})"
            )
        await self.writer.advance([CursorMove(me.user_id, conversation_id, seq, read=True)])
        self.moved(
            me.user_id,
            me.username,
            conversation_id,
            max(view.delivered_seq, seq),
            max(view.read_seq, seq),
        )
        return {"unread": await self.repo.unread(me.user_id, conversation_id)}

    async def receipts(self, me: Session, conversation_id: int, seq: int) -> dict[str, Any]:
        view = await self.history.member(me, conversation_id)
        if seq < 1 or seq > view.last_seq:
            raise ChatError(
                "invalid_request",
                f"seq: conversation {conversation_id} has no message {seq}",
                status="error",
            )
        sender_id = await self.repo.sender_at(conversation_id, seq)
        others = await self.repo.cursors_of_others(conversation_id, sender_id)
        delivered = [name for _, name, d, _ in others if d >= seq]
        read = [name for _, name, _, r in others if r >= seq]
        return {
            "delivered": delivered[:MAX_LISTED],
            "read": read[:MAX_LISTED],
            "delivered_count": len(delivered),
            "read_count": len(read),
        }

    def acked(self, me: Session, moves: dict[int, int]) -> None:
        """Acks committed: announce the new delivery cursors."""
        for conversation_id, seq in moves.items():
            known = self._known.get((conversation_id, me.user_id))
            read = known[1] if known is not None else -1
            self.moved(me.user_id, me.username, conversation_id, seq, read)

    # -- announcing -----------------------------------------------------------

    def moved(
        self, user_id: int, username: str, conversation_id: int, delivered: int, read: int
    ) -> None:
        """A member's cursors moved (``read`` -1: not known here)."""
        key = (conversation_id, user_id)
        pending = self._pending.get(key)
        if pending is not None:
            delivered = max(delivered, pending[1])
            read = max(read, pending[2])
        known = self._known.get(key)
        if known is not None:
            delivered, read = max(delivered, known[0]), max(read, known[1])
        self._pending[key] = (username, delivered, read)
        if key not in self._cooling:
            self._fire(key)

    def _fire(self, key: Key) -> None:
        username, delivered, read = self._pending.pop(key)
        self._cooling.add(key)
        asyncio.get_running_loop().call_later(self.interval, self._cool, key)
        task = asyncio.get_running_loop().create_task(self._send(key, username, delivered, read))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _cool(self, key: Key) -> None:
        self._cooling.discard(key)
        if key in self._pending:
            self._fire(key)

    async def _send(self, key: Key, username: str, delivered: int, read: int) -> None:
        conversation_id, user_id = key
        try:
            if read < 0:
                view = await self.repo.membership(user_id, conversation_id)
                if view is None:
                    return
                delivered, read = max(delivered, view.delivered_seq), view.read_seq
            self._remember(key, delivered, read)
            audience = await self._audience(conversation_id, user_id)
            if not audience:
                return
            frame = event_frame(
                "receipt",
                {
                    "conversation_id": conversation_id,
                    "username": username,
                    "delivered_seq": delivered,
                    "read_seq": read,
                },
            )
            self.router.deliver_many(audience, frame)
        except Exception:
            # A receipt is a courtesy: a failure costs an event, never a message.
            log.warning("sending a receipt for %s failed", key, exc_info=True)

    def _remember(self, key: Key, delivered: int, read: int) -> None:
        self._known[key] = (delivered, read)
        self._known.move_to_end(key)
        if len(self._known) > MAX_KNOWN:
            self._known.popitem(last=False)

    async def _audience(self, conversation_id: int, mover: int) -> list[int]:
        """Who is told about ``mover``'s cursors in this conversation."""
        found = self._direct.get(conversation_id)
        if found is None:
            info = await self.repo.conversation_info(conversation_id)
            if info is None:
                return []
            member_ids: tuple[int, ...] = ()
            if info.kind == "direct":
                member_ids = tuple(await self.repo.member_ids(conversation_id))
            if len(self._direct) >= MAX_KNOWN:
                self._direct.clear()
            found = self._direct[conversation_id] = (info.kind, member_ids)
        kind, member_ids = found
        if kind == "direct":
            return [m for m in member_ids if m != mover]
        if kind == "group":
            group = await self.group_members(conversation_id)
            if len(group) > self.group_limit:
                return []
            return [m for m in group if m != mover]
        return []

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
