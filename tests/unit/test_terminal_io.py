"""The terminal client's own machinery: input history, stdin reading, help.

The prompt runs on prompt_toolkit's pipe input with a dummy output, so the
keys (arrows, Ctrl-R) are processed exactly as on a terminal.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from p2sp.terminal.commands import COMMANDS
from p2sp.terminal.commands.help import cmd_help
from p2sp.terminal.strings import Strings
from p2sp.terminal.terminals import ScrubbedHistory, StdinLines, history_line

SECRET = "hunter2 hunter2"


# --- passwords never stay in the input history ------------------------------


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        (f"login alice {SECRET}", "login alice"),
        (f"  login   alice {SECRET}", "login alice"),
        ("login alice", "login alice"),
        (f"LOGIN alice {SECRET}", "LOGIN alice"),
        (f"reg alice {SECRET}", "reg alice"),
        ("send bob hello there", "send bob hello there"),
        ("nonsense words", "nonsense words"),
    ],
)
def test_history_line_drops_passwords(typed: str, kept: str) -> None:
    assert history_line(typed) == kept


async def _prompt(session: PromptSession[str], keys: str, inp: Any) -> str:
    inp.send_text(keys)
    async with asyncio.timeout(5):
        return await session.prompt_async("> ")


async def test_a_typed_password_cannot_be_recalled() -> None:
    with create_pipe_input() as inp:
        session: PromptSession[str] = PromptSession(
            history=ScrubbedHistory(), input=inp, output=DummyOutput()
        )
        assert await _prompt(session, f"login alice {SECRET}\r", inp) == f"login alice {SECRET}"
        assert await _prompt(session, "friends\r", inp) == "friends"
        # Up arrow twice: the login line comes back without its password.
        assert await _prompt(session, "\x1b[A\x1b[A\r", inp) == "login alice"
        # Ctrl-R for the password finds nothing: the line stays empty.
        assert await _prompt(session, "\x12hunter2\r\r", inp) == ""
        assert not any("hunter2" in line for line in session.history.get_strings())


async def test_plain_history_would_keep_it() -> None:
    """The control: prompt_toolkit's own history recalls the password."""
    from prompt_toolkit.history import InMemoryHistory

    with create_pipe_input() as inp:
        session: PromptSession[str] = PromptSession(
            history=InMemoryHistory(), input=inp, output=DummyOutput()
        )
        await _prompt(session, f"login alice {SECRET}\r", inp)
        assert await _prompt(session, "\x1b[A\r", inp) == f"login alice {SECRET}"
        assert await _prompt(session, "\x12hunter2\r\r", inp) == f"login alice {SECRET}"


def test_only_login_and_reg_cut_arguments() -> None:
    cutting = {name for name, cmd in COMMANDS.items() if cmd.history_args is not None}
    assert cutting == {"login", "reg"}


# --- stdin is read on the event loop -----------------------------------------


def test_a_pending_read_does_not_hold_up_the_exit() -> None:
    """Ctrl-C (the main task cancelled) ends the client at once, input or not."""
    read_end, write_end = os.pipe()
    stream = open(read_end, encoding="utf-8")  # noqa: SIM115
    late = threading.Timer(5.0, lambda: os.write(write_end, b"too late\n"))
    late.start()
    try:

        async def main() -> None:
            reading = asyncio.ensure_future(StdinLines(stream).readline())
            await asyncio.sleep(0.1)
            reading.cancel()

        start = time.monotonic()
        asyncio.run(main())
        assert time.monotonic() - start < 2.0  # not after the line 5 s later
    finally:
        late.cancel()
        stream.close()
        os.close(write_end)


async def test_lines_from_a_pipe() -> None:
    read_end, write_end = os.pipe()
    stream = open(read_end, encoding="utf-8")  # noqa: SIM115
    try:
        lines = StdinLines(stream)
        os.write(write_end, b"one\ntw")
        assert await lines.readline() == "one\n"
        os.write(write_end, "o 你".encode()[:-1])  # a character split between reads
        os.write(write_end, "o 你".encode()[-1:] + b"\nlast")
        assert await lines.readline() == "two 你\n"
        os.close(write_end)
        write_end = -1
        assert await lines.readline() == "last"
        assert await lines.readline() == ""
    finally:
        stream.close()
        if write_end >= 0:
            os.close(write_end)


async def test_lines_from_a_regular_file(tmp_path: Any) -> None:
    path = tmp_path / "script"
    path.write_text("help\nquit\n", encoding="utf-8")
    with path.open(encoding="utf-8") as stream:
        lines = StdinLines(stream)
        assert [await lines.readline() for _ in range(3)] == ["help\n", "quit\n", ""]


# --- help ---------------------------------------------------------------------


class _App:
    """Just what ``help`` reads of a ClientApp."""

    def __init__(self, lang: str) -> None:
        from p2sp.terminal.display.handler import ClientMessageHandler

        self.strings = Strings(lang)
        self.handler = ClientMessageHandler(self.strings)
        self.lines: list[str] = []

    def show(self, *lines: str) -> None:
        self.lines.extend(lines)

    def visible_commands(self) -> tuple[list[Any], list[Any]]:
        return [c for c in COMMANDS.values() if not c.admin_only], []


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_help_names_every_way_out(lang: str) -> None:
    app = _App(lang)
    await cmd_help(app, [])  # type: ignore[arg-type]
    text = "\n".join(app.lines)
    for way in ("quit", "exit", "Ctrl-D", "Ctrl-C"):
        assert way in app.lines[-1], way
    assert "Ctrl-C" in text


async def test_help_reg_states_the_rules() -> None:
    from p2sp.common.limits import PASSWORD_MAX, PASSWORD_MIN
    from p2sp.common.usernames import RULE

    app = _App("en")
    await cmd_help(app, ["reg"])  # type: ignore[arg-type]
    text = "\n".join(app.lines)
    assert RULE in text
    assert f"{PASSWORD_MIN} to {PASSWORD_MAX} characters" in text
    app = _App("zh")
    await cmd_help(app, ["reg"])  # type: ignore[arg-type]
    assert f"{PASSWORD_MIN} 到 {PASSWORD_MAX} 个字符" in "\n".join(app.lines)
    app = _App("en")
    await cmd_help(app, ["nosuch"])  # type: ignore[arg-type]
    assert app.lines == ["Unknown command: nosuch. Type help to see the commands."]
