"""MessageWriter: one transaction per batch, acks ride along, one bad draft fails alone."""

from __future__ import annotations

import asyncio

import pytest

from p2sp.server.repository.messages import ConversationKey, CursorMove, Draft, Stored
from p2sp.server.services.writer import MessageWriter


class FakeStore:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[CursorMove]]] = []
        self.seq = 0

    async def close(self) -> None: ...

    async def commit_batch(self, drafts, cursor_moves=()):
        self.calls.append(([d.content for d in drafts], list(cursor_moves)))
        if any(d.content == "poison" for d in drafts):
            raise ValueError("constraint failed")
        out = []
        for d in drafts:
            self.seq += 1
            cid = 42 if isinstance(d.conversation, ConversationKey) else d.conversation
            out.append(Stored(cid, self.seq, self.seq, d.created_at))
        return out


def draft(text: str) -> Draft:
    return Draft(1, 1, text, 0)


async def test_a_burst_is_one_batch_with_the_acks_and_callbacks_in_order() -> None:
    store = FakeStore()
    writer = MessageWriter(store, commit_window=0.01, max_batch=100)  # type: ignore[arg-type]
    writer.start()
    await asyncio.sleep(0)  # the writer now waits for work, then for the window
    seen: list[int] = []
    results = await asyncio.gather(
        *(writer.write(draft(f"m{i}"), lambda s: seen.append(s.seq)) for i in range(5)),
        writer.advance([CursorMove(7, 1, 3)]),
    )
    await writer.stop()
    assert store.calls == [(["m0", "m1", "m2", "m3", "m4"], [CursorMove(7, 1, 3)])]
    assert [r.seq for r in results[:5]] == [1, 2, 3, 4, 5]
    assert results[5] is None
    assert seen == [1, 2, 3, 4, 5]


async def test_one_bad_draft_fails_only_its_sender() -> None:
    store = FakeStore()
    writer = MessageWriter(store, commit_window=0.01, max_batch=100)  # type: ignore[arg-type]
    writer.start()
    results = await asyncio.gather(
        writer.write(draft("ok1")),
        writer.write(draft("poison")),
        writer.write(draft("ok2")),
        return_exceptions=True,
    )
    assert isinstance(results[1], RuntimeError)
    assert [r.seq for r in (results[0], results[2])] == [1, 2]
    # The writer is still alive after the failure.
    assert (await writer.write(draft("later"))).seq == 3
    await writer.stop()


async def test_a_failing_callback_does_not_stop_the_writer() -> None:
    writer = MessageWriter(FakeStore(), commit_window=0, max_batch=10)  # type: ignore[arg-type]
    writer.start()

    def boom(_: Stored) -> None:
        raise KeyError("bug in delivery")

    assert (await writer.write(draft("a"), boom)).seq == 1
    assert (await writer.write(draft("b"))).seq == 2
    await writer.stop()
    with pytest.raises(RuntimeError):
        await writer.write(draft("after stop"))


async def test_the_id_of_a_conversation_created_in_a_batch_is_learned() -> None:
    learned: list[tuple[ConversationKey, int]] = []
    writer = MessageWriter(
        FakeStore(),  # type: ignore[arg-type]
        commit_window=0.01,
        max_batch=100,
        learn=lambda key, cid: learned.append((key, cid)),
    )
    writer.start()
    key = ConversationKey("d:1:2", "direct", (1, 2))
    await asyncio.gather(writer.write(Draft(key, 1, "first", 0)), writer.write(draft("known")))
    await writer.stop()
    assert learned == [(key, 42)]
