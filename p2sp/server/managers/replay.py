"""Login replay: every message past the user's cursors, in order, then ``sync_done``.

It pages through ``MessageStore.pending`` by message id (commit order, which
keeps every conversation in seq order) and paces itself on the socket: it
waits for the client to read rather than piling a backlog into memory or
tripping the slow-consumer limit.

While it runs, live deliveries to the user are held back (the connection's
``replaying`` flag) and only noted; the replay then looks again from where it
got to, and hands over to live delivery only after a look that found nothing
with nothing missed meanwhile. So no message is skipped and none overtakes
an older one; a message may come twice (at-least-once), which clients drop by
``(conversation_id, seq)``.
"""

from __future__ import annotations

import logging

from p2sp.server.events import message_event, sync_done_event
from p2sp.server.managers.connection import Connection, Session
from p2sp.server.repository.messages import MessageStore

log = logging.getLogger(__name__)

PAGE = 500


class Replayer:
    def __init__(self, store: MessageStore, page: int = PAGE) -> None:
        self.store = store
        self.page = page

    async def replay(self, conn: Connection, session: Session) -> int:
        conn.replaying = True
        count = 0
        after = 0
        try:
            while not conn.closing and conn.session is session:
                conn.missed = False
                views = await self.store.pending(
                    session.user_id, session.username, after, self.page
                )
                if not views:
                    if conn.missed:
                        continue
                    break
                for view in views:
                    conn.send_message(
                        message_event(view, replay=True), view.conversation_id, view.seq
                    )
                count += len(views)
                after = views[-1].message_id
                conn.flush()  # so that writable() below knows what the socket holds
                await conn.writable()
        finally:
            conn.replaying = False
        if not conn.closing:
            conn.send(sync_done_event(count))
            log.debug("%r: replayed %d messages", conn, count)
        return count
