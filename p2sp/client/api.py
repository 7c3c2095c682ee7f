"""The typed requests of the SDK: friends, messages, groups and public rooms.

Every helper is a one-liner over ``call()`` named after its action
(docs/protocol.md, "Actions available now"), returning the ``ok`` data, the
list for list actions, or None when the ``ok`` carries nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from p2sp.client.events import EventStream


def rows(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The list under ``key`` of an ``ok`` response, objects only."""
    found = data.get(key)
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def message_request(
    text: str, client_msg_id: str | None, reply_to: int | None, **target: Any
) -> dict[str, Any]:
    """The data of a ``send`` / ``sendgroup``: always with a ``client_msg_id``."""
    data: dict[str, Any] = {
        **target,
        "text": text,
        "client_msg_id": client_msg_id if client_msg_id is not None else uuid.uuid4().hex,
    }
    if reply_to is not None:
        data["reply_to"] = reply_to
    return data


class Requests(EventStream):
    """Friends, direct and group messages, groups and rooms."""

    async def add(self, username: str) -> dict[str, Any]:
        """Add a friend; returns {username, online}. The other side gets a notice."""
        return await self.call("add", username=username)

    async def friends(self) -> list[dict[str, Any]]:
        """Friends sorted by name: [{username, online, status, last_seen (ms or None)}]."""
        return rows(await self.call("friends"), "friends")

    async def send(
        self,
        to: str,
        text: str,
        *,
        client_msg_id: str | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Send a direct message; returns {conversation_id, seq, message_id, sent_at}.

        ``reply_to``: the ``message_id`` of a message of the same conversation
        this one answers (``no_such_message`` if there is none).

        Without ``client_msg_id`` a fresh one is made. If the connection drops
        before the response (``ConnectionLost``) and ``auto_reconnect`` is on,
        the SDK waits for the reconnect and re-login and sends the request once
        more with the same id: the server answers a repeated id with the
        original response, so the message is stored once either way.
        """
        data = await self._idempotent("send", message_request(text, client_msg_id, reply_to, to=to))
        self._messages.sent(data, self.username, text, reply_to, kind="direct", to=to)
        return data

    # --- groups and public rooms (docs/protocol.md, "Actions available now") ----

    async def newgroup(
        self,
        name: str,
        *,
        public: bool = False,
        description: str | None = None,
        max_members: int | None = None,
    ) -> dict[str, Any]:
        """Create a group (a public room with ``public=True``); the caller owns it.

        Returns {group_id, name, creator}. Fails with ``group_exists`` (a group
        of that name by this user exists) or ``group_limit`` (a user may have
        created ``p2sp.common.limits.GROUPS_PER_CREATOR`` groups at once).
        """
        data: dict[str, Any] = {"name": name, "public": public}
        if description is not None:
            data["description"] = description
        if max_members is not None:
            data["max_members"] = max_members
        return await self.call("newgroup", **data)

    async def delgroup(self, group_id: int) -> None:
        """Delete a group (its owner or a server admin); the members get a notice."""
        await self.call("delgroup", group_id=group_id)

    async def addgroupuser(self, group_id: int, username: str) -> None:
        """Add a user to a group (owner, group admins, server admins); they get a notice."""
        await self.call("addgroupuser", group_id=group_id, username=username)

    async def delgroupuser(self, group_id: int, username: str) -> None:
        """Remove a member from a group; they get a notice. Not yourself: ``leavegroup``."""
        await self.call("delgroupuser", group_id=group_id, username=username)

    async def setgrouprole(self, group_id: int, username: str, role: str) -> None:
        """Make a member a group ``admin`` or a plain ``member`` again (owner only)."""
        await self.call("setgrouprole", group_id=group_id, username=username, role=role)

    async def groups(self) -> list[dict[str, Any]]:
        """The caller's groups, by group_id.

        Rows: {group_id, name, creator, online, total, role (owner | admin |
        member), blocked, public}.
        """
        return rows(await self.call("groups"), "groups")

    async def sendgroup(
        self,
        group_id: int,
        text: str,
        *,
        client_msg_id: str | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Send to a group; returns {conversation_id, seq, message_id, sent_at}.

        ``reply_to`` and the retry after a reconnect (same ``client_msg_id``)
        as for ``send``.
        """
        data = await self._idempotent(
            "sendgroup", message_request(text, client_msg_id, reply_to, group_id=group_id)
        )
        self._messages.sent(data, self.username, text, reply_to, kind="group", group_id=group_id)
        return data

    async def publicgroups(self) -> list[dict[str, Any]]:
        """Every public room, as ``groups`` rows (``role`` None where you are not a member)."""
        return rows(await self.call("publicgroups"), "groups")

    async def joingroup(self, group_id: int) -> dict[str, Any]:
        """Join a public room; returns its ``groups`` row."""
        return await self.call("joingroup", group_id=group_id)

    async def leavegroup(self, group_id: int) -> None:
        """Leave a group or room (not one you own: delete it instead)."""
        await self.call("leavegroup", group_id=group_id)
