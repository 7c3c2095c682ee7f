"""The SDK's server-administration requests (``is_admin`` only; others get ``not_permitted``).

The actions that name a group take ``group_id=`` or both ``name=`` and
``creator=`` (the original P2SP client names groups by name and creator);
anything else raises ``ValueError`` before a request is sent.
"""

from __future__ import annotations

from typing import Any

from p2sp.client.api import rows
from p2sp.client.session import Session


def group_selector(group_id: int | None, name: str | None, creator: str | None) -> dict[str, Any]:
    """``{group_id}`` or ``{name, creator}``: how admin actions name a group."""
    if group_id is not None:
        if name is not None or creator is not None:
            raise ValueError("name a group by group_id or by name and creator, not both")
        return {"group_id": group_id}
    if name is None or creator is None:
        raise ValueError("name a group by group_id, or by name and creator")
    return {"name": name, "creator": creator}


class AdminRequests(Session):
    """Users, groups and system messages, for server admins."""

    async def allusers(self, online_only: bool = False) -> list[dict[str, Any]]:
        """Every user: [{username, blocked, online, is_admin, last_seen}]."""
        return rows(await self.call("allusers", online_only=online_only), "users")

    async def allgroup(self) -> list[dict[str, Any]]:
        """Every group on the server, as ``groups`` rows (``role`` None)."""
        return rows(await self.call("allgroup"), "groups")

    async def adminsend(self, username: str, text: str) -> dict[str, Any]:
        """A system message to one user; returns {conversation_id, seq} of their inbox."""
        return await self.call("adminsend", username=username, text=text)

    async def adminsendgroup(
        self,
        text: str,
        *,
        group_id: int | None = None,
        name: str | None = None,
        creator: str | None = None,
    ) -> dict[str, Any]:
        """A system message to a group, named by ``group_id`` or by ``name`` and ``creator``."""
        selector = group_selector(group_id, name, creator)
        return await self.call("adminsendgroup", **selector, text=text)

    async def broadcast(self, text: str) -> int:
        """A system message to every user; returns how many were online to get it at once."""
        data = await self.call("broadcast", text=text)
        count = data.get("delivered_online")
        return count if isinstance(count, int) else 0

    async def blockuser(self, username: str) -> None:
        """Block an account: its session ends at once and its logins are refused."""
        await self.call("blockuser", username=username)

    async def unblockuser(self, username: str) -> None:
        await self.call("unblockuser", username=username)

    async def blockgroup(
        self, *, group_id: int | None = None, name: str | None = None, creator: str | None = None
    ) -> None:
        """Block a group (by id, or by name and creator): no messages until unblocked."""
        await self.call("blockgroup", **group_selector(group_id, name, creator))

    async def unblockgroup(
        self, *, group_id: int | None = None, name: str | None = None, creator: str | None = None
    ) -> None:
        await self.call("unblockgroup", **group_selector(group_id, name, creator))
