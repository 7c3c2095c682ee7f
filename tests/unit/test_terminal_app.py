"""The terminal app (``ClientApp``) over the fake server: commands, checks, refusals, output.

Each test drives ``ClientApp.execute`` with a ``RecordingTerminal`` and looks
at the requests the fake server got and the lines the app showed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from client_fakes import (
    Envelope,
    FakeConn,
    FakeServer,
    RecordingTerminal,
    client_factory,
    msg,
    running_server,
    wait_for,
)

from p2sp.client import Client
from p2sp.terminal.app import ClientApp
from p2sp.terminal.main import run_piped
from p2sp.terminal.strings import Strings
from p2sp.terminal.terminals import EXIT_OUTPUT_CLOSED, PipeTerminal


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with running_server() as srv:
        yield srv


@pytest.fixture
async def make_client(server: FakeServer) -> AsyncIterator[Callable[..., Client]]:
    async with client_factory(server) as make:
        yield make


@pytest.fixture
async def make_app(
    make_client: Callable[..., Client],
) -> AsyncIterator[Callable[..., Any]]:

    apps: list[ClientApp] = []

    async def make(lang: str = "en", *secrets: str) -> tuple[ClientApp, RecordingTerminal]:
        terminal = RecordingTerminal(*secrets)
        app = ClientApp(make_client(), Strings(lang), terminal)
        assert await app.start()
        apps.append(app)
        return app, terminal

    yield make
    for app in apps:
        await app.stop()


async def test_admin_commands_unlock_and_lock_at_once_on_the_session_event(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:

    en = Strings("en")
    app, terminal = await make_app()
    await app.execute("login alice password1")
    await app.execute("allusers")
    assert terminal.lines[-1] == en("command.admin_only", name="allusers")
    assert server.actions("allusers") == []

    server.conns[0].push("session", {"is_admin": True})
    await wait_for(lambda: en("event.session.admin") in terminal.lines)
    await app.execute("help")
    assert en("help.admin_title") in terminal.lines
    await app.execute("allusers")
    assert len(server.actions("allusers")) == 1  # unlocked: it reached the server

    server.conns[0].push("session", {"is_admin": False})
    await wait_for(lambda: en("event.session.user") in terminal.lines)
    terminal.lines.clear()
    await app.execute("broadcast hello")
    assert terminal.lines == [en("command.admin_only", name="broadcast")]
    assert server.actions("broadcast") == []
    await app.execute("help")
    assert en("help.admin_title") not in terminal.lines


@pytest.mark.parametrize(
    ("lang", "line", "expected"),
    [
        ("en", "reg a/b", "'/' cannot be part of a user name"),
        ("zh", "reg a/b", "用户名中不能有 '/'"),
        ("en", "reg " + "x" * 40, "A user name has 1 to 32 characters; " + "x" * 40 + " has 40."),
        ("zh", "reg " + "x" * 40, "用户名须为 1 到 32 个字符"),
        ("en", "reg аlice", "аlice mixes Cyrillic and Latin letters"),
        ("zh", "reg аlice", "аlice 混用了西里尔和拉丁字母"),
        ("en", "login a/b", "'/' cannot be part of a user name"),
        ("en", "login " + "y" * 33, "A user name has 1 to 32 characters"),
    ],
)
async def test_names_are_checked_before_a_password_is_asked(
    server: FakeServer, make_app: Callable[..., Any], lang: str, line: str, expected: str
) -> None:
    app, terminal = await make_app(lang, "password1", "password1")
    await app.execute(line)
    assert terminal.prompts == []  # no password asked for
    assert server.actions("reg") == [] and server.actions("login") == []
    (shown,) = terminal.lines
    assert expected in shown, shown
    assert "regex" not in shown and "Expected" not in shown and "\\w" not in shown


async def test_new_password_length_is_checked_before_sending(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:
    app, terminal = await make_app("zh", "short", "short")
    await app.execute("reg alice")
    assert len(terminal.prompts) == 2
    assert server.actions("reg") == []
    assert terminal.lines == ["密码须为 8 到 128 个字符，这个有 5 个。未发送。"]
    app, terminal = await make_app("en", "p" * 129, "p" * 129)
    await app.execute("reg alice")
    assert terminal.lines == [
        "A password has 8 to 128 characters; this one has 129. Nothing was sent."
    ]
    app, terminal = await make_app("en", "password1", "password1")
    await app.execute("reg 张三")  # one script: fine
    assert server.actions("reg")[-1]["payload"]["data"] == {
        "username": "张三",
        "password": "password1",
    }


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("newgroup " + "g" * 70, "newgroup"),
        ("add " + "z" * 33, "add"),
        (".send a/b hello", "send"),
    ],
)
async def test_lengths_are_checked_before_sending(
    server: FakeServer, make_app: Callable[..., Any], line: str, action: str
) -> None:
    app, terminal = await make_app("zh")
    await app.execute("login alice password1")
    await app.execute(line)
    assert server.actions(action) == []
    assert "未发送" in terminal.lines[-1], terminal.lines
    if action == "newgroup":
        assert terminal.lines[-1] == "群组名最多 64 个字符，这个有 70 个。未发送。"


async def test_server_refusals_are_shown_in_chinese_with_the_servers_reason(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:
    similar = "the name 'AIice' looks too much like the existing user 'alice'; choose another"

    async def behaviour(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "reg":
            conn.respond(req, status="fail", code="user_exists", message=similar)
        elif req["type"] == "login":
            conn.respond(
                req,
                {"retry_after": 30},
                status="fail",
                code="rate_limited",
                message="too many failed logins; try again in 30 s",
            )
        else:
            conn.respond(req)

    server.on_request = behaviour
    app, terminal = await make_app("zh", "password1", "password1")
    await app.execute("reg AIice")
    assert terminal.lines[-1] == f"失败: 这个用户名不能注册: {similar} (user_exists)"
    await app.execute("login alice password1")
    assert terminal.lines[-1] == "失败: 尝试次数过多，请 30 秒后再试 (rate_limited)"


async def test_a_closed_output_ends_the_piped_client_without_acking(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    """``p2sp-client | head -1``: the first line that cannot be written ends it."""
    import io
    import os

    class ClosedPipe(io.StringIO):
        """Its reader goes away just before the message is printed."""

        def write(self, text: str) -> int:
            if "whispers" in text or self.getvalue().count("\n") > 1:
                raise BrokenPipeError(32, "Broken pipe")
            return super().write(text)

    read_end, write_end = os.pipe()  # stdin stays open: only the output ends the client
    stdin = open(read_end, encoding="utf-8")  # noqa: SIM115
    try:
        terminal = PipeTerminal(stdin, ClosedPipe())
        app = ClientApp(make_client(ack_interval=60.0), Strings("en"), terminal)
        running = asyncio.ensure_future(run_piped(app, terminal))
        os.write(write_end, b"login bob password1\n")
        await wait_for(lambda: bool(server.conns) and bool(server.actions("login")))
        server.conns[0].push("message", msg(4, 1))
        async with asyncio.timeout(5):
            assert await running == EXIT_OUTPUT_CLOSED
        assert terminal.output_closed
        assert "Welcome, bob!" in terminal.stdout.getvalue()
        assert server.actions("ack") == []  # never shown, so never acknowledged
    finally:
        stdin.close()
        os.close(write_end)
