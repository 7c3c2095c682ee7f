"""Groups and public rooms: every permission rule of the group actions.

Who may do what, in one table of checks:

=============  =======  ===========  ======  ========  ============
action         owner    group admin  member  outsider  server admin
=============  =======  ===========  ======  ========  ============
delgroup       yes      no           no      no        yes
addgroupuser   yes      yes          no      no        yes
delgroupuser   yes      members only no      no        yes
setgrouprole   yes      no           no      no        yes
sendgroup      yes      yes          yes     no        no (adminsendgroup)
leavegroup     no       yes          yes     --        --
joingroup      public rooms, anyone not yet a member
=============  =======  ===========  ======  ========  ============

Nobody removes themselves with ``delgroupuser`` (``leavegroup`` is for that)
and nobody removes or demotes the owner. A group message is committed before
the sender's ``ok`` and fanned out to the online members as one encoded
frame; offline members get it by replay.
"""

from __future__ import annotations

import asyncio
from typing import Any

from p2sp.common.actions import GroupSelector
from p2sp.common.exceptions import ChatError, invalid_request
from p2sp.common.limits import GROUPS_PER_CREATOR
from p2sp.common.message import now_ms
from p2sp.server.events import MessageView, message_event
from p2sp.server.managers.connection import Session
from p2sp.server.managers.router import Router
from p2sp.server.repository.groups import GroupRepository, GroupRow
from p2sp.server.repository.messages import Draft, Stored
from p2sp.server.services.directory import Directory
from p2sp.server.services.messages import MessageService, sent_data
from p2sp.server.services.writer import MessageWriter, Pending

PUBLIC_ROOM = "public"
MAX_LISTED = 1000
MAX_CACHED_GROUPS = 10_000


def no_such_group(group_id: int | str) -> ChatError:
    return ChatError("no_such_group", f"no group {group_id}")


def not_permitted(why: str) -> ChatError:
    return ChatError("not_permitted", why)


