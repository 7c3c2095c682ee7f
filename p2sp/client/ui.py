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
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

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
    ``splitter``, if given, splits the arguments instead (quoted names ...).
    """

    name: str
    run: CommandFunc
    min_args: int = 0
    max_args: int | None = 0
    rest: bool = False
    admin_only: bool = False
    needs_server: bool = True
    aliases: tuple[str, ...] = ()
    splitter: Callable[[str], list[str]] | None = None

    @property
    def usage_key(self) -> str:
        return f"cmd.{self.name}.usage"

    @property
    def help_key(self) -> str:
        return f"cmd.{self.name}.help"

    def split(self, remainder: str) -> list[str]:
        """The arguments of one command line (after the command name)."""
        if self.splitter is not None:
            return self.splitter(remainder)
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
    splitter: Callable[[str], list[str]] | None = None,
) -> Callable[[CommandFunc], CommandFunc]:
    """Register a coroutine as a command (see ``Command`` for the options)."""

    def register(func: CommandFunc) -> CommandFunc:
        cmd = Command(
            name, func, min_args, max_args, rest, admin_only, needs_server, aliases, splitter
        )
        COMMANDS[name] = cmd
        for key in (name, *aliases):
            _LOOKUP[key] = cmd
        return func

    return register


def find_command(name: str) -> Command | None:
    return _LOOKUP.get(name.lower())


class CommandRefused(Exception):
    """A command the client refuses itself (an unknown group name ...); ``line`` says why."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


class UsageError(Exception):
    """The arguments do not fit the command: its usage line is shown."""


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
        #: the last ``groups`` list as shown: ``sendgroup <n>`` is row n-1 (None: not run)
        self.group_list: list[dict[str, Any]] | None = None
        #: the last ``rooms`` list as shown: ``join <n>`` / ``leave <n>`` (None: not run)
        self.room_list: list[dict[str, Any]] | None = None

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
        except CommandRefused as exc:  # refused here, before asking the server
            self.show(exc.line)
        except UsageError:
            self.show(self.strings("command.usage", usage=self.strings(cmd.usage_key)))

    def forget_lists(self) -> None:
        """The local numbering belongs to one session: a login or logout drops it."""
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
    app.forget_lists()
    app.show(*app.handler.welcome(data))


@command("logout")
async def cmd_logout(app: ClientApp, args: list[str]) -> None:
    app.forget_lists()
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


# --- groups and rooms -------------------------------------------------------
#
# Seed 002 names groups by name (``delgroup <groupname>``) while the protocol
# takes a group_id: the client looks the name up among the user's own groups
# (a fresh ``groups`` request), and ``name@creator`` picks one of two groups
# of the same name. A name is the words before the trailing arguments, so it
# may contain spaces (runs of spaces count as one; "quotes" around it are
# dropped). ``sendgroup <n>`` uses the numbers of the last ``groups`` list the
# user saw, ``join`` / ``leave`` those of the last ``rooms`` list.


def _name(words: Sequence[str]) -> str:
    """A group name typed as one or more words (runs of spaces as one, quotes dropped)."""
    name = " ".join(" ".join(words).split())
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = " ".join(name[1:-1].split())
    return name


def _same_name(row: dict[str, Any], name: str) -> bool:
    value = row.get("name")
    return isinstance(value, str) and " ".join(value.split()) == name


def match_groups(rows: Sequence[dict[str, Any]], typed: str) -> list[dict[str, Any]]:
    """Rows named ``typed``, or ``name@creator`` when no group has that whole name."""
    exact = [r for r in rows if _same_name(r, typed)]
    if exact or "@" not in typed:
        return exact
    name, _, creator = typed.rpartition("@")
    name = " ".join(name.split())
    return [
        r
        for r in rows
        if _same_name(r, name)
        and isinstance(r.get("creator"), str)
        and r["creator"].casefold() == creator.casefold()
    ]


def _pick(
    app: ClientApp, rows: Sequence[dict[str, Any]], typed: str, unknown: str, ambiguous: str
) -> dict[str, Any]:
    found = match_groups(rows, typed)
    if not found:
        raise CommandRefused(app.strings(unknown, name=typed))
    if len(found) > 1:
        choices = app.handler.group_choices(found)
        raise CommandRefused(app.strings(ambiguous, name=typed, count=len(found), choices=choices))
    return found[0]


async def my_group(app: ClientApp, typed: str) -> dict[str, Any]:
    """One of the user's own groups by name (or ``name@creator``).

    A server admin, who may manage any group, also finds groups they are not in.
    """
    rows = await app.client.groups()
    if app.client.is_admin and not match_groups(rows, typed):
        rows = await app.client.allgroup()
    return _pick(app, rows, typed, "group.unknown", "group.ambiguous")


