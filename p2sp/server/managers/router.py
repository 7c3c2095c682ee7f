"""How services reach users: ``deliver(user_id, frame)``, never sockets.

A service that sends a message or a notice hands an already-encoded frame to
the router and gets on with its work. ``LocalRouter`` reaches the users
connected to this process; the cluster router (Redis) will implement the same
interface, so no service changes when the deployment grows.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from typing import Protocol

from p2sp.server.managers.connections import ConnectionManager


class Router(Protocol):
    """The delivery interface services depend on."""

    def deliver(self, user_id: int, frame: bytes, conversation_id: int = 0, seq: int = 0) -> bool:
        """Write ``frame`` to the user's session; False if it was not sent now.
        A message event names its ``conversation_id`` and ``seq``."""
        ...

    def deliver_many(
        self, user_ids: Iterable[int], frame: bytes, conversation_id: int = 0, seq: int = 0
    ) -> int:
        """The same bytes to many users; returns how many were sent."""
        ...

    def deliver_group(
        self,
        members: Set[int],
        sender_id: int | None,
        frame: bytes,
        conversation_id: int = 0,
        seq: int = 0,
    ) -> int:
        """The same bytes to every online member of a group except the sender."""
        ...

    def is_online(self, user_id: int) -> bool: ...

    def kick(self, user_id: int, reason: str) -> bool:
        """End the user's session with ``kicked``/``reason``."""
        ...

    def bar(self, user_id: int) -> None:
        """A blocked user: no session from now on, the live one kicked (``blocked``)."""
        ...

    def unbar(self, user_id: int) -> None:
        """The user may log in again."""
        ...


class LocalRouter:
    """Router over the connections of this process."""

    def __init__(self, connections: ConnectionManager) -> None:
        self._connections = connections
        self.deliver = connections.deliver
        self.deliver_many = connections.deliver_many
        self.deliver_group = connections.deliver_group
        self.is_online = connections.is_online
        self.kick = connections.kick_user
        self.bar = connections.bar
        self.unbar = connections.unbar
