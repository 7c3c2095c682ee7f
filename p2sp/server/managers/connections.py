"""Every open connection, and which one each logged-in user is on.

The one place for the session rule: a user has at most one live
session; attaching a newer one kicks the older at once
(``kicked``/``logged_in_elsewhere``). It also runs the idle sweep: one timer
for all connections, not one per connection, so ten thousand idle clients
cost ten thousand dict entries and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Set

from p2sp.common.exceptions import ChatError
from p2sp.server.managers.connection import Connection, Session

log = logging.getLogger(__name__)


class ConnectionManager:
    """Open connections and the user -> connection map of live sessions."""

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self._connections: set[Connection] = set()
        self._by_user: dict[int, Connection] = {}
        #: Users blocked by an admin in this process's life (the database holds
        #: every block; this is what a login already past its read must see).
        self._barred: set[int] = set()
        self._sweeper: asyncio.Task[None] | None = None
        #: Connections with frames queued in this pass of the loop (``flush_soon``).
        self._unflushed: list[Connection] = []

    # -- connections ------------------------------------------------------------

    def flush_soon(self, conn: Connection) -> None:
        """Have ``conn`` write its queued frames once the current callbacks are done.

        One callback flushes every connection that queued something in this
        pass, so a fan-out costs one system call per recipient per pass, not
        one per frame.
        """
        if not self._unflushed:
            asyncio.get_running_loop().call_soon(self._flush)
        self._unflushed.append(conn)

    def _flush(self) -> None:
        conns, self._unflushed = self._unflushed, []
        for conn in conns:
            conn.flush()

    def add(self, conn: Connection) -> None:
        self._connections.add(conn)

    def remove(self, conn: Connection) -> None:
        self._connections.discard(conn)

    def contains(self, conn: Connection) -> bool:
        return conn in self._connections

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._connections))

    def __len__(self) -> int:
        return len(self._connections)

    # -- sessions -----------------------------------------------------------------

    def attach(self, conn: Connection, session: Session) -> None:
        """Make ``conn`` the user's session, kicking any older one.

        Raises ``user_blocked`` for a user barred since the login read the
        account: the block check and the attach are one step.
        """
        if session.user_id in self._barred:
            raise ChatError("user_blocked", "this account is blocked by an administrator")
        old = self._by_user.get(session.user_id)
        self._by_user[session.user_id] = conn
        conn.session = session
        if old is not None and old is not conn:
            log.info("%s logged in again from %s; kicking %r", session.username, conn.peer_ip, old)
            old.session = None
            old.kick("logged_in_elsewhere")

    def detach(self, conn: Connection) -> Session | None:
        """End ``conn``'s session; returns it if it was the user's live session."""
        session = conn.session
        conn.session = None
        if session is None:
            return None
        if self._by_user.get(session.user_id) is conn:
            del self._by_user[session.user_id]
            return session
        return None

    def bar(self, user_id: int) -> None:
        """From now on the user can have no session; the live one is kicked."""
        self._barred.add(user_id)
        self.kick_user(user_id, "blocked")

    def unbar(self, user_id: int) -> None:
        self._barred.discard(user_id)

    def session_of(self, user_id: int) -> Connection | None:
        return self._by_user.get(user_id)

    def is_online(self, user_id: int) -> bool:
        return user_id in self._by_user

    @property
    def online_count(self) -> int:
        return len(self._by_user)

    def online_user_ids(self) -> list[int]:
        return list(self._by_user)

    # -- delivery -----------------------------------------------------------------

    def deliver(self, user_id: int, frame: bytes, conversation_id: int = 0, seq: int = 0) -> bool:
        """``frame`` to the user's session; a message (``seq`` > 0) is noted as given."""
        conn = self._by_user.get(user_id)
        if conn is None:
            return False
        if conn.replaying:
            conn.missed = True
            return False
        if seq:
            return conn.send_message(frame, conversation_id, seq)
        return conn.send(frame)

    def deliver_many(
        self, user_ids: Iterable[int], frame: bytes, conversation_id: int = 0, seq: int = 0
    ) -> int:
        by_user = self._by_user
        sent = 0
        for user_id in user_ids:
            conn = by_user.get(user_id)
            if conn is None:
                continue
            if conn.replaying:
                conn.missed = True
            elif conn.send_message(frame, conversation_id, seq) if seq else conn.send(frame):
                sent += 1
        return sent

    def deliver_group(
        self,
        members: Set[int],
        sender_id: int | None,
        frame: bytes,
        conversation_id: int = 0,
        seq: int = 0,
    ) -> int:
        """One frame to every online member but the sender.

        Walks whichever is smaller, the members or the online sessions, so
        a message to a big group with few members online costs little.
        """
        if len(members) <= len(self._by_user):
            targets: Iterable[int] = members
        else:
            targets = [uid for uid in self._by_user if uid in members]
        return self.deliver_many(
            (uid for uid in targets if uid != sender_id), frame, conversation_id, seq
        )

    def kick_user(self, user_id: int, reason: str) -> bool:
        """Kick the user's live session; its end is recorded when the socket closes."""
        conn = self._by_user.get(user_id)
        if conn is None:
            return False
        conn.kick(reason)
        return True

    # -- idle sweep ---------------------------------------------------------------

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_idle())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    async def _sweep_idle(self) -> None:
        loop = asyncio.get_running_loop()
        interval = min(max(self.idle_timeout / 4, 0.05), 5.0)
        while True:
            await asyncio.sleep(interval)
            cutoff = loop.time() - self.idle_timeout
            for conn in [c for c in self._connections if c.last_activity < cutoff]:
                log.info("%r idle for %.0f s, closing", conn, self.idle_timeout)
                conn.close_with_error(
                    "idle_timeout",
                    f"no data for {self.idle_timeout:g} s; send ping to stay connected",
                )
