"""The interactive terminal client (``p2sp-client``, ``python run_client.py``).

Two front ends share one command table and one ``ClientApp``:

* on a terminal, a prompt_toolkit ``PromptSession`` inside ``patch_stdout()``,
  so messages the server pushes are printed above the prompt while the user
  is typing, without breaking the line being edited;
* with piped stdin (scripts, tests), plain line-by-line reading: every line
  is a command, and the passwords a command asks for are the next lines.

Commands run one at a time, in order: a script's ``login`` must finish before
its next line is read. Server pushes are printed by a separate task as they
arrive. Adding a command is one decorated coroutine below plus its
``cmd.<name>.usage`` and ``cmd.<name>.help`` strings.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

from p2sp.client import config
from p2sp.client.client import Client
from p2sp.client.handler import ClientMessageHandler
from p2sp.client.strings import LANGUAGES, Strings, resolve_language
from p2sp.common.exceptions import P2SPError

CommandFunc = Callable[["ClientApp", list[str]], Awaitable[None]]


# --- the command table ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """One command of the client.

    ``min_args``/``max_args`` bound the number of arguments (``max_args``
    None: any). With ``rest`` the last argument takes the rest of the line,
    spaces included (message text). ``admin_only`` commands are listed by
    ``help`` and accepted only after an administrator logged in.
    ``needs_server`` commands make sure a connection is up before running.
    """

    name: str
    run: CommandFunc
    min_args: int = 0
    max_args: int | None = 0
    rest: bool = False
    admin_only: bool = False
    needs_server: bool = True
    aliases: tuple[str, ...] = ()

    @property
    def usage_key(self) -> str:
        return f"cmd.{self.name}.usage"

    @property
    def help_key(self) -> str:
        return f"cmd.{self.name}.help"

    def split(self, remainder: str) -> list[str]:
        """The arguments of one command line (after the command name)."""
        if self.rest and self.max_args:
            return remainder.split(maxsplit=self.max_args - 1)
        return remainder.split()


#: Commands by name, in the order ``help`` lists them.
COMMANDS: dict[str, Command] = {}
#: Names and aliases -> command.
_LOOKUP: dict[str, Command] = {}


def command(
    name: str,
    *,
    min_args: int = 0,
    max_args: int | None = 0,
    rest: bool = False,
    admin_only: bool = False,
    needs_server: bool = True,
    aliases: tuple[str, ...] = (),
) -> Callable[[CommandFunc], CommandFunc]:
    """Register a coroutine as a command (see ``Command`` for the options)."""

    def register(func: CommandFunc) -> CommandFunc:
        cmd = Command(name, func, min_args, max_args, rest, admin_only, needs_server, aliases)
        COMMANDS[name] = cmd
        for key in (name, *aliases):
            _LOOKUP[key] = cmd
        return func

    return register


def find_command(name: str) -> Command | None:
    return _LOOKUP.get(name.lower())


# --- terminals ------------------------------------------------------------


class Terminal(Protocol):
    """Where the app writes lines and reads secrets; one per front end."""

    def show(self, line: str) -> None: ...

    async def read_secret(self, prompt: str) -> str | None:
        """A hidden line, or None if the user gave up (Ctrl-C, Ctrl-D, end of input)."""
        ...


class PipeTerminal:
    """Plain stdin/stdout, for scripts: secrets are simply the next input lines."""

    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self.stdin = stdin
        self.stdout = stdout

    def show(self, line: str) -> None:
        self.stdout.write(line + "\n")
        self.stdout.flush()

    async def read_line(self) -> str | None:
        """The next input line without its line break; None at end of input.

        Read in a thread because a regular file (``< script``) cannot be
        watched by the event loop; one line at a time, so no read is pending
        once the client decides to exit.
        """
        line = await asyncio.to_thread(self.stdin.readline)
        if not line:
            return None
        return line.rstrip("\r\n")

    async def read_secret(self, prompt: str) -> str | None:
        if self.stdin.isatty():  # stdout redirected but a person is typing
            try:
                return await asyncio.to_thread(getpass.getpass, prompt)
            except (EOFError, KeyboardInterrupt):
                return None
        return await self.read_line()


class PromptTerminal:
    """prompt_toolkit: output goes above the prompt (under ``patch_stdout``)."""

    def __init__(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import DummyHistory

        # A separate session without history: passwords must never be
        # recallable with the up arrow.
        self._secret_session: PromptSession[str] = PromptSession(history=DummyHistory())

    def show(self, line: str) -> None:
        print(line, flush=True)

    async def read_secret(self, prompt: str) -> str | None:
        try:
            return await self._secret_session.prompt_async(prompt, is_password=True)
        except (EOFError, KeyboardInterrupt):
            return None


# --- the application ------------------------------------------------------


class ClientApp:
    """Runs commands against one ``Client`` and prints what the server pushes."""

    def __init__(self, client: Client, strings: Strings, terminal: Terminal) -> None:
        self.client = client
        self.strings = strings
        self.terminal = terminal
        self.handler = ClientMessageHandler(strings)
        self.quitting = False
        self._pump: asyncio.Task[None] | None = None

    def show(self, *lines: str) -> None:
        for line in lines:
            self.terminal.show(line)

    def prompt(self) -> str:
        if self.client.auth_token and self.client.username:
            return self.strings("prompt.user", username=self.client.username)
        return self.strings("prompt.anonymous")

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
        """
        self.quitting = True
        pump = self._pump
        if pump is not None and not pump.done():
            pump.cancel()
            await asyncio.wait([pump], timeout=1.0)
        await self.client.close()

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
        acknowledges it once taken, so skipping it would lose it.
        """
        async for event in self.client.events():
            if self.quitting and event.type != "message":
                continue
            for line in self.handler.format_event(event):
                self.show(line)
            _redraw_prompt()


def _redraw_prompt() -> None:
    """Let a prompt that depends on the session (``alice>``) follow a kick at once."""
    from prompt_toolkit.application import get_app_or_none

    app = get_app_or_none()
    if app is not None:
        app.invalidate()


# --- commands -------------------------------------------------------------


@command("reg", min_args=1, max_args=1)
async def cmd_reg(app: ClientApp, args: list[str]) -> None:
    """Passwords are compared here, so a typo never reaches the server."""
    username = args[0]
    first = await app.terminal.read_secret(app.strings("prompt.password"))
    if first is None:
        app.show(app.strings("reg.cancelled"))
        return
    second = await app.terminal.read_secret(app.strings("prompt.password_again"))
    if second is None:
        app.show(app.strings("reg.cancelled"))
        return
    if first != second:
        app.show(app.strings("reg.mismatch"))
        return
    user_id = await app.client.reg(username, first)
    app.show(app.handler.registered(username, user_id))


@command("login", min_args=1, max_args=2, rest=True)
async def cmd_login(app: ClientApp, args: list[str]) -> None:
    """The password is the rest of the line, so one with spaces can be typed inline."""
    username = args[0]
    password = args[1] if len(args) > 1 else None
    if password is None:
        password = await app.terminal.read_secret(app.strings("prompt.password"))
        if password is None:
            app.show(app.strings("login.cancelled"))
            return
    data = await app.client.login(username, password)
    app.show(*app.handler.welcome(data))


@command("logout")
async def cmd_logout(app: ClientApp, args: list[str]) -> None:
    await app.client.logout()
    app.show(app.strings("logout.ok"))


@command("add", min_args=1, max_args=1)
async def cmd_add(app: ClientApp, args: list[str]) -> None:
    data = await app.client.add(args[0])
    app.show(app.handler.added(data, args[0]))


@command("friends")
async def cmd_friends(app: ClientApp, args: list[str]) -> None:
    app.show(*app.handler.friends(await app.client.friends()))


@command("send", min_args=2, max_args=2, rest=True, aliases=(".send", "/msg", "msg"))
async def cmd_send(app: ClientApp, args: list[str]) -> None:
    """``.send <user> <message>`` (seed 002) or ``/msg <user> <message>`` (seed 000).

    The message is the rest of the line, inner spaces kept. A failure is
    reported by the dispatcher (the server's message and code); success is a
    one-line echo.
    """
    to, text = args
    await app.client.send(to, text)
    app.show(app.handler.sent(to, text))


@command("help", max_args=1, needs_server=False, aliases=("?",))
async def cmd_help(app: ClientApp, args: list[str]) -> None:
    public, admin = app.visible_commands()
    app.show(app.strings("help.title"))
    for cmd in public:
        app.show(_help_line(app.strings, cmd))
    if admin:
        app.show(app.strings("help.admin_title"))
        for cmd in admin:
            app.show(_help_line(app.strings, cmd))


def _help_line(strings: Strings, cmd: Command) -> str:
    return strings("help.line", usage=strings(cmd.usage_key), help=strings(cmd.help_key))


@command("quit", needs_server=False, aliases=("exit",))
async def cmd_quit(app: ClientApp, args: list[str]) -> None:
    app.quitting = True


# --- main -----------------------------------------------------------------


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return port


def build_parser(strings: Strings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p2sp-client", description=strings("app.description"))
    parser.add_argument("--host", default=config.DEFAULT_HOST, help=strings("app.arg_host"))
    parser.add_argument(
        "--port", type=_port, default=config.DEFAULT_PORT, help=strings("app.arg_port")
    )
    parser.add_argument("--lang", choices=LANGUAGES, default=None, help=strings("app.arg_lang"))
    parser.add_argument("-v", "--verbose", action="store_true", help=strings("app.arg_verbose"))
    return parser


def _language_from_argv(argv: Sequence[str] | None) -> str:
    """``--lang`` read before the real parse, so ``--help`` is in that language too."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--lang", default=None)
    known, _ = pre.parse_known_args(argv)
    return resolve_language(known.lang)


