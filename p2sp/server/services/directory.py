"""In-process caches of facts the hot path asks about on every message.

Who a name belongs to, who is friends with whom, and which conversation a
pair of users shares are read from the database once and then answered from
memory: a ``send`` costs no lookup query. These facts only change through
this process's own services (names are never reused or renamed, friendships
are only added, via ``remember_friends``; conversation ids never change),
so the caches cannot go stale within one process. The cluster will need an
invalidation message on the bus when it lands.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from p2sp.common.usernames import name_key
from p2sp.server.db.models import direct_pair_key, system_pair_key
from p2sp.server.repository.friends import FriendRepository
from p2sp.server.repository.messages import ConversationKey
from p2sp.server.repository.users import SYSTEM_USER, UserRepository

MAX_NAMES = 200_000
MAX_FRIEND_SETS = 50_000
MAX_CONVERSATIONS = 200_000


@dataclass(frozen=True, slots=True)
class UserRef:
    id: int
    username: str


class Directory:
    def __init__(
        self,
        users: UserRepository,
        friends: FriendRepository,
    ) -> None:
        self._users = users
        self._friends = friends
        self._by_key: dict[str, UserRef] = {}
        self._friend_sets: dict[int, set[int]] = {}
        self._loading: dict[int, asyncio.Future[set[int]]] = {}
        self._added_while_loading: dict[int, set[int]] = {}
        self._keyed: dict[tuple[int, int], int] = {}

    async def user(self, username: str, *, allow_system: bool = False) -> UserRef | None:
        """The user of that name, or None (not cached: it may be registered later).

        The ``system`` account (owner of the server's rooms) is nobody to
        befriend, message or invite, so it is found only when asked for.
        """
        key = name_key(username)
        if key is None or (key == SYSTEM_USER and not allow_system):
            return None
        ref = self._by_key.get(key)
        if ref is None:
            row = await self._users.by_key(key)
            if row is None:
                return None
            if len(self._by_key) >= MAX_NAMES:
                self._by_key.clear()
            ref = self._by_key[key] = UserRef(row.id, row.username)
        return ref

    async def friends_of(self, user_id: int) -> set[int]:
        found = self._friend_sets.get(user_id)
        if found is not None:
            return found
        # One load per user at a time: a second caller waits for the first
        # instead of racing it to the cache with an older snapshot.
        load = self._loading.get(user_id)
        if load is None:
            load = self._loading[user_id] = asyncio.ensure_future(self._load_friends(user_id))
        return await asyncio.shield(load)

    async def _load_friends(self, user_id: int) -> set[int]:
        try:
            found = await self._friends.friend_ids(user_id)
            # A friendship committed while the query ran may be missing from
            # its snapshot; remember_friends kept it aside for us.
            found |= self._added_while_loading.pop(user_id, set())
            if len(self._friend_sets) >= MAX_FRIEND_SETS:
                self._friend_sets.clear()
            self._friend_sets[user_id] = found
            return found
        finally:
            self._loading.pop(user_id, None)
            self._added_while_loading.pop(user_id, None)

    def remember_friends(self, a: int, b: int) -> None:
        """Record a friendship just committed, in cached sets and in loads under way."""
        for user, friend in ((a, b), (b, a)):
            cached = self._friend_sets.get(user)
            if cached is not None:
                cached.add(friend)
            elif user in self._loading:
                self._added_while_loading.setdefault(user, set()).add(friend)

    def direct_conversation(self, a: int, b: int) -> int | ConversationKey:
        """The direct chat of two users: its id once known (ids never change),
        else its key, which the message writer finds or creates in the
        transaction of the message (then ``learn`` it)."""
        key = (a, b) if a < b else (b, a)
        found = self._keyed.get(key)
        if found is not None:
            return found
        return ConversationKey(direct_pair_key(a, b), "direct", key)

    def system_conversation(self, user_id: int) -> int | ConversationKey:
        """A user's system inbox: its id once known, else its key (as above)."""
        found = self._keyed.get((0, user_id))
        if found is not None:
            return found
        return ConversationKey(system_pair_key(user_id), "system", (user_id,))

    def learn(self, key: ConversationKey, conversation_id: int) -> None:
        """Remember the id a keyed conversation was stored under."""
        if len(self._keyed) >= MAX_CONVERSATIONS:
            self._keyed.clear()
        m = key.members
        self._keyed[(0, m[0]) if key.kind == "system" else (m[0], m[1])] = conversation_id