class GroupService:
    def __init__(
        self,
        *,
        repo: GroupRepository,
        directory: Directory,
        messages: MessageService,
        writer: MessageWriter,
        router: Router,
        default_max_members: int,
        max_members_cap: int,
    ) -> None:
        self.repo = repo
        self.directory = directory
        self.messages = messages
        self.writer = writer
        self.router = router
        self.default_max_members = default_max_members
        self.max_members_cap = max_members_cap
        # Group rows and member sets, so a send reads neither. Both change
        # only through this service, which drops the entries (``_changed``);
        # the version keeps a load that started before a change from storing
        # what it read.
        self._rows: dict[int, GroupRow] = {}
        self._members: dict[int, frozenset[int]] = {}
        self._version: dict[int, int] = {}

    async def member_set(self, group_id: int) -> frozenset[int]:
        found = self._members.get(group_id)
        if found is not None:
            return found
        version = self._version.get(group_id, 0)
        loaded = frozenset(await self.repo.member_ids(group_id))
        if self._version.get(group_id, 0) == version:
            if len(self._members) >= MAX_CACHED_GROUPS:
                self._members.clear()
            self._members[group_id] = loaded
        return loaded

    def _changed(self, group_id: int) -> None:
        self._rows.pop(group_id, None)
        self._members.pop(group_id, None)
        self._version[group_id] = self._version.get(group_id, 0) + 1

    # -- lookups ----------------------------------------------------------------

    async def group(self, group_id: int) -> GroupRow:
        found = self._rows.get(group_id)
        if found is not None:
            return found
        version = self._version.get(group_id, 0)
        group = await self.repo.get(group_id)
        if group is None:
            raise no_such_group(group_id)
        if self._version.get(group_id, 0) == version:
            if len(self._rows) >= MAX_CACHED_GROUPS:
                self._rows.clear()
            self._rows[group_id] = group
        return group

    async def select(self, sel: GroupSelector) -> GroupRow:
        """A group by id, or by name and creator (as the admin actions may name it)."""
        if sel.group_id is not None:
            return await self.group(sel.group_id)
        if sel.name is None or sel.creator is None:
            raise invalid_request("group_id, or name and creator, are required")
        creator = await self.directory.user(sel.creator, allow_system=True)
        group = await self.repo.by_name(sel.name, creator.id if creator else None)
        if group is None:
            raise no_such_group(f"{sel.name!r} by {sel.creator}")
        return group

    async def _role(self, group: GroupRow, user_id: int) -> str | None:
        return await self.repo.role(group.id, user_id)

    async def rows(self, groups: list[GroupRow], roles: dict[int, str]) -> list[dict[str, Any]]:
        """``groups`` rows: online counts come from this process's sessions."""
        member_ids = await self.repo.members_of(g.id for g in groups)
        is_online = self.router.is_online
        return [
            {
                "group_id": g.id,
                "name": g.name,
                "creator": g.creator,
                "online": sum(1 for uid in member_ids[g.id] if is_online(uid)),
                "total": len(member_ids[g.id]),
                "role": roles.get(g.id),
                "blocked": g.blocked,
                "public": g.public,
            }
            for g in groups
        ]

    async def ensure_public_room(self, system_user_id: int) -> int:
        """The room every server has from its first start.

        docs/protocol.md, "Actions available now": the ``public`` room, owned by
        the reserved account ``system``.
        """
        found = await self.repo.by_name(PUBLIC_ROOM, system_user_id)
        if found is not None:
            return found.id
        gid = await self.repo.create(
            PUBLIC_ROOM,
            system_user_id,
            public=True,
            max_members=self.max_members_cap,
            description="公共聊天室",
            owner_is_member=False,
        )
        if gid is None:  # made by another process meanwhile
            found = await self.repo.by_name(PUBLIC_ROOM, system_user_id)
            assert found is not None
            return found.id
        return gid

    # -- actions ------------------------------------------------------------------

    async def create(
        self,
        me: Session,
        name: str,
        *,
        public: bool,
        description: str | None,
        max_members: int | None,
    ) -> dict[str, Any]:
        size = self.default_max_members if max_members is None else max_members
        if size > self.max_members_cap:
            raise invalid_request(f"max_members: at most {self.max_members_cap}")
        if await self.repo.count_created(me.user_id) >= GROUPS_PER_CREATOR:
            raise ChatError(
                "group_limit", f"you have created {GROUPS_PER_CREATOR} groups, the most allowed"
            )
        gid = await self.repo.create(
            name, me.user_id, public=public, max_members=size, description=description
        )
        if gid is None:
            raise ChatError("group_exists", f"you already have a group named {name!r}")
        return {"group_id": gid, "name": name, "creator": me.username}

    async def delete(self, me: Session, group_id: int) -> None:
        group = await self.group(group_id)
        if not me.is_admin and await self._role(group, me.user_id) != "owner":
            raise not_permitted("only the group's owner or a server admin can delete it")
        members = await self.repo.member_ids(group.id)
        await self.repo.delete(group.id)
        self._changed(group.id)
        notice = {
            "kind": "group_deleted",
            "group_id": group.id,
            "group_name": group.name,
            "by": me.username,
        }
        await self._notify_all(
            [m for m in members if m != me.user_id],
            notice,
            f"{me.username} deleted the group {group.name}",
        )

    async def invite(self, me: Session, group_id: int, username: str) -> None:
        group = await self.group(group_id)
        if not me.is_admin and await self._role(group, me.user_id) not in ("owner", "admin"):
            raise not_permitted("only the owner, group admins and server admins can invite")
        target = await self.directory.user(username)
        if target is None:
            raise ChatError("no_such_user", f"no user named {username!r}")
        refusal = await self.repo.add_member(group, target.id)
        self._changed(group.id)
        if refusal == "already_member":
            raise ChatError("already_member", f"{target.username} is already in {group.name}")
        if refusal == "group_full":
            raise ChatError("group_full", f"{group.name} is full ({group.max_members} members)")
        await self.messages.notify(
            target.id,
            {
                "kind": "group_invited",
                "group_id": group.id,
                "group_name": group.name,
                "by": me.username,
            },
            f"{me.username} added you to the group {group.name}",
        )

    async def kick(self, me: Session, group_id: int, username: str) -> None:
        group = await self.group(group_id)
        my_role = None if me.is_admin else await self._role(group, me.user_id)
        if not me.is_admin and my_role not in ("owner", "admin"):
            raise not_permitted("only the owner, group admins and server admins can remove members")
        target = await self.directory.user(username)
        target_role = await self._role(group, target.id) if target else None
        if target is None or target_role is None:
            raise ChatError("not_member", f"{username} is not in {group.name}")
        if target.id == me.user_id:
            raise ChatError("cannot_kick_self", "use leavegroup to leave a group")
        if target_role == "owner":
            raise not_permitted("nobody can remove the group's owner")
        if target_role == "admin" and my_role == "admin":
            raise not_permitted("only the owner or a server admin can remove a group admin")
        await self.repo.remove_member(group.id, target.id)
        self._changed(group.id)
        await self.messages.notify(
            target.id,
            {
                "kind": "group_removed",
                "group_id": group.id,
                "group_name": group.name,
                "by": me.username,
            },
            f"{me.username} removed you from the group {group.name}",
        )

    async def set_role(self, me: Session, group_id: int, username: str, role: str) -> None:
        group = await self.group(group_id)
        if not me.is_admin and await self._role(group, me.user_id) != "owner":
            raise not_permitted("only the owner or a server admin can change roles")
        target = await self.directory.user(username)
        target_role = await self._role(group, target.id) if target else None
        if target is None or target_role is None:
            raise ChatError("not_member", f"{username} is not in {group.name}")
        if target_role == "owner":
            raise not_permitted("the owner's role cannot change")
        await self.repo.set_role(group.id, target.id, role)

    async def mine(self, me: Session) -> dict[str, Any]:
        pairs = await self.repo.of_user(me.user_id)
        return {"groups": await self.rows([g for g, _ in pairs], {g.id: r for g, r in pairs})}

    async def public(self, me: Session) -> dict[str, Any]:
        groups = await self.repo.listing(public_only=True, limit=MAX_LISTED)
        roles = await self.repo.roles_of(me.user_id, (g.id for g in groups))
        return {"groups": await self.rows(groups, roles)}

    async def everything(self) -> dict[str, Any]:
        groups = await self.repo.listing(public_only=False, limit=MAX_LISTED)
        return {"groups": await self.rows(groups, {})}

    async def join(self, me: Session, group_id: int) -> dict[str, Any]:
        group = await self.group(group_id)
        if not group.public:
            raise not_permitted(f"{group.name} is not a public room; ask a member to invite you")
        refusal = await self.repo.add_member(group, me.user_id)
        self._changed(group.id)
        if refusal == "already_member":
            raise ChatError("already_member", f"you are already in {group.name}")
        if refusal == "group_full":
            raise ChatError("group_full", f"{group.name} is full ({group.max_members} members)")
        (row,) = await self.rows([group], {group.id: "member"})
        return row

    async def leave(self, me: Session, group_id: int) -> None:
        group = await self.group(group_id)
        role = await self._role(group, me.user_id)
        if role is None:
            raise ChatError("not_member", f"you are not in {group.name}")
        if role == "owner":
            raise not_permitted("the owner cannot leave; delete the group instead")
        await self.repo.remove_member(group.id, me.user_id)
        self._changed(group.id)

    async def send(
        self,
        me: Session,
        group_id: int,
        text: str,
        client_msg_id: str | None,
        reply_to: int | None = None,
    ) -> Pending[Stored]:
        """Queue a group message; the answer waits for its commit (see ``Pending``)."""
        self.messages.check_text(text)
        group = await self.group(group_id)
        if me.user_id not in await self.member_set(group.id):
            raise ChatError("not_member", f"you are not in {group.name}")
        if group.blocked:
            raise ChatError("group_blocked", f"{group.name} is blocked by an administrator")
        excerpt = await self.messages.reply_excerpt(me, group.id, reply_to)
        future = await self.submit(
            group, me.user_id, me.username, text, client_msg_id=client_msg_id, reply_to=excerpt
        )
        return Pending(future, sent_data)

    async def post(
        self,
        group: GroupRow,
        sender_id: int | None,
        sender: str,
        text: str,
        *,
        client_msg_id: str | None = None,
        system: bool = False,
    ) -> Stored:
        """Store a group message and fan it out; returns once committed."""
        return await (
            await self.submit(
                group, sender_id, sender, text, client_msg_id=client_msg_id, system=system
            )
        )

    async def submit(
        self,
        group: GroupRow,
        sender_id: int | None,
        sender: str,
        text: str,
        *,
        client_msg_id: str | None = None,
        system: bool = False,
        reply_to: dict[str, Any] | None = None,
    ) -> asyncio.Future[Stored]:
        """Queue a group message; once committed it goes out as one frame for
        every online member. The member set is read now, in request order."""
        members = await self.member_set(group.id)
        type_ = "system" if system else "text"
        draft = Draft(
            group.id,
            sender_id,
            text,
            now_ms(),
            type=type_,
            client_msg_id=client_msg_id,
            gone_code="no_such_group",
            parent_id=reply_to["message_id"] if reply_to else None,
        )
        router = self.router

        def deliver(stored: Stored) -> None:
            view = MessageView(
                stored.conversation_id,
                stored.seq,
                stored.message_id,
                "group",
                sender,
                text,
                type_,
                stored.sent_at,
                group_id=group.id,
                group_name=group.name,
                reply_to=reply_to,
            )
            router.deliver_group(
                members, sender_id, message_event(view), stored.conversation_id, stored.seq
            )

        return self.writer.submit(draft, deliver)

    async def set_blocked(self, group: GroupRow, blocked: bool) -> None:
        await self.repo.set_blocked(group.id, blocked)
        self._changed(group.id)
        kind = "group_blocked" if blocked else "group_unblocked"
        verb = "blocked" if blocked else "unblocked"
        await self._notify_all(
            await self.repo.member_ids(group.id),
            {"kind": kind, "group_id": group.id, "group_name": group.name},
            f"the group {group.name} was {verb} by an administrator",
        )

    async def _notify_all(self, user_ids: list[int], notice: dict[str, Any], text: str) -> None:
        await asyncio.gather(*(self.messages.notify(uid, notice, text) for uid in user_ids))