def make_client(host: str, port: int) -> Client:
    """The SDK as the terminal uses it: reconnecting, and acking what it printed."""
    return Client(
        host,
        port,
        auto_reconnect=True,
        auto_ack=True,
        ping_interval=config.PING_INTERVAL,
        request_timeout=config.REQUEST_TIMEOUT,
        reconnect_delay=config.RECONNECT_DELAY,
        reconnect_max_delay=config.RECONNECT_MAX_DELAY,
    )


async def run_interactive(app: ClientApp) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    session: PromptSession[str] = PromptSession()
    with patch_stdout():
        if not await app.start():
            return 1
        app.show(app.strings("app.banner", host=app.client.host, port=app.client.port))
        try:
            while not app.quitting:
                try:
                    line = await session.prompt_async(app.prompt)
                except KeyboardInterrupt:
                    continue  # Ctrl-C clears the line, as in a shell
                except EOFError:
                    break  # Ctrl-D
                await app.execute(line)
            app.show(app.strings("app.bye"))
        finally:
            await app.stop()
    return 0


async def run_piped(app: ClientApp, terminal: PipeTerminal) -> int:
    if not await app.start():
        return 1
    try:
        while not app.quitting:
            line = await terminal.read_line()
            if line is None:
                # End of input: give events already on their way a moment.
                await asyncio.sleep(config.PIPE_GRACE)
                break
            await app.execute(line)
    finally:
        await app.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``p2sp-client``; returns the exit status."""
    strings = Strings(_language_from_argv(argv))
    args = build_parser(strings).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    client = make_client(args.host, args.port)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        if interactive:
            return asyncio.run(run_interactive(ClientApp(client, strings, PromptTerminal())))
        terminal = PipeTerminal(sys.stdin, sys.stdout)
        return asyncio.run(run_piped(ClientApp(client, strings, terminal), terminal))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
