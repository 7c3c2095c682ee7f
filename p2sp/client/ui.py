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

Leaving is always quiet: ``quit``/``exit``, Ctrl-D (end of input) and Ctrl-C
end the client without a traceback (status 0, or 130 for a Ctrl-C that
interrupts a piped client); a closed stdout (``p2sp-client | head -1``) ends
it with status 141, as SIGPIPE ends other tools. Stdin is read on the event
loop, not in a thread, so nothing waits for a line that will never come.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import io
import logging
import os
import re
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TextIO

from prompt_toolkit.history import InMemoryHistory

from p2sp.client import config
from p2sp.client.client import Client
from p2sp.client.handler import ClientMessageHandler
from p2sp.client.strings import LANGUAGES, Strings, resolve_language
from p2sp.common.exceptions import P2SPError
from p2sp.common.limits import (
    GROUP_NAME_MAX,
    GROUP_NAME_PATTERN,
    PASSWORD_MAX,
    PASSWORD_MIN,
    USERNAME_MAX,
    USERNAME_MIN,
    USERNAME_PATTERN,
)
from p2sp.common.usernames import UsernameError, check_scripts, display_form, scripts_of

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
    ``history_args``, if set, is how many arguments the input history keeps
    of the command: the rest may be a password (``login alice <password>``).
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
    history_args: int | None = None

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
    history_args: int | None = None,
) -> Callable[[CommandFunc], CommandFunc]:
    """Register a coroutine as a command (see ``Command`` for the options)."""

    def register(func: CommandFunc) -> CommandFunc:
        cmd = Command(
            name,
            func,
            min_args,
            max_args,
            rest,
            admin_only,
            needs_server,
            aliases,
            splitter,
            history_args,
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


#: Exit status when stdout was closed under the client (128 + SIGPIPE, as the
#: shell reports a tool that SIGPIPE ended).
EXIT_OUTPUT_CLOSED: Final = 141
#: Exit status when Ctrl-C (SIGINT) interrupted a piped client.
EXIT_INTERRUPTED: Final = 130


def silence_stdout() -> None:
    """Point stdout at /dev/null after its reader went away.

    What is still buffered, and Python's own flush at exit, then go nowhere
    instead of ending in a ``BrokenPipeError`` traceback (the recipe of
    https://docs.python.org/3/library/signal.html#note-on-sigpipe).
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class StdinLines:
    """Input lines, read on the event loop whenever the loop can watch the input.

    A pipe or a terminal is watched with ``loop.add_reader``: no thread sits
    in a blocking ``readline``, so Ctrl-C (or the end of the output) ends the
    client at once instead of after the next Enter. A regular file
    (``< script``), which the loop cannot watch but which never blocks, and a
    stream without a file descriptor are read in a thread.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            self._fd = None
        encoding = getattr(stream, "encoding", None) or "utf-8"
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._buffer = ""
        self._eof = False
        self._wakeup: asyncio.Future[None] | None = None

    async def readline(self) -> str:
        """The next line with its line break; "" at the end of input."""
        if self._fd is None:
            return await asyncio.to_thread(self.stream.readline)
        loop = asyncio.get_running_loop()
        while "\n" not in self._buffer and not self._eof:
            self._wakeup = loop.create_future()
            try:
                loop.add_reader(self._fd, self._readable)
            except (OSError, ValueError, NotImplementedError):
                self._fd = None  # a regular file: read it the plain way
                return self._take_all() + await asyncio.to_thread(self.stream.readline)
            try:
                await self._wakeup
            finally:
                loop.remove_reader(self._fd)
                self._wakeup = None
        if "\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition("\n")
            return line + "\n"
        return self._take_all()

    def _take_all(self) -> str:
        rest, self._buffer = self._buffer, ""
        return rest

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 65536)  # readable: returns at once
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._buffer += self._decoder.decode(data)
        else:
            self._buffer += self._decoder.decode(b"", final=True)
            self._eof = True
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)


