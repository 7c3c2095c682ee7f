"""Lists and command results: friends, groups, rooms, users, the welcome line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from p2sp.terminal.display.base import Renderer
from p2sp.terminal.display.neutralise import safe_body as _body
from p2sp.terminal.display.neutralise import safe_group as _group
from p2sp.terminal.display.neutralise import safe_name as _name


class ListLines(Renderer):
    """Renders the answers of list commands and the one-line results of others."""

    def registered(self, username: str, user_id: int) -> str:
        return self.strings("reg.ok", username=_name(username), user_id=user_id)

    def added(self, data: Mapping[str, Any], username: str) -> str:
        """The result of ``add``: the new friend, and whether they are online now."""
        key = "add.ok.online" if data.get("online") else "add.ok.offline"
        return self.strings(key, username=_name(data.get("username"), username))

    def friends(self, friends: Sequence[Mapping[str, Any]]) -> list[str]:
        """The friend list: a title, then one line per friend (last seen if offline)."""
        if not friends:
            return [self.strings("friends.none")]
        lines = [self.strings("friends.title", count=len(friends))]
        for friend in friends:
            name = _name(friend.get("username"), "?")
            if friend.get("online"):
                lines.append(self.strings("friends.online", username=name))
            elif friend.get("last_seen") is not None:
                seen = self.date_time(friend.get("last_seen"))
                lines.append(self.strings("friends.offline_seen", username=name, last_seen=seen))
            else:
                lines.append(self.strings("friends.offline", username=name))
        return lines

    def sent(self, to: str, text: str) -> str:
        """The echo of a message this user sent."""
        return self.strings("send.echo", to=_name(to), message=_body(text))

    def welcome(self, data: Mapping[str, Any]) -> list[str]:
        """The login greeting; admins are told their extra commands are unlocked."""
        username = _name(data.get("username"), "?")
        if data.get("is_admin"):
            return [
                self.strings("login.welcome_admin", username=username),
                self.strings("login.admin_hint"),
            ]
        return [self.strings("login.welcome_user", username=username)]

    # --- groups, rooms, administration --------------------------------------

    def groups(self, groups: Sequence[Mapping[str, Any]]) -> list[str]:
        """The user's groups, numbered from 1 in the order given (``sendgroup`` uses n)."""
        if not groups:
            return [self.strings("groups.none")]
        return [
            self.strings("groups.title", count=len(groups)),
            *self._group_lines(groups, roles=True),
            self.strings("groups.hint"),
        ]

    def rooms(self, rooms: Sequence[Mapping[str, Any]]) -> list[str]:
        """The public rooms, numbered from 1 (``join`` / ``leave`` take n)."""
        if not rooms:
            return [self.strings("rooms.none")]
        return [
            self.strings("rooms.title", count=len(rooms)),
            *self._group_lines(rooms, joined=True),
            self.strings("rooms.hint"),
        ]

    def all_groups(self, groups: Sequence[Mapping[str, Any]]) -> list[str]:
        """Every group on the server (``allgroup``), in the ``groups`` format."""
        if not groups:
            return [self.strings("allgroup.none")]
        return [
            self.strings("allgroup.title", count=len(groups)),
            *self._group_lines(groups, public=True),
        ]

    def _group_lines(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        roles: bool = False,
        joined: bool = False,
        public: bool = False,
    ) -> list[str]:
        """``[n] name creator online/total`` plus markers (role, room, blocked)."""
        lines = []
        for number, row in enumerate(rows, start=1):
            marks = []
            role = row.get("role")
            if roles and role in ("owner", "admin"):
                marks.append(self.strings(f"groups.mark.{role}"))
            if (roles or public) and row.get("public") is True:
                marks.append(self.strings("groups.mark.public"))
            if joined and isinstance(role, str) and role:
                marks.append(self.strings("groups.mark.joined"))
            if row.get("blocked") is True:
                marks.append(self.strings("groups.mark.blocked"))
            joined_marks = self.strings("groups.mark_separator").join(marks)
            lines.append(
                self.strings(
                    "groups.line",
                    number=number,
                    name=_group(row.get("name"), "?"),
                    creator=_name(row.get("creator"), "?"),
                    online=_name(row.get("online"), "?"),
                    total=_name(row.get("total"), "?"),
                    marks=self.strings("groups.marks", marks=joined_marks) if marks else "",
                )
            )
        return lines

    def users(self, users: Sequence[Mapping[str, Any]], *, online_only: bool = False) -> list[str]:
        """``allusers``: one line per user, online or not, active or blocked, admin."""
        if not users:
            return [self.strings("users.none_online" if online_only else "users.none")]
        title = "users.title_online" if online_only else "users.title"
        lines = [self.strings(title, count=len(users))]
        for user in users:
            if user.get("online"):
                presence = self.strings("users.online")
            elif user.get("last_seen") is not None:
                seen = self.date_time(user.get("last_seen"))
                presence = self.strings("users.offline_seen", last_seen=seen)
            else:
                presence = self.strings("users.offline")
            lines.append(
                self.strings(
                    "users.line",
                    username=_name(user.get("username"), "?"),
                    presence=presence,
                    status=self.strings("users.blocked" if user.get("blocked") else "users.active"),
                    admin=self.strings("users.admin") if user.get("is_admin") else "",
                )
            )
        return lines

    def joined(self, row: Mapping[str, Any], name: str) -> str:
        """The result of ``join``: the room and how many of its members are online."""
        return self.strings(
            "join.ok",
            name=_group(row.get("name")) or _group(name),
            online=_name(row.get("online"), "?"),
            total=_name(row.get("total"), "?"),
        )

    def group_choices(self, rows: Sequence[Mapping[str, Any]]) -> str:
        """``ops@alice, ops@bob``: how to tell groups of the same name apart."""
        return ", ".join(
            f"{_group(r.get('name'), '?')}@{_name(r.get('creator'), '?')}" for r in rows
        )
