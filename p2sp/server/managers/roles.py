"""Server-admin rights that change while a user is logged in.

``p2sp-server promote NAME`` and ``demote NAME`` run in another process and
write only the database, which is the one place the right lives. This
watcher looks at the (short) list of admins every ``admin_poll`` seconds and
brings the live sessions in line: the session's ``is_admin`` changes and the
client gets a ``session`` event ``{is_admin}``, so a terminal client unlocks
or locks its admin commands at once instead of at the next login. Admin
actions themselves also ask the database (``AdminService.require_admin``),
so a demoted admin cannot act even within one polling interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from p2sp.common.message import event_frame
from p2sp.server.managers.connections import ConnectionManager
from p2sp.server.repository.users import UserRepository

log = logging.getLogger(__name__)


class RoleWatcher:
    def __init__(
        self, users: UserRepository, connections: ConnectionManager, interval: float
    ) -> None:
        self.users = users
        self.connections = connections
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        #: The admins at the last look; None before the first.
        self._known: set[int] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        # The first look, at once, is the baseline: a session opened after it
        # read its right at login, and a change after it is announced.
        while True:
            try:
                self.apply(await self.users.admin_ids())
            except Exception:
                # A database hiccup delays a promotion; it does not stop the server.
                log.warning("could not read the list of admins", exc_info=True)
            await asyncio.sleep(self.interval)

    def apply(self, admins: set[int]) -> int:
        """Bring the live sessions in line with ``admins``; returns how many changed.

        Only users whose right changed since the last look are visited (a
        session opened since then read the right at login).
        """
        changed = 0
        known, self._known = self._known, set(admins)
        if known is None:
            return 0
        for user_id in known ^ admins:
            conn = self.connections.session_of(user_id)
            session = conn.session if conn is not None else None
            if session is None:
                continue
            now_admin = user_id in admins
            if session.is_admin != now_admin:
                session.is_admin = now_admin
                conn.send(event_frame("session", {"is_admin": now_admin}))
                log.info(
                    "%s %s a server admin",
                    session.username,
                    "is now" if now_admin else "is no longer",
                )
                changed += 1
        return changed