def _number(text: str) -> int | None:
    return int(text) if text.isdecimal() else None


def _listed(rows: list[dict[str, Any]] | None, number: int | None) -> dict[str, Any] | None:
    if rows is None or number is None or not 1 <= number <= len(rows):
        return None
    return rows[number - 1]


@command("newgroup", min_args=1, max_args=None)
async def cmd_newgroup(app: ClientApp, args: list[str]) -> None:
    data = await app.client.newgroup(_name(args))
    app.show(app.strings("newgroup.ok", name=data.get("name") or _name(args)))


@command("delgroup", min_args=1, max_args=None)
async def cmd_delgroup(app: ClientApp, args: list[str]) -> None:
    group = await my_group(app, _name(args))
    await app.client.delgroup(group["group_id"])
    app.show(app.strings("delgroup.ok", name=group["name"]))


@command("addgroupuser", min_args=2, max_args=None)
async def cmd_addgroupuser(app: ClientApp, args: list[str]) -> None:
    group = await my_group(app, _name(args[:-1]))
    await app.client.addgroupuser(group["group_id"], args[-1])
    app.show(app.strings("addgroupuser.ok", username=args[-1], group=group["name"]))


@command("delgroupuser", min_args=2, max_args=None)
async def cmd_delgroupuser(app: ClientApp, args: list[str]) -> None:
    group = await my_group(app, _name(args[:-1]))
    await app.client.delgroupuser(group["group_id"], args[-1])
    app.show(app.strings("delgroupuser.ok", username=args[-1], group=group["name"]))


@command("setgrouprole", min_args=3, max_args=None)
async def cmd_setgrouprole(app: ClientApp, args: list[str]) -> None:
    role = args[-1].lower()
    if role not in ("admin", "member"):
        raise UsageError
    group = await my_group(app, _name(args[:-2]))
    await app.client.setgrouprole(group["group_id"], args[-2], role)
    app.show(app.strings(f"setgrouprole.{role}", username=args[-2], group=group["name"]))


@command("groups")
async def cmd_groups(app: ClientApp, args: list[str]) -> None:
    """Shows the groups and remembers their numbering for ``sendgroup``."""
    rows = await app.client.groups()
    app.group_list = rows
    app.show(*app.handler.groups(rows))


@command("sendgroup", min_args=2, max_args=2, rest=True)
async def cmd_sendgroup(app: ClientApp, args: list[str]) -> None:
    number = _number(args[0])
    if number is None:
        raise UsageError
    rows = app.group_list
    if rows is None:
        raise CommandRefused(app.strings("sendgroup.not_listed"))
    if not rows:
        raise CommandRefused(app.strings("sendgroup.empty"))
    group = _listed(rows, number)
    if group is None:
        raise CommandRefused(app.strings("sendgroup.bad_number", number=number, count=len(rows)))
    await app.client.sendgroup(group["group_id"], args[1])
    app.show(app.strings("sendgroup.echo", group=group.get("name"), message=args[1]))


@command("rooms")
async def cmd_rooms(app: ClientApp, args: list[str]) -> None:
    """Shows the public rooms and remembers their numbering for ``join`` / ``leave``."""
    rows = await app.client.publicgroups()
    app.room_list = rows
    app.show(*app.handler.rooms(rows))


@command("join", min_args=1, max_args=None)
async def cmd_join(app: ClientApp, args: list[str]) -> None:
    """A number of the last ``rooms`` list wins; otherwise a room's name."""
    typed = _name(args)
    room = _listed(app.room_list, _number(typed))
    if room is None:
        rooms = await app.client.publicgroups()
        if _number(typed) is not None and not match_groups(rooms, typed):
            raise CommandRefused(app.strings("room.bad_number", number=typed))
        room = _pick(app, rooms, typed, "room.unknown", "room.ambiguous")
    row = await app.client.joingroup(room["group_id"])
    app.show(app.handler.joined(row, room["name"]))


@command("leave", min_args=1, max_args=None)
async def cmd_leave(app: ClientApp, args: list[str]) -> None:
    """A number of the last ``rooms`` list, or the name of any group the user is in."""
    typed = _name(args)
    room = _listed(app.room_list, _number(typed))
    if room is None:
        mine = await app.client.groups()
        if _number(typed) is not None and not match_groups(mine, typed):
            raise CommandRefused(app.strings("room.bad_number", number=typed))
        room = _pick(app, mine, typed, "room.not_joined", "group.ambiguous")
    await app.client.leavegroup(room["group_id"])
    app.show(app.strings("leave.ok", name=room["name"]))


