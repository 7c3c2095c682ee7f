"""The async Python SDK: one connection to a p2sp server, requests and events.

``Client.call(action, **data)`` is the whole protocol (docs/protocol.md,
"Envelope"): it sends
a request with a fresh id and the session token and waits for the response
with that id, so any number of calls can be in flight at once and answers may
come back in any order. Everything the server sends unasked (messages,
presence, kicks ...) is an ``Event`` on one queue, read with ``events()`` or
``next_event()``. The SDK adds two local events of its own, ``disconnected``
and ``reconnected``, so an application sees the life of its connection in the
same stream, in order, as the server's events.

Design notes:

* One reader task owns the socket's read side; it is the only place that
  learns the connection is gone, so "the connection dropped" is handled in
  exactly one function (``_connection_lost``): pending calls fail with
  ``ConnectionLost``, a ``disconnected`` event is queued, and a reconnect is
  scheduled or the client stops.
* A ``login`` response is applied (token stored, ``reconnected`` queued)
  synchronously by the reader, before it looks at the next frame. The server
  replays missed messages right after the login response, so this keeps the
  ``reconnected`` event ahead of the replay and the token in place for any
  ``ack`` the application sends while handling it.
* Kicks for ``logged_in_elsewhere`` and ``blocked`` never reconnect: the
  first would fight the newer session forever, the second is refused.
* A ``session`` event ``{is_admin}`` (an operator ran ``p2sp-server
  promote`` / ``demote`` while the user was logged in) updates ``is_admin``
  as the reader sees it, then goes to the application like any event, so an
  application that asks ``is_admin`` gets the new answer at once.
* Delivery (docs/protocol.md, "Delivery") is at-least-once, so the SDK keeps, per
  conversation, the highest ``seq`` it has handed to the application and
  drops any ``message`` at or below it. A message counts as handed over when
  it leaves the event queue, and that is also when it becomes due for an
  ``ack`` (``auto_ack``): acks are batched, one request per flush, carrying
  the highest seq per conversation (acks are cumulative).
* ``send`` and ``sendgroup`` always carry a ``client_msg_id``; if the
  connection drops before the response, the SDK waits for the reconnect and
  re-login and sends it once more with the same id, so the message lands
  exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable, Hashable, Iterable
from typing import Any, Final

import msgspec

from p2sp.client.errors import (
    ConnectionLost,
    RequestError,
    RequestFailed,
    RequestTimeout,
    from_response,
)
from p2sp.common.exceptions import ChatError, ProtocolError
from p2sp.common.message import decode_json, now_ms, request_frame
from p2sp.common.protocol import FrameDecoder

__all__ = [
    "NO_RECONNECT_KICKS",
    "Client",
    "ConnectionLost",
    "Event",
    "RequestError",
    "RequestFailed",
    "RequestTimeout",
]

log = logging.getLogger(__name__)

#: ``kicked`` reasons after which reconnecting would be wrong (see module doc).
NO_RECONNECT_KICKS: Final = frozenset({"logged_in_elsewhere", "blocked"})

_READ_CHUNK: Final = 64 * 1024
#: the server takes at most this many entries in one ``ack`` request
MAX_ACKS_PER_REQUEST: Final = 1000
#: pending acknowledgements that trigger a flush without waiting for ``ack_interval``
ACK_BATCH: Final = 200
#: default ``ack_interval``: the longest a taken message waits to be acknowledged.
#: Each ``ack`` is a request the server reads, commits and answers; at 0.2 s a
#: client getting a few messages a second acked nearly every one of them,
#: which cost the server about as much as the messages themselves
#: (bench/RESULTS.md). The price of waiting longer is only that a client which
#: crashes gets up to this many seconds of messages again at its next login.
ACK_INTERVAL: Final = 1.0

ConversationId = Hashable

ResponseHook = Callable[[dict[str, Any]], None]


class Event(msgspec.Struct, frozen=True):
    """Something the server pushed, or a local change of the connection.

    ``type`` is the server's event name (``message``, ``presence``,
    ``sync_done``, ``kicked``, ``error`` ...) or a local one
    (``disconnected`` {reason, message, will_reconnect},
    ``reconnected`` {relogged_in, username, code?, message?}).
    ``timestamp`` is the sender's, in ms since the epoch.
    """

    type: str
    payload: dict[str, Any]
    timestamp: int


class _Stop:
    """Queue marker: the client stopped, no event will follow until ``connect()``."""


_STOP: Final = _Stop()

#: A queued event with the session generation it arrived in (see ``_take``).
_Item = tuple[Event, int] | _Stop


def _rows(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The list under ``key`` of an ``ok`` response, objects only."""
    rows = data.get(key)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _group_selector(group_id: int | None, name: str | None, creator: str | None) -> dict[str, Any]:
    """``{group_id}`` or ``{name, creator}``: how admin actions name a group."""
    if group_id is not None:
        if name is not None or creator is not None:
            raise ValueError("name a group by group_id or by name and creator, not both")
        return {"group_id": group_id}
    if name is None or creator is None:
        raise ValueError("name a group by group_id, or by name and creator")
    return {"name": name, "creator": creator}


