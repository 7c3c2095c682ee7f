"""Acknowledgements: the SDK's side of at-least-once delivery (docs/protocol.md, "Delivery").

The server moves a user's delivery cursor only on ``ack``. Under
``auto_ack`` a message becomes due for an ack when the application takes it
from the event queue (``p2sp.client.events`` calls ``_note_taken``); acks
are batched, one request per flush carrying the highest seq per conversation
(acks are cumulative): ``ack_interval`` seconds after the first one, at once
when ``ACK_BATCH`` are waiting, when ``sync_done`` is handed over, and when
the session ends. Acks that could not be sent (the connection dropped) are
kept and sent after the re-login; a login as someone else drops them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable, Iterable
from typing import Any

from p2sp.client.config import ACK_BATCH, ACK_INTERVAL, MAX_ACKS_PER_REQUEST
from p2sp.client.connection import log
from p2sp.client.errors import ConnectionLost, RequestTimeout
from p2sp.client.session import Session
from p2sp.common.exceptions import ChatError

ConversationId = Hashable


class Acks(Session):
    """``Session`` plus batched acknowledgements."""

    def __init__(
        self,
        *args: Any,
        auto_ack: bool = True,
        ack_interval: float = ACK_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        #: ack every message once the application has taken it from the queue
        self.auto_ack = auto_ack
        #: longest wait, in seconds, before a taken message is acknowledged
        self.ack_interval = ack_interval
        self._ack_pending: dict[ConversationId, int] = {}
        self._ack_count = 0  # messages taken since the last flush
        self._ack_now = asyncio.Event()
        self._ack_task: asyncio.Task[None] | None = None
        self._ack_lock = asyncio.Lock()

    @property
    def pending_acks(self) -> dict[ConversationId, int]:
        """Acknowledgements not sent yet: conversation id -> highest seq (a copy)."""
        return dict(self._ack_pending)

    async def ack(self, conversation_id: ConversationId, seq: int) -> None:
        """Acknowledge every message of ``conversation_id`` up to ``seq``."""
        await self.ack_many([(conversation_id, seq)])

    async def ack_many(self, acks: Iterable[tuple[ConversationId, int] | dict[str, Any]]) -> None:
        """Acknowledge several conversations at once.

        ``acks`` holds ``(conversation_id, seq)`` pairs or
        ``{"conversation_id", "seq"}`` dicts; only the highest seq per
        conversation is sent (acks are cumulative), in requests of at most
        1000 entries.
        """
        highest: dict[ConversationId, int] = {}
        for item in acks:
            if isinstance(item, dict):
                conv, seq = item["conversation_id"], item["seq"]
            else:
                conv, seq = item
            highest[conv] = max(seq, highest.get(conv, seq))
        await self._send_acks(highest)

    # --- hooks ---------------------------------------------------------------

    def _session_started(self, *, new_user: bool) -> None:
        super()._session_started(new_user=new_user)
        if new_user:  # another user's conversations: these acks are not theirs
            self._ack_pending.clear()
            self._ack_count = 0
        self._request_ack_flush(now=True)  # acks left over from before a drop

    async def _session_ending(self) -> None:
        await super()._session_ending()
        await self._final_ack_flush()

    async def _before_close(self, *, send_acks: bool) -> None:
        await super()._before_close(send_acks=send_acks)
        if not send_acks:
            self._ack_pending.clear()
            self._ack_count = 0
        if not self._closing:
            await self._final_ack_flush()

    def _cancel_background(self) -> None:
        super()._cancel_background()
        task = self._ack_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    # --- internals -----------------------------------------------------------

    def _note_taken(self, conv: ConversationId, seq: int) -> None:
        """A message left the queue (a duplicate too: it came back because an ack was lost)."""
        if not self.auto_ack:
            return
        self._ack_pending[conv] = max(seq, self._ack_pending.get(conv, 0))
        self._ack_count += 1
        self._request_ack_flush(now=self._ack_count >= ACK_BATCH)

    def _request_ack_flush(self, *, now: bool) -> None:
        if not self._ack_pending or self._closing:
            return
        if now:
            self._ack_now.set()
        task = self._ack_task
        if task is None or task.done():
            self._ack_task = asyncio.create_task(self._ack_worker(), name="p2sp-client-acks")

    async def _ack_worker(self) -> None:
        """Flush pending acks every ``ack_interval`` (or at once when asked) while any wait.

        Ends when nothing is pending, or when the session is down: the
        re-login asks for a flush again.
        """
        while self._ack_pending and not self._closing:
            if not self._ack_now.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.ack_interval):
                        await self._ack_now.wait()
            self._ack_now.clear()
            if not await self._flush_acks():
                return

    async def _flush_acks(self) -> bool:
        """Send every pending ack; False if the session is down (they stay pending)."""
        async with self._ack_lock:
            if not self._ack_pending:
                return True
            if not (self._connected and self.auth_token):
                return False
            batch, self._ack_pending = self._ack_pending, {}
            self._ack_count = 0
            generation = self._generation
            try:
                await self._send_acks(batch)
            except (ConnectionLost, RequestTimeout) as exc:
                log.debug("acks not sent (%s); kept for the next session", exc)
                self._requeue_acks(batch, generation)
                return False
            except ChatError as exc:
                if exc.code == "not_authenticated":
                    self._requeue_acks(batch, generation)
                    return False
                log.warning("the server refused acks: %s (%s)", exc.message, exc.code)
            return True

    def _requeue_acks(self, batch: dict[ConversationId, int], generation: int) -> None:
        if generation != self._generation:
            return  # another user logged in meanwhile: these are not theirs
        for conv, seq in batch.items():
            self._ack_pending[conv] = max(seq, self._ack_pending.get(conv, 0))

    async def _send_acks(self, highest: dict[ConversationId, int]) -> None:
        entries = [{"conversation_id": c, "seq": s} for c, s in highest.items()]
        for start in range(0, len(entries), MAX_ACKS_PER_REQUEST):
            await self.call("ack", acks=entries[start : start + MAX_ACKS_PER_REQUEST])

    async def _final_ack_flush(self) -> None:
        """Best-effort flush before the session ends (``close``, ``logout``)."""
        if not self._ack_pending or not (self._connected and self.auth_token):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(self.request_timeout, 1.0)):
                await self._flush_acks()
