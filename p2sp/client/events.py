"""The event stream of the SDK: one queue, in arrival order, each message once.

Everything the server sends unasked (messages, presence, kicks ...) is an
``Event`` on one queue, read with ``events()`` or ``next_event()``, and so
are the SDK's own ``disconnected`` and ``reconnected``, so an application
sees the life of its connection in the same stream, in order.

Delivery (docs/protocol.md, "Delivery") is at-least-once, so the stream
keeps, per conversation, the highest ``seq`` it has handed to the
application and drops any ``message`` at or below it. A message counts as
handed over when it leaves the queue; that is also when it becomes due for
an ``ack`` (``p2sp.client.acks``), and when an edit or a retraction is
applied to the message it changes (``p2sp.client.messages``): the event then
says so in ``change`` and ``target``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from typing import Any, Final

import msgspec

from p2sp.client.acks import Acks, ConversationId
from p2sp.client.config import MESSAGE_CACHE
from p2sp.client.messages import MessageCache
from p2sp.common.message import now_ms


class Event(msgspec.Struct, frozen=True):
    """Something the server pushed, or a local change of the connection.

    ``type`` is the server's event name (``message``, ``presence``,
    ``sync_done``, ``kicked``, ``error`` ...) or a local one
    (``disconnected`` {reason, message, will_reconnect},
    ``reconnected`` {relogged_in, username, code?, message?}).
    ``timestamp`` is the sender's, in ms since the epoch.

    A ``message`` that edits or retracts another (``payload["type"]`` is
    ``"edit"`` or ``"retract"``, ``payload["target_id"]`` the message it
    changes) has ``change`` set to that type, and ``target`` is the changed
    message as it now is (new text and ``edited_at``, or ``retracted`` with
    its text erased) when the SDK had seen it, else None. Other events have
    neither.
    """

    type: str
    payload: dict[str, Any]
    timestamp: int
    change: str | None = None
    target: dict[str, Any] | None = None


class _Stop:
    """Queue marker: the client stopped, no event will follow until ``connect()``."""


_STOP: Final = _Stop()

#: A queued event with the session generation it arrived in (see ``_take``).
_Item = tuple[Event, int] | _Stop


class EventStream(Acks):
    """``Acks`` plus the queue of events, with duplicates dropped."""

    def __init__(self, *args: Any, message_cache: int = MESSAGE_CACHE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._events: asyncio.Queue[_Item] = asyncio.Queue()
        self._last_seq: dict[ConversationId, int] = {}
        self._messages = MessageCache(message_cache)

    def message(self, message_id: int) -> dict[str, Any] | None:
        """A recently seen message as it now is (edits and retractions applied), or None.

        "Seen": handed over as an event, on a ``history`` page, or sent by
        this client; the last ``message_cache`` of them are kept.
        """
        return self._messages.get(message_id)

    def last_seq(self, conversation_id: ConversationId) -> int:
        """The highest ``seq`` of ``conversation_id`` handed to the application (0: none)."""
        return self._last_seq.get(conversation_id, 0)

    async def events(self) -> AsyncIterator[Event]:
        """Every incoming event, in arrival order.

        The iteration ends once the client has stopped for good (``close()``,
        or a drop that will not be reconnected) and every event before that
        has been yielded.
        """
        while True:
            item = await self._events.get()
            if isinstance(item, _Stop):
                if self._stopped:
                    self._events.put_nowait(item)  # let other readers see the end too
                    return
                continue  # stale: connect() was called again since
            event = self._take(*item)
            if event is not None:
                yield event

    async def next_event(self, type: str | None = None, *, timeout: float = 5.0) -> Event:
        """The next event (of ``type``, if given), discarding any other before it.

        Raises ``asyncio.TimeoutError`` if none comes within ``timeout``
        seconds, or at once when the client has stopped and none is queued.
        Discarded messages count as handed over (they are acknowledged under
        ``auto_ack``). Meant for tests and scripts; applications read
        ``events()``.
        """
        async with asyncio.timeout(timeout):
            while True:
                item = await self._events.get()
                if isinstance(item, _Stop):
                    if self._stopped:
                        self._events.put_nowait(item)
                        raise TimeoutError(f"no {type or 'event'}: the client is disconnected")
                    continue
                event = self._take(*item)
                if event is not None and (type is None or event.type == type):
                    return event

    # --- hooks ---------------------------------------------------------------

    def _put(self, kind: str, payload: dict[str, Any], timestamp: int | None = None) -> None:
        event = Event(kind, payload, now_ms() if timestamp is None else timestamp)
        position = self._position(event)
        if position is not None and position[1] <= self._last_seq.get(position[0], 0):
            # Already handed over: drop it now rather than queue it (ack it, though).
            self._take(event, self._generation)
            return
        self._events.put_nowait((event, self._generation))

    def _end_events(self, *, only_if_empty: bool = False) -> None:
        if not only_if_empty or self._events.empty():
            self._events.put_nowait(_STOP)

    def _session_started(self, *, new_user: bool) -> None:
        if new_user:  # another user's conversations: forget what the previous one saw
            self._last_seq.clear()
            self._messages.clear()
        super()._session_started(new_user=new_user)

    # --- internals -----------------------------------------------------------

    @staticmethod
    def _position(event: Event) -> tuple[ConversationId, int] | None:
        """(conversation_id, seq) of a ``message`` event; None for anything else."""
        if event.type != "message":
            return None
        conv = event.payload.get("conversation_id")
        seq = event.payload.get("seq")
        if conv is None or not isinstance(conv, Hashable) or isinstance(seq, bool):
            return None
        if not isinstance(seq, int):
            return None
        return conv, seq

    def _take(self, event: Event, generation: int) -> Event | None:
        """An event leaving the queue: the application gets it, or it was a duplicate.

        Messages queued before a login as another user belong to that user's
        session: they are handed over as they are, neither counted nor acked.
        """
        if generation != self._generation:
            return event
        if event.type == "sync_done":
            self._request_ack_flush(now=True)
            return event
        position = self._position(event)
        if position is None:
            return event
        conv, seq = position
        duplicate = seq <= self._last_seq.get(conv, 0)
        self._note_taken(conv, seq)
        if duplicate:
            return None
        self._last_seq[conv] = seq
        change, target = self._messages.observe(event.payload)
        if change is None:
            return event
        return msgspec.structs.replace(event, change=change, target=target)
