"""``ClientApp``: runs commands against one SDK ``Client`` and prints what the server pushes.

Commands run one at a time, in order: a script's ``login`` must finish before
its next line is read. Server pushes are printed by a separate task as they
arrive. The app uses the SDK's public API only, like any other application.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from p2sp.client import Client
from p2sp.common.exceptions import P2SPError
from p2sp.terminal import commands as _commands  # noqa: F401  (registers every command)
from p2sp.terminal.chatview import ChatView
from p2sp.terminal.display import ClientMessageHandler
from p2sp.terminal.registry import COMMANDS, Command, CommandRefused, UsageError, find_command
from p2sp.terminal.strings import Strings
from p2sp.terminal.terminals import Terminal


class ClientApp:
    """Runs commands against one ``Client`` and prints what the server pushes."""

    def __init__(self, client: Client, strings: Strings, terminal: Terminal) -> None:
        self.client = client
        self.strings = strings
        self.terminal = terminal
        self.handler = ClientMessageHandler(strings)
        #: message numbers (#12), the current chat, receipts shown
        self.view = ChatView(client, self.handler)
        self.quitting = False
        #: the output went away (stdout closed): what is taken now cannot be shown
        self.output_closed = False
        self._quit = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        #: the last ``groups`` list as shown: ``sendgroup <n>`` is row n-1 (None: not run)
        self.group_list: list[dict[str, Any]] | None = None
        #: the last ``rooms`` list as shown: ``join <n>`` / ``leave <n>`` (None: not run)
        self.room_list: list[dict[str, Any]] | None = None

    def show(self, *lines: str) -> None:
        for line in lines:
            self.terminal.show(line)

    def prompt(self) -> str:
        if self.client.auth_token and self.client.username:
            return self.strings("prompt.user", username=self.handler.name(self.client.username))
        return self.strings("prompt.anonymous")

    def quit(self, *, output_closed: bool = False) -> None:
        """Stop after the current command; a read of the next line is given up at once."""
        self.quitting = True
        self.output_closed = self.output_closed or output_closed
        self._quit.set()

    async def unless_quit(self, read: Coroutine[Any, Any, str | None]) -> str | None:
        """``await read``, or None as soon as the app is told to quit (the read is cancelled)."""
        if self.quitting:
            read.close()
            return None
        reading = asyncio.ensure_future(read)
        quitting = asyncio.ensure_future(self._quit.wait())
        try:
            await asyncio.wait({reading, quitting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            quitting.cancel()
            if not reading.done():
                reading.cancel()
                await asyncio.wait({reading})
        if reading.cancelled():
            return None
        return reading.result()

    async def start(self) -> bool:
        """Connect for the first time; False (and a message on stderr) if impossible."""
        try:
            await self.client.connect()
        except OSError as exc:
            print(self._connect_failed(exc), file=sys.stderr, flush=True)
            return False
        self._ensure_pump()
        return True

    async def stop(self) -> None:
        """Close the connection; events still queued are not shown any more.

        The printer stops first, while it waits for the next event, so no
        message is taken from the SDK's queue (which acknowledges it) without
        being printed; ``close()`` then sends the acks of what was printed.
        If the output went away, nothing is acknowledged: what was taken
        since may not have reached anyone, and comes again at the next login.
        """
        self.quitting = True
        pump = self._pump
        if pump is not None and not pump.done():
            pump.cancel()
            await asyncio.wait([pump], timeout=1.0)
        await self.client.close(send_acks=not self.output_closed)

    async def execute(self, line: str) -> None:
        """Run one command line, reporting every failure as a line of text."""
        text = line.strip()
        if not text or text.startswith("#"):
            return  # blank lines and comments, for scripts
        name, _, remainder = text.partition(" ")
        cmd = find_command(name)
        if cmd is None:
            self.show(self.strings("command.unknown", name=name))
            return
        if cmd.admin_only and not self.client.is_admin:
            self.show(self.strings("command.admin_only", name=cmd.name))
            return
        args = cmd.split(remainder)
        if len(args) < cmd.min_args or (cmd.max_args is not None and len(args) > cmd.max_args):
            self.show(self.strings("command.usage", usage=self.strings(cmd.usage_key)))
            return
        if cmd.needs_server and not await self._ensure_connected():
            return
        try:
            await cmd.run(self, args)
        except P2SPError as exc:  # ChatError, ConnectionLost, RequestTimeout
            self.show(self.handler.format_error(exc))
        except CommandRefused as exc:  # refused here, before asking the server
            self.show(exc.line)
        except UsageError:
            self.show(self.strings("command.usage", usage=self.strings(cmd.usage_key)))

    def forget_lists(self) -> None:
        """The list numbering belongs to one session: a login or logout drops it.

        Message numbers (#12) stay: they name messages, which do not change.
        """
        self.group_list = None
        self.room_list = None

    def visible_commands(self) -> tuple[list[Command], list[Command]]:
        """(everyone's commands, admin commands shown to this user)."""
        public = [c for c in COMMANDS.values() if not c.admin_only]
        admin = [c for c in COMMANDS.values() if c.admin_only] if self.client.is_admin else []
        return public, admin

    async def _ensure_connected(self) -> bool:
        """Connect again if the client stopped (kicked, or a drop it gave up on)."""
        if self.client.connected:
            return True
        if self.client.reconnecting:
            self.show(self.strings("error.not_connected"))
            return False
        try:
            await self.client.connect()
        except OSError as exc:
            self.show(self._connect_failed(exc))
            return False
        self._ensure_pump()
        return True

    def _connect_failed(self, exc: OSError) -> str:
        return self.strings(
            "app.connect_failed",
            host=self.client.host,
            port=self.client.port,
            error=exc.strerror or str(exc) or type(exc).__name__,
        )

    def _ensure_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._pump_events(), name="p2sp-ui-events")

    async def _pump_events(self) -> None:
        """Print every event as it arrives.

        A ``message`` taken from the queue is always printed: the SDK
        acknowledges it once taken, so skipping it would lose it. A message
        that arrived live is marked read once printed.
        """
        async for event in self.client.events():
            if self.quitting and event.type != "message":
                continue
            lines, read = self.view.event_lines(event)
            for line in lines:
                self.show(line)
            if self.output_closed:
                return  # take nothing more: it could not be shown
            if read is not None:
                self.client.mark_read(*read)  # shown live: read (see ChatView)
            _redraw_prompt()


def _redraw_prompt() -> None:
    """Let a prompt that depends on the session (``alice>``) follow a kick at once."""
    from prompt_toolkit.application import get_app_or_none

    app = get_app_or_none()
    if app is not None:
        app.invalidate()