class PipeTerminal:
    """Plain stdin/stdout, for scripts: secrets are simply the next input lines."""

    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.lines = StdinLines(stdin)
        #: stdout was closed by its reader: nothing more can be shown
        self.output_closed = False
        #: called once when stdout is found closed (the app stops then)
        self.on_output_closed: Callable[[], None] | None = None

    @property
    def scripted(self) -> bool:
        """The input is a script, not a person: its password lines are fixed in advance."""
        return not self.stdin.isatty()

    def show(self, line: str) -> None:
        if self.output_closed:
            return
        try:
            self.stdout.write(line + "\n")
            self.stdout.flush()
        except BrokenPipeError:
            self.output_closed = True
            if self.stdout is sys.stdout or self.stdout is sys.__stdout__:
                silence_stdout()
            if self.on_output_closed is not None:
                self.on_output_closed()

    async def read_line(self) -> str | None:
        """The next input line without its line break; None at end of input."""
        line = await self.lines.readline()
        if not line:
            return None
        return line.rstrip("\r\n")

    async def read_secret(self, prompt: str) -> str | None:
        if self.stdin.isatty():  # stdout redirected but a person is typing
            return await self._read_hidden(prompt)
        return await self.read_line()

    async def _read_hidden(self, prompt: str) -> str | None:
        """A line typed on the terminal without echo; the echo is back however it ends."""
        try:
            import termios

            fd = self.stdin.fileno()
            saved: list[Any] | None = termios.tcgetattr(fd)
        except (ImportError, OSError, ValueError):
            saved = None
        sys.stderr.write(prompt)
        sys.stderr.flush()
        if saved is not None:
            hidden = [*saved]
            hidden[3] = saved[3] & ~termios.ECHO
            termios.tcsetattr(fd, termios.TCSAFLUSH, hidden)
        try:
            return await self.read_line()
        finally:
            if saved is not None:
                termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
            sys.stderr.write("\n")
            sys.stderr.flush()


def history_line(line: str) -> str:
    """What the input history keeps of a command line: never a password.

    ``login alice <password>`` is kept as ``login alice`` (recalled, it asks
    for the password, hidden); ``reg alice <anything>`` as ``reg alice``.
    Other lines are kept as typed.
    """
    name, _, remainder = line.strip().partition(" ")
    cmd = find_command(name)
    if cmd is None or cmd.history_args is None:
        return line
    return " ".join([name, *remainder.split()[: cmd.history_args]])


class ScrubbedHistory(InMemoryHistory):
    """The prompt's history (arrow keys, Ctrl-R) with every password cut out (``history_line``)."""

    def append_string(self, string: str) -> None:
        super().append_string(history_line(string))


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
            if self.output_closed:
                return  # take nothing more: it could not be shown
            _redraw_prompt()


def _redraw_prompt() -> None:
    """Let a prompt that depends on the session (``alice>``) follow a kick at once."""
    from prompt_toolkit.application import get_app_or_none

    app = get_app_or_none()
    if app is not None:
        app.invalidate()


# --- checks made before anything is asked or sent ---------------------------
#
# The rules are the protocol's own (p2sp.common.limits, p2sp.common.usernames),
# so a name the server would refuse is refused here, in the user's language,
# before a password is asked for or a request is sent.

_USERNAME_CHAR: Final = re.compile(USERNAME_PATTERN)
_GROUP_NAME: Final = re.compile(GROUP_NAME_PATTERN)


def _char(ch: str) -> str:
    """One character named for a person: ``'/'``, or ``U+001B`` if it does not show."""
    return f"'{ch}'" if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"


def _listing(strings: Strings, items: Sequence[str]) -> str:
    """``a, b and c`` in the user's language."""
    if len(items) <= 1:
        return "".join(items)
    head = strings("check.list_separator").join(items[:-1])
    return head + strings("check.list_last") + items[-1]


def _script_names(strings: Strings, scripts: set[str]) -> str:
    names = []
    for script in sorted(scripts):
        key = f"script.{script.lower()}"
        names.append(strings(key) if strings.has(key) else script.title())
    return _listing(strings, names)


