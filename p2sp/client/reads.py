"""Read cursors, batched: ``mark_read(conversation_id, seq)`` as messages are shown.

``read`` moves a user's ``read_seq`` forward (docs/protocol.md, "History,
edits, receipts and search"): unread counts drop and the other members get a
``receipt``. An application marks what it has shown; the SDK sends one
``read`` per conversation with the highest seq, ``read_interval`` seconds
after the first mark, on ``flush_reads()``, and before the session ends.
Marks that could not be sent (the connection dropped) are kept for the
re-login; a login as someone else drops them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from p2sp.client.config import READ_INTERVAL
from p2sp.client.connection import log
from p2sp.client.errors import ConnectionLost, RequestTimeout
from p2sp.client.session import Session
from p2sp.common.exceptions import ChatError


class Reads(Session):
    """``Session`` plus batched read cursors."""

    def __init__(self, *args: Any, read_interval: float = READ_INTERVAL, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: longest wait, in seconds, before a ``mark_read`` is sent
        self.read_interval = read_interval
        self._read_pending: dict[int, int] = {}
        self._read_sent: dict[int, int] = {}  # highest seq sent per conversation
        self._read_task: asyncio.Task[None] | None = None
        self._read_lock = asyncio.Lock()

    async def read(self, conversation_id: int, seq: int) -> int:
        """Move the read cursor to ``seq`` now; returns the unread count after the move.

        ``mark_read`` does the same, batched.
        """
        data = await self.call("read", conversation_id=conversation_id, seq=seq)
        self._read_sent[conversation_id] = max(seq, self.read_marked(conversation_id))
        unread = data.get("unread")
        return unread if isinstance(unread, int) else 0

    def mark_read(self, conversation_id: int, seq: int) -> None:
        """Mark ``conversation_id`` read up to ``seq`` (sent batched; see the module doc).

        A seq at or below one already marked does nothing: cursors only move
        forward.
        """
        if seq <= max(
            self._read_pending.get(conversation_id, 0), self.read_marked(conversation_id)
        ):
            return
        self._read_pending[conversation_id] = seq
        if not self._closing and (self._read_task is None or self._read_task.done()):
            self._read_task = asyncio.create_task(self._read_worker(), name="p2sp-client-reads")

    def read_marked(self, conversation_id: int) -> int:
        """The highest seq this client has told the server was read (0: none)."""
        return self._read_sent.get(conversation_id, 0)

    @property
    def pending_reads(self) -> dict[int, int]:
        """Marks not sent yet: conversation id -> highest seq (a copy)."""
        return dict(self._read_pending)

    async def flush_reads(self) -> None:
        """Send every pending mark now (before asking for unread counts, say)."""
        async with self._read_lock:
            if not self._read_pending or not (self._connected and self.auth_token):
                return
            batch, self._read_pending = self._read_pending, {}
            owner = self._generation
            for conv, seq in batch.items():
                try:
                    await self.read(conv, seq)
                except (ConnectionLost, RequestTimeout):
                    if owner == self._generation:  # kept for the re-login
                        self._read_pending[conv] = max(seq, self._read_pending.get(conv, 0))
                    continue
                except ChatError as exc:
                    log.warning("the server refused read %s/%s: %s", conv, seq, exc.code)

    # --- hooks ---------------------------------------------------------------

    def _session_started(self, *, new_user: bool) -> None:
        super()._session_started(new_user=new_user)
        if new_user:
            self._read_pending.clear()
            self._read_sent.clear()
        elif self._read_pending and (self._read_task is None or self._read_task.done()):
            self._read_task = asyncio.create_task(self._read_worker(), name="p2sp-client-reads")

    async def _session_ending(self) -> None:
        await super()._session_ending()
        await self._final_read_flush()

    async def _before_close(self, *, send_acks: bool) -> None:
        await super()._before_close(send_acks=send_acks)
        if not self._closing:
            await self._final_read_flush()

    def _cancel_background(self) -> None:
        super()._cancel_background()
        task = self._read_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    # --- internals -----------------------------------------------------------

    async def _read_worker(self) -> None:
        """Flush every ``read_interval`` while marks wait (marks made during a flush too).

        Ends when none is pending, or when the session is down: the re-login
        starts it again.
        """
        while self._read_pending and not self._closing:
            await asyncio.sleep(self.read_interval)
            if not (self._connected and self.auth_token):
                return
            await self.flush_reads()

    async def _final_read_flush(self) -> None:
        """Best effort before the session ends (``close``, ``logout``)."""
        if not self._read_pending:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(self.request_timeout, 1.0)):
                await self.flush_reads()
