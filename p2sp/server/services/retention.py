"""Retention: old messages deleted in the background, never an unreceived one.

``retention_days`` (messages older than that many days) and
``max_messages_per_conversation`` (only the newest N of each conversation
are kept) are both off (0) by default. Every ``retention_interval`` seconds
the task looks for conversations with something to delete and deletes in
batches of ``retention_batch``, yielding to the event loop between
batches. What may go (a prefix of each conversation, nothing some member
has not acknowledged) is ``RetentionRepository``'s rule; history's
``first_seq`` follows the oldest message kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from p2sp.common.message import now_ms
from p2sp.server.repository.retention import RetentionRepository

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


class RetentionService:
    def __init__(
        self,
        repo: RetentionRepository,
        *,
        days: float,
        keep: int,
        interval: float,
        batch: int,
    ) -> None:
        self.repo = repo
        self.days = days
        self.keep = keep
        self.interval = interval
        self.batch = batch
        self._task: asyncio.Task[None] | None = None
        self.deleted = 0

    @property
    def enabled(self) -> bool:
        return self.days > 0 or self.keep > 0

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.warning("retention sweep failed; trying again later", exc_info=True)
            await asyncio.sleep(self.interval)

    async def sweep(self) -> int:
        """One pass over every conversation; returns how many messages went."""
        cutoff = now_ms() - int(self.days * DAY_MS) if self.days > 0 else None
        keep = self.keep if self.keep > 0 else None
        total = 0
        for conversation_id, last_seq in await self.repo.candidates(cutoff, keep):
            below = last_seq - keep + 1 if keep is not None else None
            awaited = await self.repo.first_awaited(conversation_id)
            while True:
                n = await self.repo.delete_batch(
                    conversation_id,
                    awaited,
                    cutoff_ms=cutoff,
                    below_seq=below,
                    batch=self.batch,
                )
                total += n
                if n < self.batch:
                    break
                await asyncio.sleep(0)
        if total:
            self.deleted += total
            log.info("retention deleted %d messages", total)
        return total
