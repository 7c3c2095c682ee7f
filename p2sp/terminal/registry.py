"""The command table: one ``Command`` per name, registered with ``@command``.

Adding a command is one decorated coroutine (in ``p2sp.terminal.commands``)
plus its ``cmd.<name>.usage`` and ``cmd.<name>.help`` strings; ``help``
lists commands in the order they are registered.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2sp.terminal.strings import Strings

CommandFunc = Callable[["ClientApp", list[str]], Awaitable[None]]

if TYPE_CHECKING:
    from p2sp.terminal.app import ClientApp


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
