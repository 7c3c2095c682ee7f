"""The session layer of the SDK: login, logout, re-login after a reconnect, safe resends.

* A ``login`` response is applied (token stored, ``reconnected`` queued)
  synchronously by the reader, before it looks at the next frame. The server
  replays missed messages right after the login response, so this keeps the
  ``reconnected`` event ahead of the replay and the token in place for any
  ``ack`` the application sends while handling it.
* A login as another user than the last one starts the delivery state
  afresh (``_session_started``, filled in by ``p2sp.client.acks`` and
  ``p2sp.client.events``).
* ``send`` and ``sendgroup`` always carry a ``client_msg_id``; if the
  connection drops before the response, ``_idempotent`` waits for the
  reconnect and re-login and sends it once more with the same id, so the
  message lands exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from p2sp.client.connection import Connection, ResponseHook, Resumed, log
from p2sp.client.errors import ConnectionLost, RequestTimeout, from_response
from p2sp.common.exceptions import ChatError


class Session(Connection):
    """``Connection`` plus the logged-in session and its survival across reconnects."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Whose delivery state the layers above hold: kept across reconnects,
        # started afresh by a login as someone else.
        self._seq_owner: str | None = None  # the casefolded user name
        self._generation = 0  # bumped with _seq_owner; queued events carry it

    # --- hooks of the layers above -------------------------------------------

    def _session_started(self, *, new_user: bool) -> None:
        """A login succeeded (``new_user``: not the user the delivery state belongs to)."""

    async def _session_ending(self) -> None:
        """``logout()`` is about to end the session (still up, if it was)."""

    # --- requests ----------------------------------------------------------

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
        await self._session_ending()
        try:
            await self.call("logout")
        finally:
            self._clear_session()

    # --- internals ---------------------------------------------------------

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
        self._session_started(new_user=self._set_owner(self.username.casefold()))
        self._notify_state()

    def _set_owner(self, owner: str) -> bool:
        """Record whose session this is; True if it is not whom the state belonged to."""
        if owner == self._seq_owner:
            return False
        self._seq_owner = owner
        self._generation += 1
        return True

    def _clear_session(self) -> None:
        self.auth_token = None
        self.username = None
        self.user_id = None
        self.is_admin = False
        self._credentials = None
        self._notify_state()

    async def _resume_session(self) -> Resumed:
        """Log in again after a reconnect, with the credentials of the last ``login``."""
        credentials = self._credentials
        if credentials is None:
            self._announce_reconnected({"relogged_in": False, "username": None})
            return "done"
        try:
            await self._call(
                "login",
                {"username": credentials[0], "password": credentials[1]},
                self._relogin_hook(credentials),
            )
        except ChatError:
            return "done"  # the hook has announced the failed re-login
        except RequestTimeout:
            writer = self._writer
            if writer is not None:
                self._drop_reason, self._drop_message = "relogin_timeout", "no answer to login"
                writer.transport.abort()
            return "retry"
        except ConnectionLost:
            return "retry"
        return "resumed"

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
