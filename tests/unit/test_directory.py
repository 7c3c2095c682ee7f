"""The Directory's friend cache must never serve a set older than a committed add."""

from __future__ import annotations

import asyncio

from p2sp.server.services.directory import Directory


class SlowFriends:
    """friend_ids takes its snapshot, then yields before answering (a slow query)."""

    def __init__(self) -> None:
        self.pairs: set[tuple[int, int]] = set()
        self.release = asyncio.Event()
        self.loads = 0

    async def friend_ids(self, user_id: int) -> set[int]:
        self.loads += 1
        snapshot = {b for a, b in self.pairs if a == user_id}
        await self.release.wait()
        return snapshot


async def test_an_add_during_a_load_is_not_lost() -> None:
    friends = SlowFriends()
    directory = Directory(None, friends)  # type: ignore[arg-type]
    first = asyncio.ensure_future(directory.friends_of(1))  # snapshot: no friends
    second = asyncio.ensure_future(directory.friends_of(1))
    await asyncio.sleep(0)
    friends.pairs |= {(1, 2), (2, 1)}  # an add commits while the load is in flight
    directory.remember_friends(1, 2)
    friends.release.set()
    assert await first == {2}
    assert await second == {2}
    assert friends.loads == 1  # the second caller shared the first load
    assert await directory.friends_of(1) == {2}


async def test_cached_sets_are_updated_in_place() -> None:
    friends = SlowFriends()
    friends.release.set()
    directory = Directory(None, friends)  # type: ignore[arg-type]
    assert await directory.friends_of(1) == set()
    directory.remember_friends(1, 3)
    assert await directory.friends_of(1) == {3}
    assert friends.loads == 1
