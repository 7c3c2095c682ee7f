"""The async Python SDK: one connection to a p2sp server, requests and events.

``Client.call(action, **data)`` is the whole protocol (PROTOCOL §2): it sends
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
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable
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
        self._events: asyncio.Queue[Event | _Stop] = asyncio.Queue()
        self._closing = False  # close() was called: no reconnects
        self._stopped = True  # no connection and none on the way
        self._announced = False  # the current connection is known to the application
        self._drop_reason: str | None = None  # why the server is about to close (kicked/error)
        self._drop_message = ""
        self._no_reconnect = False

    # --- state -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a connection to the server is open."""
        return self._connected

    @property
    def reconnecting(self) -> bool:
        """True while the client is trying to get a dropped connection back."""
        return self._reconnect_task is not None and not self._reconnect_task.done()

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

    async def close(self) -> None:
        """Close the connection for good: no more pings or reconnects. Idempotent."""
        self._closing = True
        current = asyncio.current_task()
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
        """End the session; the token and stored credentials are cleared even if it fails."""
        try:
            await self.call("logout")
        finally:
            self._clear_session()

    async def ping(self) -> None:
        """Round trip to the server; also what keeps an idle connection open."""
        await self.call("ping")

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
            yield item

    async def next_event(self, type: str | None = None, *, timeout: float = 5.0) -> Event:
        """The next event (of ``type``, if given), discarding any other before it.

        Raises ``asyncio.TimeoutError`` if none comes within ``timeout``
        seconds, or at once when the client has stopped and none is queued.
        Meant for tests and scripts; applications read ``events()``.
        """
        async with asyncio.timeout(timeout):
            while True:
                item = await self._events.get()
                if isinstance(item, _Stop):
                    if self._stopped:
                        self._events.put_nowait(item)
                        raise TimeoutError(f"no {type or 'event'}: the client is disconnected")
                    continue
                if type is None or item.type == type:
                    return item

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

    def _clear_session(self) -> None:
        self.auth_token = None
        self.username = None
        self.user_id = None
        self.is_admin = False
        self._credentials = None

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

    def _stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._events.put_nowait(_STOP)

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
        self._events.put_nowait(Event(kind, payload, now_ms() if timestamp is None else timestamp))
