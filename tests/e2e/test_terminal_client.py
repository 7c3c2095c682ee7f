"""The real terminal client (``python -m p2sp.client.ui``) against the real server.

Scripts pipe commands through stdin, the way a user automates the client;
the interactive test drives a pseudo-terminal with pexpect, so prompt_toolkit
runs exactly as it does for a person. Expected lines come from the client's
own string table, so a wording change does not break the tests, but a line
that is missing does.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from p2sp.client.strings import Strings

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
EN = Strings("en")
ZH = Strings("zh")
PW = "correct horse battery"  # spaces on purpose: the rest of a login line is the password


def client_env(**extra: str) -> dict[str, str]:
    """The test's environment, with the repo importable and no locale surprises."""
    env = {k: v for k, v in os.environ.items() if k not in {"LC_ALL", "LC_MESSAGES", "LANG"}}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PROMPT_TOOLKIT_NO_CPR"] = "1"  # pexpect does not answer cursor-position queries
    env["LANG"] = "C.UTF-8"
    env.update(extra)
    return env


def client_args(server: Any, *extra: str) -> list[str]:
    return [
        "-m",
        "p2sp.client.ui",
        "--host",
        server.host,
        "--port",
        str(server.port),
        *extra,
    ]


def run_script(
    server: Any, lines: list[str], *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Pipe ``lines`` into the client and wait for it to exit at end of input."""
    return subprocess.run(
        [sys.executable, *client_args(server, *extra)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=REPO,
        env=env or client_env(),
    )


def test_piped_script_registers_logs_in_and_out(server: Any) -> None:
    result = run_script(
        server,
        ["reg alice", PW, PW, f"login alice {PW}", "logout", "quit"],
        "--lang",
        "en",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Registered alice (user id " in out
    assert EN("login.welcome_user", username="alice") in out
    assert EN("logout.ok") in out
    # Order is the script's: each command finishes before the next is read.
    assert out.index("Registered") < out.index("Welcome") < out.index(EN("logout.ok"))
    assert PW not in out  # passwords are never echoed


def test_piped_script_ends_at_eof_without_quit(server: Any) -> None:
    result = run_script(server, ["reg bob", PW, PW, "login bob", PW], "--lang", "en")
    assert result.returncode == 0, result.stderr
    assert EN("login.welcome_user", username="bob") in result.stdout


def test_mismatched_passwords_are_refused_locally(server: Any) -> None:
    result = run_script(
        server,
        ["reg alice", PW, PW + "!", f"login alice {PW}", "reg alice", PW, PW],
        "--lang",
        "en",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert EN("reg.mismatch") in out
    # Nothing reached the server: the account does not exist until the second reg.
    assert "(no_such_user)" in out
    assert "Registered alice" in out
    assert out.index(EN("reg.mismatch")) < out.index("(no_such_user)") < out.index("Registered")


def test_wrong_password_shows_server_message_and_code(server: Any) -> None:
    result = run_script(
        server,
        ["reg alice", PW, PW, "login alice not-the-password", "login nobody " + PW],
        "--lang",
        "en",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    bad = [line for line in lines if line.endswith("(bad_password)")]
    assert len(bad) == 1, result.stdout
    assert bad[0].startswith("Failed: ") and len(bad[0]) > len("Failed:  (bad_password)")
    assert any(line.endswith("(no_such_user)") for line in lines), result.stdout
    assert "Welcome" not in result.stdout


def test_weak_password_is_the_servers_call(server: Any) -> None:
    result = run_script(server, ["reg carol", "short", "short"], "--lang", "en")
    assert "(weak_password)" in result.stdout


def test_unknown_command_and_usage(server: Any) -> None:
    result = run_script(server, ["frobnicate now", "login", "help"], "--lang", "en")
    out = result.stdout
    assert EN("command.unknown", name="frobnicate") in out
    assert EN("command.usage", usage=EN("cmd.login.usage")) in out
    assert EN("help.title") in out and EN("cmd.reg.usage") in out


def test_chinese_from_the_locale(server: Any) -> None:
    result = run_script(
        server, ["reg 小明", PW, PW, f"login 小明 {PW}"], env=client_env(LANG="zh_CN.UTF-8")
    )
    assert result.returncode == 0, result.stderr
    assert ZH("login.welcome_user", username="小明") in result.stdout


def test_unreachable_server_exits_nonzero() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Nowhere:
        host = "127.0.0.1"

    Nowhere.port = port  # type: ignore[attr-defined]
    result = run_script(Nowhere(), ["help"], "--lang", "en")
    assert result.returncode == 1
    assert f"Cannot connect to 127.0.0.1:{port}" in result.stderr


async def test_interactive_session_shows_kick_above_prompt(server: Any) -> None:
    async with server.client() as setup:
        await setup.reg("alice", PW)

    child = pexpect.spawn(
        sys.executable,
        client_args(server, "--lang", "en"),
        cwd=str(REPO),
        env=client_env(TERM="xterm-256color"),
        encoding="utf-8",
        timeout=20,
        dimensions=(40, 200),
    )
    screen = io.StringIO()
    child.logfile_read = screen

    async def expect(text: str) -> None:
        await asyncio.to_thread(child.expect_exact, text)

    try:
        await expect("Type help")
        child.sendline("login alice")
        await expect("Password:")  # asked, hidden
        child.sendline(PW)
        await expect(EN("login.welcome_user", username="alice"))
        await expect("alice>")
        child.send("hel")  # a half-typed line when the server pushes

        other = server.client()
        await other.connect()
        try:
            await other.login("alice", PW)  # the terminal's session is kicked
            await expect(EN("event.kicked.logged_in_elsewhere"))
            await expect("hel")  # the prompt is redrawn below, the typed text intact
            child.sendline("p")
            await expect(EN("help.title"))
            # The next command connects again; logging in takes the session back.
            child.sendline(f"login alice {PW}")
            await expect(EN("login.welcome_user", username="alice"))
            kicked = await other.next_event("kicked", timeout=10)
            assert kicked.payload["reason"] == "logged_in_elsewhere"
        finally:
            await other.close()
        child.sendline("quit")
        await asyncio.to_thread(child.expect, pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


async def test_interactive_session_reports_server_shutdown(server: Any) -> None:
    async with server.client() as setup:
        await setup.reg("alice", PW)
    child = pexpect.spawn(
        sys.executable,
        client_args(server, "--lang", "en"),
        cwd=str(REPO),
        env=client_env(TERM="xterm-256color"),
        encoding="utf-8",
        timeout=20,
        dimensions=(40, 200),
    )
    try:
        await asyncio.to_thread(child.expect_exact, "Type help")
        child.sendline(f"login alice {PW}")
        await asyncio.to_thread(child.expect_exact, EN("login.welcome_user", username="alice"))
        assert await asyncio.to_thread(server.stop) == 0
        await asyncio.to_thread(child.expect_exact, EN("event.kicked.shutdown"))
        await asyncio.to_thread(
            child.expect_exact,
            EN("event.disconnected.reconnecting", reason=EN("reason.shutdown")),
        )
        child.sendline("logout")  # while reconnecting: a clear line, no crash
        await asyncio.to_thread(child.expect_exact, EN("error.not_connected"))
        child.sendline("quit")  # leaving works while reconnecting
        await asyncio.to_thread(child.expect, pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
