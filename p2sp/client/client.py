"""The async Python SDK: one connection to a p2sp server, requests and events.

``Client.call(action, **data)`` is the whole protocol (docs/protocol.md,
"Envelope"); the named helpers (``reg``, ``login``, ``send`` ...) are
one-liners over it that also keep the session state. ``Client`` is assembled
from one layer per concern, each in its own module:

=========================  ==================================================
``p2sp.client.connection``  socket, framing, request/response matching,
                            keepalive pings, reconnect with backoff
``p2sp.client.session``     login, logout, re-login after a reconnect,
                            resends of ``send`` / ``sendgroup``
``p2sp.client.acks``        batched acknowledgements (``auto_ack``)
``p2sp.client.events``      the event queue, duplicates dropped by
                            (conversation_id, seq); ``Event``
``p2sp.client.messages``    edits and retractions applied to recently seen
                            messages (``Event.change``, ``message()``)
``p2sp.client.reads``       read cursors: ``read``, and ``mark_read`` batched
``p2sp.client.api``         friends, messages, groups, rooms
``p2sp.client.history``     conversations, history, edits, receipts, search
``p2sp.client.admin``       server administration
``p2sp.client.errors``      the exceptions
``p2sp.client.config``      defaults
=========================  ==================================================

Everything an application needs is importable from here (or from
``p2sp.client``).
"""

from __future__ import annotations

from p2sp.client.admin import AdminRequests
from p2sp.client.api import Requests
from p2sp.client.config import ACK_INTERVAL, MESSAGE_CACHE, NO_RECONNECT_KICKS, READ_INTERVAL
from p2sp.client.errors import ConnectionLost, RequestError, RequestFailed, RequestTimeout
from p2sp.client.events import Event
from p2sp.client.history import HistoryRequests
from p2sp.client.reads import Reads

__all__ = [
    "ACK_INTERVAL",
    "NO_RECONNECT_KICKS",
    "Client",
    "ConnectionLost",
    "Event",
    "RequestError",
    "RequestFailed",
    "RequestTimeout",
]


class Client(Requests, AdminRequests, HistoryRequests, Reads):
    """An asyncio client for one p2sp server.

    Use it as ``async with Client(host, port) as c: ...`` or call
    ``connect()`` / ``close()`` yourself. Every action is ``await
    c.call("action", field=value)``; the named helpers (``reg``, ``login``
    ...) are one-liners over it that also keep the session state.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 18888,
        *,
        auto_reconnect: bool = False,
        ping_interval: float = 30.0,
        request_timeout: float = 10.0,
        max_frame: int = 1024 * 1024,
        reconnect_delay: float = 0.5,
        reconnect_max_delay: float = 10.0,
        auto_ack: bool = True,
        ack_interval: float = ACK_INTERVAL,
        read_interval: float = READ_INTERVAL,
        message_cache: int = MESSAGE_CACHE,
    ) -> None:
        super().__init__(
            host,
            port,
            auto_reconnect=auto_reconnect,
            ping_interval=ping_interval,
            request_timeout=request_timeout,
            max_frame=max_frame,
            reconnect_delay=reconnect_delay,
            reconnect_max_delay=reconnect_max_delay,
            auto_ack=auto_ack,
            ack_interval=ack_interval,
            read_interval=read_interval,
            message_cache=message_cache,
        )

    async def __aenter__(self) -> Client:
        await self.connect()
        return self