# --- administration (unlocked by a login with is_admin) ---------------------


def _split_group_head(remainder: str, count: int) -> list[str]:
    """Split ``"a group" creator message ...`` into ``count`` arguments.

    The first may be in quotes (a group name with spaces); the last takes
    the rest of the line.
    """
    text = remainder.strip()
    if text[:1] in ('"', "'"):
        end = text.find(text[0], 1)
        if end > 0:
            return [text[1:end], *text[end + 1 :].split(maxsplit=count - 2)]
    return text.split(maxsplit=count - 1)


@command("allusers", max_args=1, admin_only=True)
async def cmd_allusers(app: ClientApp, args: list[str]) -> None:
    if args and args[0] != "--online":
        raise UsageError
    online_only = bool(args)
    users = await app.client.allusers(online_only=online_only)
    app.show(*app.handler.users(users, online_only=online_only))


@command("allgroup", admin_only=True, aliases=("allgroups",))
async def cmd_allgroup(app: ClientApp, args: list[str]) -> None:
    app.show(*app.handler.all_groups(await app.client.allgroup()))


@command("adminsend", min_args=2, max_args=2, rest=True, admin_only=True)
async def cmd_adminsend(app: ClientApp, args: list[str]) -> None:
    to, text = args
    await app.client.adminsend(to, text)
    app.show(app.strings("adminsend.echo", to=to, message=text))


@command(
    "adminsendgroup",
    min_args=3,
    max_args=3,
    admin_only=True,
    splitter=lambda remainder: _split_group_head(remainder, 3),
)
async def cmd_adminsendgroup(app: ClientApp, args: list[str]) -> None:
    name, creator, text = args
    await app.client.adminsendgroup(text, name=name, creator=creator)
    app.show(app.strings("adminsendgroup.echo", group=name, message=text))


@command("broadcast", min_args=1, max_args=1, rest=True, admin_only=True)
async def cmd_broadcast(app: ClientApp, args: list[str]) -> None:
    count = await app.client.broadcast(args[0])
    app.show(app.strings("broadcast.ok", count=count))


@command("blockuser", min_args=1, max_args=1, admin_only=True)
async def cmd_blockuser(app: ClientApp, args: list[str]) -> None:
    await app.client.blockuser(args[0])
    app.show(app.strings("blockuser.ok", username=args[0]))


@command("unblockuser", min_args=1, max_args=1, admin_only=True)
async def cmd_unblockuser(app: ClientApp, args: list[str]) -> None:
    await app.client.unblockuser(args[0])
    app.show(app.strings("unblockuser.ok", username=args[0]))


@command("blockgroup", min_args=2, max_args=None, admin_only=True)
async def cmd_blockgroup(app: ClientApp, args: list[str]) -> None:
    name, creator = _name(args[:-1]), args[-1]
    await app.client.blockgroup(name=name, creator=creator)
    app.show(app.strings("blockgroup.ok", name=name, creator=creator))


@command("unblockgroup", min_args=2, max_args=None, admin_only=True)
async def cmd_unblockgroup(app: ClientApp, args: list[str]) -> None:
    name, creator = _name(args[:-1]), args[-1]
    await app.client.unblockgroup(name=name, creator=creator)
    app.show(app.strings("unblockgroup.ok", name=name, creator=creator))


@command("help", max_args=1, needs_server=False, aliases=("?",))
async def cmd_help(app: ClientApp, args: list[str]) -> None:
    public, admin = app.visible_commands()
    app.show(app.strings("help.title"))
    for cmd in public:
        app.show(*help_lines(app.strings, cmd))
    if admin:
        app.show(app.strings("help.admin_title"))
        for cmd in admin:
            app.show(*help_lines(app.strings, cmd))


#: terminal columns of the usage column of ``help``; a longer usage gets a line of its own
HELP_USAGE_WIDTH = 30


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: CJK (wide) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def help_lines(strings: Strings, cmd: Command) -> list[str]:
    """``cmd``'s entry in ``help``, its help text aligned in one column."""
    usage, text = strings(cmd.usage_key), strings(cmd.help_key)
    width = display_width(usage)
    if width <= HELP_USAGE_WIDTH:
        padded = usage + " " * (HELP_USAGE_WIDTH - width)
        return [strings("help.line", usage=padded, help=text)]
    return [
        strings("help.line", usage=usage, help="").rstrip(),
        strings("help.line", usage=" " * HELP_USAGE_WIDTH, help=text),
    ]


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
