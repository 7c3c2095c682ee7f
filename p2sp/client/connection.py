"""The connection layer of the SDK: socket, framing, requests, keepalive, reconnect.

``Connection`` owns one TCP connection at a time and everything that is about
the connection rather than what is said over it:

* One reader task owns the socket's read side; it is the only place that
  learns the connection is gone, so "the connection dropped" is handled in
  exactly one function (``_connection_lost``): pending calls fail with
  ``ConnectionLost``, a ``disconnected`` event is queued, and a reconnect is
  scheduled or the client stops.
* Requests carry a fresh integer id; responses are matched by id
  (docs/protocol.md, "Pipelining and the order of responses"), so any number
  of calls may be in flight and answers may come in any order. A response
  may carry a hook, run by the reader before it looks at the next frame
  (``login`` uses it: see ``p2sp.client.session``).
* Kicks for ``logged_in_elsewhere`` and ``blocked`` never reconnect.
* A ``session`` event ``{is_admin}`` updates ``is_admin`` as the reader sees
  it, before the application reads the event.

The layers above fill in what this one leaves open: ``_put`` (where an event
goes: ``p2sp.client.events``), ``_end_events``, ``_resume_session`` (what a
reconnect does once the socket is open: ``p2sp.client.session``) and the
close hooks (``p2sp.client.acks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Callable
from typing import Any, Literal

from p2sp.client.config import NO_RECONNECT_KICKS, READ_CHUNK
from p2sp.client.errors import ConnectionLost, RequestTimeout, from_response
from p2sp.common.exceptions import ChatError, ProtocolError
from p2sp.common.message import decode_json, request_frame
from p2sp.common.protocol import FrameDecoder

log = logging.getLogger("p2sp.client")

ResponseHook = Callable[[dict[str, Any]], None]
Resumed = Literal["done", "retry", "resumed"]


class Connection:
    """One connection to a p2sp server at a time, with reconnects (see the module doc)."""

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

        # Session state, readable by applications (kept by p2sp.client.session).
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
        self._closing = False  # close() was called: no reconnects
        self._stopped = True  # no connection and none on the way
        self._announced = False  # the current connection is known to the application
        self._drop_reason: str | None = None  # why the server is about to close (kicked/error)
        self._drop_message = ""
        self._no_reconnect = False
        self._state_changed = asyncio.Event()  # replaced on every session change

    # --- hooks of the layers above -------------------------------------------

    def _put(self, kind: str, payload: dict[str, Any], timestamp: int | None = None) -> None:
        """Hand an event (the server's, or ``disconnected`` / ``reconnected``) on."""
        raise NotImplementedError

    def _end_events(self, *, only_if_empty: bool = False) -> None:
        """No event will follow until the next ``connect()``."""

    async def _resume_session(self) -> Resumed:
        """After a reconnect opened the socket: ``done``, ``retry`` (open again), or
        ``resumed`` (done if the connection is still up)."""
        self._announce_reconnected({"relogged_in": False, "username": None})
        return "done"

    async def _before_close(self, *, send_acks: bool) -> None:
        """``close()`` is about to close the connection (still open, if it was)."""

    def _cancel_background(self) -> None:
        """``close()``: stop the layers' own background tasks."""

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

    async def close(self, *, send_acks: bool = True) -> None:
        """Close the connection for good: no more pings or reconnects. Idempotent.

        Acknowledgements still pending are sent first, if the session is up
        (best effort: at most ``min(request_timeout, 1)`` seconds). With
        ``send_acks=False`` they are dropped instead, so the server delivers
        those messages again at the next login: for an application that took
        messages it could not pass on (its output went away).
        """
        await self._before_close(send_acks=send_acks)
        self._closing = True
        current = asyncio.current_task()
        self._cancel_background()
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
        else:
            self._end_events(only_if_empty=True)  # never connected: still end events()

    async def __aenter__(self) -> Any:
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

    async def ping(self) -> None:
        """Round trip to the server; also what keeps an idle connection open."""
        await self.call("ping")

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

    def _notify_state(self) -> None:
        self._state_changed.set()
        self._state_changed = asyncio.Event()

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
                chunk = await reader.read(READ_CHUNK)
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
        self._end_events()
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
        """Reconnect with exponential backoff, then resume the session if there was one."""
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
            resumed = await self._resume_session()
            if resumed == "done":
                return
            if resumed == "retry":
                continue
            if self._connected:
                return
            # Dropped again right after the reconnect was announced; the
            # disconnected event is queued, keep trying.
        self._stop()

    def _announce_reconnected(self, payload: dict[str, Any]) -> None:
        self._announced = True
        self._put("reconnected", payload)
