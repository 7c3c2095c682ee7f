"""Server administration (the admin actions), for users with ``is_admin``.

The admin check is here, once, for every admin action. Admin messages reach
users as system messages and are stored like any other, so they survive the
recipient being offline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from p2sp.common.actions import GroupSelector
from p2sp.common.exceptions import ChatError
from p2sp.server.managers.connection import Session
from p2sp.server.managers.router import Router
from p2sp.server.repository.users import SYSTEM_USER, UserRepository
from p2sp.server.services.directory import Directory, UserRef
from p2sp.server.services.groups import GroupService
from p2sp.server.services.messages import MessageService

MAX_LISTED = 10_000


class AdminService:
    def __init__(
        self,
        *,
        users: UserRepository,
        directory: Directory,
        messages: MessageService,
        groups: GroupService,
        router: Router,
    ) -> None:
        self.users = users
        self.directory = directory
        self.messages = messages
        self.groups = groups
        self.router = router

    async def is_admin(self, me: Session) -> bool:
        """Whether the user is a server admin now (the database decides)."""
        return await self.users.is_admin(me.user_id)

    async def require_admin(self, me: Session) -> None:
        """The database decides, not the session: ``p2sp-server promote`` and
        ``demote`` (another process) take effect at an admin's next request.
        Admin actions are rare, so the query costs nothing that matters."""
        if not await self.users.is_admin(me.user_id):
            raise ChatError("not_permitted", "this needs a server admin")

    async def _user(self, username: str) -> UserRef:
        target = await self.directory.user(username)
        if target is None:
            raise ChatError("no_such_user", f"no user named {username!r}")
        return target

    async def all_users(self, me: Session, online_only: bool) -> dict[str, Any]:
        await self.require_admin(me)
        out = []
        for uid, name, blocked, is_admin, last_seen in await self.users.listing(MAX_LISTED):
            if name == SYSTEM_USER:
                continue
            online = self.router.is_online(uid)
            if online_only and not online:
                continue
            out.append(
                {
                    "username": name,
                    "blocked": blocked,
                    "online": online,
                    "is_admin": is_admin,
                    "last_seen": int(last_seen.timestamp() * 1000) if last_seen else None,
                }
            )
        return {"users": out}

    async def all_groups(self, me: Session) -> dict[str, Any]:
        await self.require_admin(me)
        return await self.groups.everything()

    async def send(self, me: Session, username: str, text: str) -> dict[str, Any]:
        await self.require_admin(me)
        self.messages.check_text(text)
        target = await self._user(username)
        stored = await self.messages.notify(target.id, {"kind": "admin", "from": me.username}, text)
        return {"conversation_id": stored.conversation_id, "seq": stored.seq}

    async def send_group(self, me: Session, sel: GroupSelector, text: str) -> dict[str, Any]:
        await self.require_admin(me)
        self.messages.check_text(text)
        group = await self.groups.select(sel)
        if group.blocked:
            raise ChatError("group_blocked", f"{group.name} is blocked; unblock it first")
        stored = await self.groups.post(group, me.user_id, me.username, text, system=True)
        return {"conversation_id": stored.conversation_id, "seq": stored.seq}

    async def broadcast(self, me: Session, text: str) -> dict[str, Any]:
        """A notice in every (unblocked) user's inbox; returns how many got it live."""
        await self.require_admin(me)
        self.messages.check_text(text)
        notice = {"kind": "admin", "from": me.username, "broadcast": True}
        ids = await self.users.all_ids()
        online = sum(1 for uid in ids if self.router.is_online(uid))
        await asyncio.gather(*(self.messages.notify(uid, notice, text) for uid in ids))
        return {"delivered_online": online}

    async def block_user(self, me: Session, username: str, blocked: bool) -> None:
        """Barred before the database write, so a login that read the account
        earlier and is still hashing the password is refused when it attaches."""
        await self.require_admin(me)
        target = await self._user(username)
        if target.id == me.user_id:
            raise ChatError("not_permitted", "you cannot block yourself")
        if blocked:
            self.router.bar(target.id)
        try:
            await self.users.set_blocked(target.id, blocked)
        except BaseException:
            if blocked:
                self.router.unbar(target.id)
            raise
        if not blocked:
            self.router.unbar(target.id)

    async def block_group(self, me: Session, sel: GroupSelector, blocked: bool) -> None:
        await self.require_admin(me)
        group = await self.groups.select(sel)
        if group.blocked != blocked:
            await self.groups.set_blocked(group, blocked)