def check_username(app: ClientApp, name: str, *, new: bool = False) -> None:
    """Refuse a name that cannot be anyone's (``CommandRefused``), before anything is sent.

    Length and characters always; with ``new`` (``reg``) also the rest of
    the registration rule: the PRECIS form and one script per name.
    Look-alikes of existing names only the server can tell (``user_exists``).
    """
    strings = app.strings
    shown = app.handler.name(name)
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX:
        raise CommandRefused(
            strings(
                "check.username.length",
                min=USERNAME_MIN,
                max=USERNAME_MAX,
                name=shown,
                count=len(name),
            )
        )
    bad = next((ch for ch in name if not _USERNAME_CHAR.match(ch)), None)
    if bad is not None:
        raise CommandRefused(strings("check.username.char", char=_char(bad)))
    if not new:
        return
    try:
        display = display_form(name)
    except UsernameError as exc:
        raise CommandRefused(
            strings("check.username.other", name=shown, reason=exc.reason)
        ) from None
    try:
        check_scripts(display)
    except UsernameError:
        scripts = _script_names(strings, scripts_of(display))
        raise CommandRefused(
            strings("check.username.scripts", name=shown, scripts=scripts)
        ) from None


def check_group_name(app: ClientApp, name: str) -> None:
    """Refuse a group name the server would (too long, control characters)."""
    if not name:
        raise UsageError
    if len(name) > GROUP_NAME_MAX:
        raise CommandRefused(app.strings("check.group.length", max=GROUP_NAME_MAX, count=len(name)))
    if not _GROUP_NAME.match(name):
        raise CommandRefused(app.strings("check.group.control"))


async def refuse_before_secrets(app: ClientApp, refusal: CommandRefused, count: int) -> None:
    """Refuse a command before its passwords are asked for.

    A person is not asked at all. A script (piped stdin) has written the
    password lines already: they are read and dropped, so the script stays
    in step and a password is never run as a command (and echoed back as an
    unknown one).
    """
    if getattr(app.terminal, "scripted", False):
        for _ in range(count):
            if await app.terminal.read_secret("") is None:
                break
    raise refusal