class Client:
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
    ) -> None:
        self.host = host
        self.port = port
        self.auto_reconnect = auto_reconnect
        #: seconds between keepalive pings; 0 or less turns them off
        self.ping_interval = ping_interval
        self.request_timeout = request_timeout
        self.max_frame = max_frame
        self.reconnect_delay = reconnect_delay
        self.reconnect_max_delay = reconnect_max_delay
        #: ack every message once the application has taken it from the queue
        self.auto_ack = auto_ack
        #: longest wait, in seconds, before a taken message is acknowledged
        self.ack_interval = ack_interval

        # Session state, readable by applications.
        self.auth_token: str | None = None
        self.username: str | None = None
        self.user_id: int | None = None
        self.is_admin: bool = False

        self._credentials: tuple[str, str] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connected = False
        self._reader_task: asyncio.Task[None] | None = None
        self._ping_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], ResponseHook | None]] = {}
        self._ids = itertools.count(1)
        self._events: asyncio.Queue[_Item] = asyncio.Queue()
        self._closing = False  # close() was called: no reconnects
        self._stopped = True  # no connection and none on the way
        self._announced = False  # the current connection is known to the application
        self._drop_reason: str | None = None  # why the server is about to close (kicked/error)
        self._drop_message = ""
        self._no_reconnect = False
        self._state_changed = asyncio.Event()  # replaced on every session change

        # Delivery state: kept across reconnects, reset by a login as someone else.
        self._seq_owner: str | None = None  # casefolded user the seqs below belong to
        self._generation = 0  # bumped with _seq_owner; queued events carry it
        self._last_seq: dict[ConversationId, int] = {}
        self._ack_pending: dict[ConversationId, int] = {}
        self._ack_count = 0  # messages taken since the last flush
        self._ack_now = asyncio.Event()
        self._ack_task: asyncio.Task[None] | None = None
        self._ack_lock = asyncio.Lock()

    # --- state -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a connection to the server is open."""
        return self._connected

    @property
    def reconnecting(self) -> bool:
        """True while the client is trying to get a dropped connection back."""
        return self._reconnect_task is not None and not self._reconnect_task.done()

    def last_seq(self, conversation_id: ConversationId) -> int:
        """The highest ``seq`` of ``conversation_id`` handed to the application (0: none)."""
        return self._last_seq.get(conversation_id, 0)

    @property
    def pending_acks(self) -> dict[ConversationId, int]:
        """Acknowledgements not sent yet: conversation id -> highest seq (a copy)."""
        return dict(self._ack_pending)

    # --- life cycle --------------------------------------------------------

    async def connect(self) -> None:
        """Open the connection (raises ``OSError`` if the server cannot be reached).

        Does nothing when already connected. An explicit ``connect()`` while
        a reconnect is pending replaces it: the caller wants a connection now.
        """
        if self._connected:
            return
        self._closing = False
        task = self._reconnect_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait([task])
            if self._connected:  # it got there first
                self._announced = True
                return
        await self._open()
        self._announced = True

    async def close(self, *, send_acks: bool = True) -> None:
        """Close the connection for good: no more pings or reconnects. Idempotent.

        Acknowledgements still pending are sent first, if the session is up
        (best effort: at most ``min(request_timeout, 1)`` seconds). With
        ``send_acks=False`` they are dropped instead, so the server delivers
        those messages again at the next login: for an application that took
        messages it could not pass on (its output went away).
        """
        if not send_acks:
            self._ack_pending.clear()
            self._ack_count = 0
        if not self._closing:
            await self._final_ack_flush()
        self._closing = True
        current = asyncio.current_task()
        ack_task = self._ack_task
        if ack_task is not None and not ack_task.done() and ack_task is not current:
            ack_task.cancel()
        task = self._reconnect_task
        if task is not None and not task.done() and task is not current:
            task.cancel()
            await asyncio.wait([task])
        writer = self._writer
        tasks = [t for t in (self._reader_task, self._ping_task) if t is not None]
        if writer is not None:
            self._connection_lost(writer, "client_closed", "closed by the client")
        tasks = [t for t in tasks if not t.done() and t is not current]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=1.0)
        if not self._stopped:
            self._stop()
        elif self._events.empty():
            self._events.put_nowait(_STOP)  # never connected: still end events()

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- requests ----------------------------------------------------------

    async def call(self, action: str, **data: Any) -> dict[str, Any]:
        """Send one request and return the ``data`` of its ``ok`` response.

        Raises ``RequestFailed`` / ``RequestError`` (with the server's
        ``code`` and ``message``) for a ``fail`` / ``error`` response,
        ``ConnectionLost`` if the connection is down or drops first, and
        ``RequestTimeout`` after ``request_timeout`` seconds.
        """
        return await self._call(action, data)

    async def reg(self, username: str, password: str) -> int:
        """Register an account; returns its user id. Does not log in."""
        data = await self.call("reg", username=username, password=password)
        return int(data["user_id"])

    async def login(self, username: str, password: str) -> dict[str, Any]:
        """Log in; stores the token, and the credentials for re-login after a reconnect.

        Returns the ``ok`` data: auth_token, user_id, username, is_admin.
        """
        credentials = (username, password)

        def apply(body: dict[str, Any]) -> None:
            if body.get("status") == "ok":
                self._apply_session(body.get("data"), credentials)

        return await self._call("login", {"username": username, "password": password}, apply)

    async def logout(self) -> None:
        """End the session; the token and stored credentials are cleared even if it fails.

        Pending acknowledgements are sent first, while the token is valid.
        """
        await self._final_ack_flush()
        try:
            await self.call("logout")
        finally:
            self._clear_session()

    async def ping(self) -> None:
        """Round trip to the server; also what keeps an idle connection open."""
        await self.call("ping")

    async def add(self, username: str) -> dict[str, Any]:
        """Add a friend; returns {username, online}. The other side gets a notice."""
        return await self.call("add", username=username)

    async def friends(self) -> list[dict[str, Any]]:
        """Friends sorted by name: [{username, online, status, last_seen (ms or None)}]."""
        return _rows(await self.call("friends"), "friends")

    async def send(self, to: str, text: str, *, client_msg_id: str | None = None) -> dict[str, Any]:
        """Send a direct message; returns {conversation_id, seq, message_id, sent_at}.

        Without ``client_msg_id`` a fresh one is made. If the connection drops
        before the response (``ConnectionLost``) and ``auto_reconnect`` is on,
        the SDK waits for the reconnect and re-login and sends the request once
        more with the same id: the server answers a repeated id with the
        original response, so the message is stored once either way.
        """
        msg_id = client_msg_id if client_msg_id is not None else uuid.uuid4().hex
        return await self._idempotent("send", {"to": to, "text": text, "client_msg_id": msg_id})

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
        return _rows(await self.call("groups"), "groups")

    async def sendgroup(
        self, group_id: int, text: str, *, client_msg_id: str | None = None
    ) -> dict[str, Any]:
        """Send to a group; returns {conversation_id, seq, message_id, sent_at}.

        Retried once after a reconnect with the same ``client_msg_id``, like ``send``.
        """
        msg_id = client_msg_id if client_msg_id is not None else uuid.uuid4().hex
        return await self._idempotent(
            "sendgroup", {"group_id": group_id, "text": text, "client_msg_id": msg_id}
        )

    async def publicgroups(self) -> list[dict[str, Any]]:
        """Every public room, as ``groups`` rows (``role`` None where you are not a member)."""
        return _rows(await self.call("publicgroups"), "groups")

    async def joingroup(self, group_id: int) -> dict[str, Any]:
        """Join a public room; returns its ``groups`` row."""
        return await self.call("joingroup", group_id=group_id)

    async def leavegroup(self, group_id: int) -> None:
        """Leave a group or room (not one you own: delete it instead)."""
        await self.call("leavegroup", group_id=group_id)

    # --- server administration (is_admin only; others get not_permitted) ------

    async def allusers(self, online_only: bool = False) -> list[dict[str, Any]]:
        """Every user: [{username, blocked, online, is_admin, last_seen}]."""
        return _rows(await self.call("allusers", online_only=online_only), "users")

    async def allgroup(self) -> list[dict[str, Any]]:
        """Every group on the server, as ``groups`` rows (``role`` None)."""
        return _rows(await self.call("allgroup"), "groups")

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
        selector = _group_selector(group_id, name, creator)
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
        await self.call("blockgroup", **_group_selector(group_id, name, creator))

    async def unblockgroup(
        self, *, group_id: int | None = None, name: str | None = None, creator: str | None = None
    ) -> None:
        await self.call("unblockgroup", **_group_selector(group_id, name, creator))

    async def ack(self, conversation_id: ConversationId, seq: int) -> None:
        """Acknowledge every message of ``conversation_id`` up to ``seq``."""
        await self.ack_many([(conversation_id, seq)])

    async def ack_many(self, acks: Iterable[tuple[ConversationId, int] | dict[str, Any]]) -> None:
        """Acknowledge several conversations at once.

        ``acks`` holds ``(conversation_id, seq)`` pairs or
        ``{"conversation_id", "seq"}`` dicts; only the highest seq per
        conversation is sent (acks are cumulative), in requests of at most
        1000 entries.
        """
        highest: dict[ConversationId, int] = {}
        for item in acks:
            if isinstance(item, dict):
                conv, seq = item["conversation_id"], item["seq"]
            else:
                conv, seq = item
            highest[conv] = max(seq, highest.get(conv, seq))
        await self._send_acks(highest)

    # --- events ------------------------------------------------------------

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

    # --- internals: delivery -----------------------------------------------

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
        if not duplicate:
            self._last_seq[conv] = seq
        if self.auto_ack:
            # A duplicate is acked too: it came back because our ack was lost.
            self._ack_pending[conv] = max(seq, self._ack_pending.get(conv, 0))
            self._ack_count += 1
            self._request_ack_flush(now=self._ack_count >= ACK_BATCH)
        return None if duplicate else event

    def _request_ack_flush(self, *, now: bool) -> None:
        if not self._ack_pending or self._closing:
            return
        if now:
            self._ack_now.set()
        task = self._ack_task
        if task is None or task.done():
            self._ack_task = asyncio.create_task(self._ack_worker(), name="p2sp-client-acks")

    async def _ack_worker(self) -> None:
        """Flush pending acks every ``ack_interval`` (or at once when asked) while any wait.

        Ends when nothing is pending, or when the session is down: the
        re-login asks for a flush again.
        """
        while self._ack_pending and not self._closing:
            if not self._ack_now.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.ack_interval):
                        await self._ack_now.wait()
            self._ack_now.clear()
            if not await self._flush_acks():
                return

    async def _flush_acks(self) -> bool:
        """Send every pending ack; False if the session is down (they stay pending)."""
        async with self._ack_lock:
            if not self._ack_pending:
                return True
            if not (self._connected and self.auth_token):
                return False
            batch, self._ack_pending = self._ack_pending, {}
            self._ack_count = 0
            generation = self._generation
            try:
                await self._send_acks(batch)
            except (ConnectionLost, RequestTimeout) as exc:
                log.debug("acks not sent (%s); kept for the next session", exc)
                self._requeue_acks(batch, generation)
                return False
            except ChatError as exc:
                if exc.code == "not_authenticated":
                    self._requeue_acks(batch, generation)
                    return False
                log.warning("the server refused acks: %s (%s)", exc.message, exc.code)
            return True

    def _requeue_acks(self, batch: dict[ConversationId, int], generation: int) -> None:
        if generation != self._generation:
            return  # another user logged in meanwhile: these are not theirs
        for conv, seq in batch.items():
            self._ack_pending[conv] = max(seq, self._ack_pending.get(conv, 0))

    async def _send_acks(self, highest: dict[ConversationId, int]) -> None:
        entries = [{"conversation_id": c, "seq": s} for c, s in highest.items()]
        for start in range(0, len(entries), MAX_ACKS_PER_REQUEST):
            await self.call("ack", acks=entries[start : start + MAX_ACKS_PER_REQUEST])

    async def _final_ack_flush(self) -> None:
        """Best-effort flush before the session ends (``close``, ``logout``)."""
        if not self._ack_pending or not (self._connected and self.auth_token):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(self.request_timeout, 1.0)):
                await self._flush_acks()

    async def _idempotent(self, action: str, data: dict[str, Any]) -> dict[str, Any]:
        """``call`` once more after a reconnect if the connection dropped first.

        Only for requests the server deduplicates (``client_msg_id``).
        """
        try:
            return await self._call(action, data)
        except ConnectionLost:
            if not self.auto_reconnect or self._closing or self._credentials is None:
                raise
            user = self._credentials[0]
            if not await self._wait_for_session(self.request_timeout + self.reconnect_max_delay):
                raise
            if self.username is None or self.username.casefold() != user.casefold():
                raise
            log.info("retrying %s after the reconnect", action)
            return await self._call(action, data)

    async def _wait_for_session(self, timeout: float) -> bool:
        """Wait until connected and logged in; False if that will not happen in time."""
        try:
            async with asyncio.timeout(timeout):
                while not (self._connected and self.auth_token):
                    if self._closing or (not self._connected and not self.reconnecting):
                        return False
                    if self._connected and not self.reconnecting and self._credentials is None:
                        return False  # reconnected, but the re-login was refused
                    changed = self._state_changed
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):  # recheck now and then, too
                            await changed.wait()
        except TimeoutError:
            return False
        return True

    def _notify_state(self) -> None:
        self._state_changed.set()
        self._state_changed = asyncio.Event()

    # --- internals: requests -----------------------------------------------

    async def _call(
        self, action: str, data: dict[str, Any], hook: ResponseHook | None = None
    ) -> dict[str, Any]:
        body = await self._request(action, data, hook)
        if body.get("status") == "ok":
            result = body.get("data")
            return result if isinstance(result, dict) else {}
        raise from_response(body)

    async def _request(
        self, action: str, data: dict[str, Any], hook: ResponseHook | None
    ) -> dict[str, Any]:
        """Send a request and wait for its response payload, whatever its status."""
        writer = self._writer
        if writer is None or not self._connected:
            raise ConnectionLost("not connected to the server")
        request_id = next(self._ids)
        frame = request_frame(action, request_id, data, self.auth_token)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, hook)
        try:
            async with asyncio.timeout(self.request_timeout):
                writer.write(frame)
                await writer.drain()
                return await future
        except TimeoutError:  # before OSError: TimeoutError is one
            raise RequestTimeout(
                f"no response to {action!r} within {self.request_timeout} s"
            ) from None
        except OSError as exc:
            raise ConnectionLost(f"connection lost: {exc}") from exc
        finally:
            self._pending.pop(request_id, None)

    def _apply_session(self, data: object, credentials: tuple[str, str]) -> None:
        info = data if isinstance(data, dict) else {}
        token = info.get("auth_token")
        self.auth_token = token if isinstance(token, str) else None
        name = info.get("username")
        self.username = name if isinstance(name, str) else credentials[0]
        uid = info.get("user_id")
        self.user_id = uid if isinstance(uid, int) else None
        self.is_admin = bool(info.get("is_admin", False))
        self._credentials = credentials
        owner = self.username.casefold()
        if owner != self._seq_owner:
            # Another user's conversations: forget what the previous one saw.
            self._seq_owner = owner
            self._generation += 1
            self._last_seq.clear()
            self._ack_pending.clear()
            self._ack_count = 0
        self._notify_state()
        self._request_ack_flush(now=True)  # acks left over from before a drop

    def _clear_session(self) -> None:
        self.auth_token = None
        self.username = None
        self.user_id = None
        self.is_admin = False
        self._credentials = None
        self._notify_state()

    # --- internals: the connection -----------------------------------------

    async def _open(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        self._connected = True
        self._stopped = False
        self._drop_reason = None
        self._drop_message = ""
        self._no_reconnect = False
        decoder = FrameDecoder(self.max_frame)
        self._reader_task = asyncio.create_task(
            self._read_loop(reader, writer, decoder), name="p2sp-client-reader"
        )
        if self.ping_interval and self.ping_interval > 0:
            self._ping_task = asyncio.create_task(
                self._keepalive(writer), name="p2sp-client-keepalive"
            )

    async def _read_loop(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, decoder: FrameDecoder
    ) -> None:
        reason, message = "connection_closed", "the server closed the connection"
        try:
            while True:
                chunk = await reader.read(_READ_CHUNK)
                if not chunk:
                    break
                for payload in decoder.feed(chunk):
                    self._dispatch(payload)
        except ProtocolError as exc:
            reason, message = exc.code, exc.message
            log.warning("closing: the server sent a bad frame: %s", exc.message)
        except OSError as exc:
            reason, message = "connection_error", str(exc) or type(exc).__name__
        except Exception as exc:  # a bug here must still end the connection cleanly
            log.exception("client reader failed")
            reason, message = "client_error", str(exc) or type(exc).__name__
        if self._drop_reason is not None:
            reason, message = self._drop_reason, self._drop_message or message
        self._connection_lost(writer, reason, message)

    def _dispatch(self, raw: bytes) -> None:
        """Route one payload: responses to their caller, everything else to the queue."""
        envelope = decode_json(raw)
        kind = envelope.get("type")
        body = envelope.get("payload", {})
        timestamp = envelope.get("timestamp")
        if not isinstance(kind, str) or not isinstance(body, dict):
            log.warning("ignoring a frame without a type or an object payload")
            return
        if kind == "response":
            request_id = body.get("id")
            entry = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
            if entry is None:
                log.debug("ignoring a response nobody waits for (id %r)", request_id)
                return
            future, hook = entry
            if hook is not None:
                try:
                    hook(body)
                except Exception:  # a broken hook must not kill the reader
                    log.exception("response hook failed")
            if not future.done():
                future.set_result(body)
            return
        if kind == "kicked":
            reason = body.get("reason")
            self._drop_reason = reason if isinstance(reason, str) else "kicked"
            self._drop_message = "kicked by the server"
            if reason in NO_RECONNECT_KICKS:
                self._no_reconnect = True
                self.auth_token = None
                self._credentials = None
                self.is_admin = False
        elif kind == "session":
            is_admin = body.get("is_admin")
            if isinstance(is_admin, bool) and self.auth_token is not None:
                self.is_admin = is_admin
                self._notify_state()
        elif kind == "error":
            code = body.get("code")
            self._drop_reason = code if isinstance(code, str) else "error"
            msg = body.get("message")
            self._drop_message = msg if isinstance(msg, str) else ""
        self._put(kind, body, timestamp if isinstance(timestamp, int) else None)

    def _connection_lost(self, writer: asyncio.StreamWriter, reason: str, message: str) -> None:
        """The one place that handles a connection ending, however it ended."""
        if writer is not self._writer:
            return  # an old connection, already handled
        self._writer = None
        self._connected = False
        self.auth_token = None  # the token is bound to the connection's session
        writer.close()
        ping = self._ping_task
        if ping is not None and ping is not asyncio.current_task():
            ping.cancel()
        self._ping_task = None
        pending, self._pending = self._pending, {}
        for future, _hook in pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(f"connection lost ({reason})"))
        will_reconnect = self.auto_reconnect and not self._closing and not self._no_reconnect
        if self._announced:
            self._announced = False
            self._put(
                "disconnected",
                {"reason": reason, "message": message, "will_reconnect": will_reconnect},
            )
        if will_reconnect:
            if not self.reconnecting:
                self._reconnect_task = asyncio.create_task(
                    self._reconnect_loop(), name="p2sp-client-reconnect"
                )
        elif not self.reconnecting or self._closing:
            self._stop()
        self._notify_state()

    def _stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._events.put_nowait(_STOP)
        self._notify_state()

    async def _keepalive(self, writer: asyncio.StreamWriter) -> None:
        """Ping every ``ping_interval`` so the server's idle timeout never fires.

        A ping that gets no answer means a half-open connection: abort it so
        the reader notices and the reconnect logic takes over.
        """
        while True:
            await asyncio.sleep(self.ping_interval)
            if writer is not self._writer:
                return
            try:
                await self.ping()
            except RequestTimeout:
                log.warning("keepalive ping timed out; dropping the connection")
                self._drop_reason, self._drop_message = (
                    "ping_timeout",
                    "the server stopped answering",
                )
                writer.transport.abort()
                return
            except ConnectionLost:
                return
            except ChatError as exc:
                log.debug("keepalive ping refused: %s", exc)

    async def _reconnect_loop(self) -> None:
        """Reconnect with exponential backoff, then log in again if we had a session."""
        try:
            await self._reconnect_attempts()
        finally:
            asyncio.get_running_loop().call_soon(self._notify_state)  # once this task is done

    async def _reconnect_attempts(self) -> None:
        delay = self.reconnect_delay
        while not self._closing:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # jitter: no thundering herd
            delay = min(delay * 2, self.reconnect_max_delay)
            try:
                await self._open()
            except OSError as exc:
                log.info("reconnect to %s:%s failed: %s", self.host, self.port, exc)
                continue
            credentials = self._credentials
            if credentials is None:
                self._announce_reconnected({"relogged_in": False, "username": None})
                return
            try:
                await self._call(
                    "login",
                    {"username": credentials[0], "password": credentials[1]},
                    self._relogin_hook(credentials),
                )
            except ChatError:
                return  # the hook has announced the failed re-login
            except RequestTimeout:
                writer = self._writer
                if writer is not None:
                    self._drop_reason, self._drop_message = "relogin_timeout", "no answer to login"
                    writer.transport.abort()
                continue
            except ConnectionLost:
                continue
            if self._connected:
                return
            # Dropped again right after the re-login was announced; the
            # disconnected event is queued, keep trying.
        self._stop()

    def _relogin_hook(self, credentials: tuple[str, str]) -> ResponseHook:
        def apply(body: dict[str, Any]) -> None:
            if body.get("status") == "ok":
                self._apply_session(body.get("data"), credentials)
                self._announce_reconnected({"relogged_in": True, "username": self.username})
                return
            err = from_response(body)
            self._clear_session()
            self._announce_reconnected(
                {
                    "relogged_in": False,
                    "username": credentials[0],
                    "code": err.code,
                    "message": err.message,
                }
            )

        return apply

    def _announce_reconnected(self, payload: dict[str, Any]) -> None:
        self._announced = True
        self._put("reconnected", payload)

    def _put(self, kind: str, payload: dict[str, Any], timestamp: int | None = None) -> None:
        event = Event(kind, payload, now_ms() if timestamp is None else timestamp)
        position = self._position(event)
        if position is not None and position[1] <= self._last_seq.get(position[0], 0):
            # Already handed over: drop it now rather than queue it (ack it, though).
            self._take(event, self._generation)
            return
        self._events.put_nowait((event, self._generation))
