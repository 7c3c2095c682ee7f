"""Group commit: messages that arrive together are committed together.

One task owns the write path (messages and delivery-cursor moves from
``ack``). It takes whatever is queued (after a
short window, ``commit_window`` seconds, to let a burst gather), stores them
in one transaction, then runs each draft's ``on_commit`` callback in queue
order before resolving the senders' futures. That order is the
per-conversation order promise: seqs are assigned in queue order inside the
transaction, and live events go out in the same order, from one place.

If a batch fails, its drafts are retried one by one, so a single bad draft
fails only its own sender.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from p2sp.common.exceptions import ChatError
from p2sp.server.repository.messages import (
    ConversationKey,
    CursorMove,
    Draft,
    Gone,
    MessageStore,
    Stored,
)

log = logging.getLogger(__name__)

OnCommit = Callable[[Stored], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Pending(Generic[T]):
    """An action's answer that waits for the writer's commit.

    The action has done everything that must happen in request order (its
    checks, and queueing its draft or cursor move, which fixes its place in
    the commit order); the handler answers with ``data(result)`` once
    ``future`` resolves and meanwhile goes on with the connection's next
    request. So a client with several sends in flight has them committed in
    one batch instead of one batch each, in order.
    """

    future: asyncio.Future[T]
    data: Callable[[T], dict[str, Any] | None]


@dataclass(slots=True)
class _Job:
    """A draft to store, or (``draft`` None) cursor moves to apply."""

    draft: Draft | None
    on_commit: OnCommit | None
    moves: Sequence[CursorMove] = ()
    future: asyncio.Future[Stored | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class MessageWriter:
    """The single writer of messages; ``await write(draft)`` returns once committed."""

    def __init__(
        self,
        store: MessageStore,
        *,
        commit_window: float,
        max_batch: int,
        learn: Callable[[ConversationKey, int], None] | None = None,
    ) -> None:
        self.store = store
        self.commit_window = commit_window
        self.max_batch = max_batch
        #: Told the id each keyed conversation was stored under (first
        #: messages and their resends alike), so later drafts name it by id.
        self.learn = learn
        self._queue: list[_Job] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        #: Transactions, messages and ack requests committed since start.
        self.batches = 0
        self.committed = 0
        self.acks = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="message-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop (and let the store close its connection)."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.store.close()

    async def write(self, draft: Draft, on_commit: OnCommit | None = None) -> Stored:
        """Store ``draft``; returns once it is committed."""
        return await self.submit(draft, on_commit)

    def submit(self, draft: Draft, on_commit: OnCommit | None = None) -> asyncio.Future[Stored]:
        """Queue ``draft`` now (its place in the commit order is fixed here);
        the future resolves once it is committed. ``on_commit`` runs first."""
        return self._enqueue(_Job(draft, on_commit))  # type: ignore[return-value]

    def advance(self, moves: Sequence[CursorMove]) -> asyncio.Future[None]:
        """Move delivery cursors in the next batch: acks share the messages'
        transaction instead of queueing for the writer connection one by one."""
        return self._enqueue(_Job(None, None, moves))  # type: ignore[return-value]

    def _enqueue(self, job: _Job) -> asyncio.Future[Stored | None]:
        if self._closing:
            raise RuntimeError("the message writer is stopped")
        self._queue.append(job)
        self._wakeup.set()
        return job.future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                if self.commit_window > 0 and not self._closing:
                    await asyncio.sleep(self.commit_window)
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            if not batch:
                continue
            try:
                await self._commit(batch)
            except Exception as exc:
                # A bug here must not stop the only writer: fail this batch's
                # senders (they get internal_error) and go on.
                log.exception("the message writer failed a batch")
                for job in batch:
                    self._fail(job, exc)

    async def _commit(self, batch: list[_Job]) -> None:
        drafts = [j.draft for j in batch if j.draft is not None]
        moves = [m for j in batch for m in j.moves]
        try:
            stored = iter(await self.store.commit_batch(drafts, moves))
        except Exception:
            if len(batch) == 1:
                log.exception("storing a message failed")
                self._fail(batch[0], RuntimeError("storing the message failed"))
                return
            log.warning("a batch of %d failed; retrying one by one", len(batch), exc_info=True)
            for job in batch:
                await self._commit([job])
            return
        self.batches += 1
        self.committed += len(drafts)
        self.acks += len(batch) - len(drafts)
        learn = self.learn
        for job in batch:
            result = next(stored) if job.draft is not None else None
            if type(result) is Gone:
                job.future.set_exception(
                    ChatError(job.draft.gone_code, "this conversation no longer exists")  # type: ignore[union-attr]
                )
                continue
            if result is not None and learn is not None:
                conv = job.draft.conversation  # type: ignore[union-attr]
                if type(conv) is ConversationKey:
                    learn(conv, result.conversation_id)
            if result is not None and job.on_commit is not None and not result.duplicate:
                try:
                    job.on_commit(result)
                except Exception:
                    log.exception("delivering a committed message failed")
            if not job.future.done():
                job.future.set_result(result)

    @staticmethod
    def _fail(job: _Job, exc: Exception) -> None:
        if not job.future.done():
            job.future.set_exception(exc)