def check_password(app: ClientApp, password: str) -> None:
    """Refuse a new password outside the protocol's length rule."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise CommandRefused(
            app.strings(
                "check.password.length", min=PASSWORD_MIN, max=PASSWORD_MAX, count=len(password)
            )
        )


# --- commands -------------------------------------------------------------


@command("reg", min_args=1, max_args=1, history_args=1)
async def cmd_reg(app: ClientApp, args: list[str]) -> None:
    """The name is checked before a password is asked for; the passwords are
    compared and their length checked here, so a typo never reaches the server."""
    username = args[0]
    try:
        check_username(app, username, new=True)
    except CommandRefused as refusal:
        await refuse_before_secrets(app, refusal, 2)
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
    check_password(app, first)
    user_id = await app.client.reg(username, first)
    app.show(app.handler.registered(username, user_id))


@command("login", min_args=1, max_args=2, rest=True, history_args=1)
async def cmd_login(app: ClientApp, args: list[str]) -> None:
    """The password is the rest of the line, so one with spaces can be typed inline.

    The input history keeps only ``login <username>`` (``history_args``).
    """
    username = args[0]
    password = args[1] if len(args) > 1 else None
    try:
        check_username(app, username)
    except CommandRefused as refusal:
        await refuse_before_secrets(app, refusal, 0 if password is not None else 1)
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
    check_username(app, args[0])
    data = await app.client.add(args[0])
    app.show(app.handler.added(data, args[0]))


@command("friends")
async def cmd_friends(app: ClientApp, args: list[str]) -> None:
    app.show(*app.handler.friends(await app.client.friends()))


@command("send", min_args=2, max_args=2, rest=True, aliases=(".send", "/msg", "msg"))
async def cmd_send(app: ClientApp, args: list[str]) -> None:
    """``.send <user> <message>`` (the original P2SP client's command) or ``/msg``.

    The message is the rest of the line, inner spaces kept. A failure is
    reported by the dispatcher (the code in words, and the code); success is
    a one-line echo.
    """
    to, text = args
    check_username(app, to)
    await app.client.send(to, text)
    app.show(app.handler.sent(to, text))


# --- groups and rooms -------------------------------------------------------
#
# The original P2SP client names groups by name (``delgroup <groupname>``)
# while the protocol takes a group_id: the client looks the name up among the user's own groups
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
    name = _name(args)
    check_group_name(app, name)
    data = await app.client.newgroup(name)
    app.show(app.strings("newgroup.ok", name=app.handler.group(data.get("name") or name)))


@command("delgroup", min_args=1, max_args=None)
async def cmd_delgroup(app: ClientApp, args: list[str]) -> None:
    group = await my_group(app, _name(args))
    await app.client.delgroup(group["group_id"])
    app.show(app.strings("delgroup.ok", name=app.handler.group(group["name"])))


@command("addgroupuser", min_args=2, max_args=None)
async def cmd_addgroupuser(app: ClientApp, args: list[str]) -> None:
    check_username(app, args[-1])
    group = await my_group(app, _name(args[:-1]))
    await app.client.addgroupuser(group["group_id"], args[-1])
    app.show(
        app.strings(
            "addgroupuser.ok",
            username=app.handler.name(args[-1]),
            group=app.handler.group(group["name"]),
        )
    )


@command("delgroupuser", min_args=2, max_args=None)
async def cmd_delgroupuser(app: ClientApp, args: list[str]) -> None:
    check_username(app, args[-1])
    group = await my_group(app, _name(args[:-1]))
    await app.client.delgroupuser(group["group_id"], args[-1])
    app.show(
        app.strings(
            "delgroupuser.ok",
            username=app.handler.name(args[-1]),
            group=app.handler.group(group["name"]),
        )
    )


@command("setgrouprole", min_args=3, max_args=None)
async def cmd_setgrouprole(app: ClientApp, args: list[str]) -> None:
    role = args[-1].lower()
    if role not in ("admin", "member"):
        raise UsageError
    check_username(app, args[-2])
    group = await my_group(app, _name(args[:-2]))
    await app.client.setgrouprole(group["group_id"], args[-2], role)
    app.show(
        app.strings(
            f"setgrouprole.{role}",
            username=app.handler.name(args[-2]),
            group=app.handler.group(group["name"]),
        )
    )


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
    app.show(
        app.strings(
            "sendgroup.echo",
            group=app.handler.group(group.get("name")),
            message=app.handler.body(args[1]),
        )
    )


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
    app.show(app.strings("leave.ok", name=app.handler.group(room["name"])))


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
    check_username(app, to)
    await app.client.adminsend(to, text)
    app.show(app.strings("adminsend.echo", to=app.handler.name(to), message=app.handler.body(text)))


@command(
    "adminsendgroup",
    min_args=3,
    max_args=3,
    admin_only=True,
    splitter=lambda remainder: _split_group_head(remainder, 3),
)
async def cmd_adminsendgroup(app: ClientApp, args: list[str]) -> None:
    name, creator, text = args
    check_group_name(app, name)
    check_username(app, creator)
    await app.client.adminsendgroup(text, name=name, creator=creator)
    app.show(
        app.strings(
            "adminsendgroup.echo", group=app.handler.group(name), message=app.handler.body(text)
        )
    )


@command("broadcast", min_args=1, max_args=1, rest=True, admin_only=True)
async def cmd_broadcast(app: ClientApp, args: list[str]) -> None:
    count = await app.client.broadcast(args[0])
    app.show(app.strings("broadcast.ok", count=count))


@command("blockuser", min_args=1, max_args=1, admin_only=True)
async def cmd_blockuser(app: ClientApp, args: list[str]) -> None:
    check_username(app, args[0])
    await app.client.blockuser(args[0])
    app.show(app.strings("blockuser.ok", username=app.handler.name(args[0])))


@command("unblockuser", min_args=1, max_args=1, admin_only=True)
async def cmd_unblockuser(app: ClientApp, args: list[str]) -> None:
    check_username(app, args[0])
    await app.client.unblockuser(args[0])
    app.show(app.strings("unblockuser.ok", username=app.handler.name(args[0])))


def _group_and_creator(app: ClientApp, args: list[str]) -> tuple[str, str]:
    name, creator = _name(args[:-1]), args[-1]
    check_group_name(app, name)
    check_username(app, creator)
    return name, creator


@command("blockgroup", min_args=2, max_args=None, admin_only=True)
async def cmd_blockgroup(app: ClientApp, args: list[str]) -> None:
    name, creator = _group_and_creator(app, args)
    await app.client.blockgroup(name=name, creator=creator)
    app.show(
        app.strings(
            "blockgroup.ok", name=app.handler.group(name), creator=app.handler.name(creator)
        )
    )


@command("unblockgroup", min_args=2, max_args=None, admin_only=True)
async def cmd_unblockgroup(app: ClientApp, args: list[str]) -> None:
    name, creator = _group_and_creator(app, args)
    await app.client.unblockgroup(name=name, creator=creator)
    app.show(
        app.strings(
            "unblockgroup.ok", name=app.handler.group(name), creator=app.handler.name(creator)
        )
    )


@command("help", max_args=1, needs_server=False, aliases=("?",))
async def cmd_help(app: ClientApp, args: list[str]) -> None:
    """Every command this user may run, and the ways out; ``help <command>``: one, in full."""
    if args:
        cmd = find_command(args[0])
        if cmd is None:
            app.show(app.strings("command.unknown", name=app.handler.name(args[0])))
            return
        app.show(*help_lines(app.strings, cmd))
        more = f"cmd.{cmd.name}.more"
        if app.strings.has(more):
            for line in app.strings(more).split("\n"):
                app.show(app.strings("help.more", line=line))
        return
    public, admin = app.visible_commands()
    app.show(app.strings("help.title"))
    for cmd in public:
        app.show(*help_lines(app.strings, cmd))
    if admin:
        app.show(app.strings("help.admin_title"))
        for cmd in admin:
            app.show(*help_lines(app.strings, cmd))
    app.show(app.strings("help.ways_out"))


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
    app.quit()


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
    """The prompt_toolkit front end; returns the exit status.

    Ctrl-C clears a half-typed line, as in a shell; on an empty line it
    leaves, like Ctrl-D and ``quit``.
    """
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    session: PromptSession[str] = PromptSession(history=ScrubbedHistory())
    with patch_stdout():
        if not await app.start():
            return 1
        app.show(app.strings("app.banner", host=app.client.host, port=app.client.port))
        try:
            while not app.quitting:
                try:
                    line = await session.prompt_async(app.prompt)
                except KeyboardInterrupt:
                    if session.default_buffer.text.strip():
                        continue  # the line is cleared; the next prompt starts empty
                    break  # Ctrl-C on an empty line
                except EOFError:
                    break  # Ctrl-D
                await app.execute(line)
            app.show(app.strings("app.bye"))
        finally:
            await app.stop()
    return 0


async def run_piped(app: ClientApp, terminal: PipeTerminal) -> int:
    """The line-by-line front end; returns the exit status.

    Stops at the end of input, at ``quit``, or as soon as stdout is closed
    (status 141; what could not be shown is not acknowledged, so the server
    delivers it again at the next login).
    """
    terminal.on_output_closed = lambda: app.quit(output_closed=True)
    if not await app.start():
        return 1
    try:
        while not app.quitting:
            line = await app.unless_quit(terminal.read_line())
            if line is None:
                if not app.quitting:
                    # End of input: give events already on their way a moment.
                    await asyncio.sleep(config.PIPE_GRACE)
                break
            await app.execute(line)
    finally:
        await app.stop()
    return EXIT_OUTPUT_CLOSED if app.output_closed else 0


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
    except KeyboardInterrupt:  # Ctrl-C while a command ran, or in a piped client
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed where the terminal did not catch it
        silence_stdout()
        return EXIT_OUTPUT_CLOSED


if __name__ == "__main__":
    sys.exit(main())
