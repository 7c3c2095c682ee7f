"""Friends and presence.

Friendship is mutual and immediate (no request to accept): ``add``
stores both directions and leaves the added user a ``friend_added`` notice.
Presence is announced to a user's online friends on login, logout and drop;
"online" is this process's session table, the authority on who is here.
"""

from __future__ import annotations

from typing import Any

from p2sp.common.exceptions import ChatError
from p2sp.server.events import presence_event
from p2sp.server.managers.connection import Session
from p2sp.server.managers.router import Router
from p2sp.server.repository.friends import FriendRepository
from p2sp.server.services.directory import Directory
from p2sp.server.services.messages import MessageService

MAX_FRIENDS_LISTED = 5000


class FriendService:
    def __init__(
        self,
        *,
        repo: FriendRepository,
        directory: Directory,
        messages: MessageService,
        router: Router,
    ) -> None:
        self.repo = repo
        self.directory = directory
        self.messages = messages
        self.router = router

    async def add(self, me: Session, username: str) -> dict[str, Any]:
        target = await self.directory.user(username)
        if target is None:
            raise ChatError("no_such_user", f"no user named {username!r}")
        if target.id == me.user_id:
            raise ChatError("cannot_add_self", "you cannot add yourself as a friend")
        if target.id in await self.directory.friends_of(me.user_id) or not await self.repo.add_pair(
            me.user_id, target.id
        ):
            raise ChatError("already_friends", f"{target.username} is already your friend")
        self.directory.remember_friends(me.user_id, target.id)
        await self.messages.notify(
            target.id,
            {"kind": "friend_added", "username": me.username},
            f"{me.username} added you as a friend",
        )
        return {"username": target.username, "online": self.router.is_online(target.id)}

    async def list(self, me: Session) -> dict[str, Any]:
        rows = await self.repo.list(me.user_id, MAX_FRIENDS_LISTED)
        out = []
        for row in rows:
            online = self.router.is_online(row.user_id)
            out.append(
                {
                    "username": row.username,
                    "online": online,
                    "status": "online" if online else "offline",
                    "last_seen": int(row.last_seen.timestamp() * 1000) if row.last_seen else None,
                }
            )
        return {"friends": out}

    async def announce(self, user_id: int, username: str, online: bool) -> None:
        """Tell the user's online friends; one frame for all of them."""
        friends = await self.directory.friends_of(user_id)
        if friends:
            self.router.deliver_many(friends, presence_event(username, online))
