"""Where the terminal client reads and writes: a terminal, or pipes.

Two front ends share one ``ClientApp``: on a terminal, a prompt_toolkit
prompt (``PromptTerminal``); with piped stdin (scripts, tests), plain
line-by-line reading (``PipeTerminal``), where the passwords a command asks
for are the next lines. The input history of the prompt never keeps a
password (``history_line``).
"""

from __future__ import annotations

import asyncio
import codecs
import io
import os
import sys
from collections.abc import Callable
from typing import Any, Final, Protocol, TextIO

from prompt_toolkit.history import InMemoryHistory

from p2sp.terminal.registry import find_command


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
