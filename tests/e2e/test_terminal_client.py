"""The real terminal client (``python -m p2sp.terminal``) against the real server.

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
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from p2sp.terminal.strings import Strings

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
        "p2sp.terminal",
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


def test_weak_password_is_refused_before_sending(server: Any) -> None:
    result = run_script(
        server, ["reg carol", "short", "short", "reg carol", PW, PW], "--lang", "en"
    )
    out = result.stdout
    assert EN("check.password.length", min=8, max=128, count=5) in out
    assert "(weak_password)" not in out  # refused here, not by the server
    assert "Registered carol" in out


def test_names_are_checked_before_passwords_and_scripts_stay_in_step(server: Any) -> None:
    result = run_script(
        server,
        [
            "reg a/b",
            PW,
            PW,
            "newgroup " + "g" * 70,
            "reg " + "x" * 40,
            PW,
            PW,
            "login a/b",
            PW,
            "reg alice",
            PW,
            PW,
            f"login alice {PW}",
            "newgroup " + "g" * 70,
            "add " + "y" * 33,
        ],
        "--lang",
        "zh",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("用户名中不能有 '/'") == 2, out  # reg and login
    assert "用户名须为 1 到 32 个字符" in out
    assert out.count(ZH("check.group.length", max=64, count=70)) == 2, out
    assert ZH("login.welcome_user", username="alice") in out
    # The password lines of a refused reg/login were taken, not run as commands.
    assert "correct" not in out and ZH("command.unknown", name="correct") not in out
    # No validator text: no "Expected", no regular expression, no field path.
    for jargon in ("Expected", "regex", "\\w", "data.", "`"):
        assert jargon not in out, jargon


def test_look_alike_and_mixed_script_names_are_refused_in_chinese(server: Any) -> None:
    result = run_script(
        server,
        ["reg alice", PW, PW, "reg AIice", PW, PW, "reg аlice", PW, PW],  # capital I; Cyrillic а
        "--lang",
        "zh",
    )
    out = result.stdout
    (taken,) = [line for line in out.splitlines() if line.endswith("(user_exists)")]
    assert taken.startswith("失败: 这个用户名不能注册: "), taken
    assert "'alice'" in taken  # the server's reason names the existing user
    assert "аlice 混用了西里尔和拉丁字母" in out
    assert out.count("注册成功") == 1


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
            EN("event.disconnected.reconnecting", reason=EN("code.shutdown")),
        )
        child.sendline("logout")  # while reconnecting: a clear line, no crash
        await asyncio.to_thread(child.expect_exact, EN("error.not_connected"))
        child.sendline("quit")  # leaving works while reconnecting
        await asyncio.to_thread(child.expect, pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


# --- leaving: closed output, Ctrl-C, Ctrl-D -----------------------------------


def spawn_piped(server: Any, stdin: Any, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *client_args(server, "--lang", "en", *extra)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=client_env(),
    )


def test_closed_stdout_ends_the_client_quietly(server: Any) -> None:
    """``p2sp-client | head -1``: no BrokenPipeError traceback, status 0 or 141."""
    proc = spawn_piped(server, subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(b"help\n")
        proc.stdin.flush()
        assert proc.stdout.readline().decode() == EN("help.title") + "\n"
        proc.stdout.close()  # the reader goes away; stdin stays open
        proc.stdin.write(b"help\nhelp\n")
        proc.stdin.flush()
        status = proc.wait(timeout=20)
        errors = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
    assert status in (0, 141), errors
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors


def test_pipeline_into_head(server: Any) -> None:
    script = (
        f"printf 'help\\nhelp\\nhelp\\n' | {sys.executable} -m p2sp.terminal"
        f" --host {server.host} --port {server.port} --lang en | head -1;"
        " echo status=${PIPESTATUS[1]}"
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=REPO, env=client_env(),
        timeout=60,
    )  # fmt: skip
    assert done.stdout.splitlines()[0] == EN("help.title")
    assert done.stdout.splitlines()[-1] in ("status=0", "status=141"), done.stdout
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


@pytest.mark.parametrize("stdin_kind", ["terminal", "pipe"])
def test_ctrl_c_ends_a_piped_client_at_once(server: Any, stdin_kind: str) -> None:
    """``p2sp-client | cat``: Ctrl-C must not wait for the next Enter."""
    import signal
    import termios

    master = -1
    if stdin_kind == "terminal":
        master, slave = os.openpty()
        proc = spawn_piped(server, slave)
        os.close(slave)
    else:
        proc = spawn_piped(server, subprocess.PIPE)

    def type_in(text: str) -> None:
        if master >= 0:
            os.write(master, text.encode())
        else:
            assert proc.stdin is not None
            proc.stdin.write(text.encode())
            proc.stdin.flush()

    assert proc.stdout is not None and proc.stderr is not None
    try:
        type_in("help\n")
        assert proc.stdout.readline().decode() == EN("help.title") + "\n"
        if stdin_kind == "terminal":
            type_in("reg alice\n")  # now waiting for a hidden password
            deadline = time.monotonic() + 10
            while termios.tcgetattr(master)[3] & termios.ECHO and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not termios.tcgetattr(master)[3] & termios.ECHO  # the password is hidden
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=5)  # at once, not after an Enter that never comes
        errors = proc.stderr.read().decode()
        if stdin_kind == "terminal":
            assert termios.tcgetattr(master)[3] & termios.ECHO  # echo is back
    finally:
        proc.kill()
        proc.wait()
        if master >= 0:
            os.close(master)
    assert status in (0, 130), errors
    assert "Traceback" not in errors, errors


async def test_interactive_ctrl_c_clears_then_leaves_and_passwords_are_not_recalled(
    server: Any,
) -> None:
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

    async def expect(text: str) -> None:
        await asyncio.to_thread(child.expect_exact, text)

    try:
        await expect("Type help")
        child.sendline(f"login alice {PW}")
        await expect(EN("login.welcome_user", username="alice"))
        child.sendline("logout")
        await expect(EN("logout.ok"))
        # Up twice: the login line, without its password, so it asks for it.
        child.send("\x1b[A")
        await asyncio.sleep(0.2)
        child.send("\x1b[A")
        await asyncio.sleep(0.2)
        child.send("\r")
        await expect("Password:")
        child.sendcontrol("c")
        await expect(EN("login.cancelled"))
        child.send("frob")
        await asyncio.sleep(0.2)
        child.sendcontrol("c")  # a half-typed line is cleared, the client stays
        await asyncio.sleep(0.2)
        child.sendline("nix")
        await expect(EN("command.unknown", name="nix"))
        child.sendcontrol("c")  # on an empty line: leave
        await expect(EN("app.bye"))
        await asyncio.to_thread(child.expect, pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "Traceback" not in (child.before or "")


async def test_interactive_ctrl_d_leaves(server: Any) -> None:
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
        child.sendline("help")  # the prompt reads keys once this is answered
        await asyncio.to_thread(child.expect_exact, EN("help.ways_out"))
        await asyncio.sleep(0.3)
        child.sendcontrol("d")
        await asyncio.to_thread(child.expect_exact, EN("app.bye"))
        await asyncio.to_thread(child.expect, pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "Traceback" not in (child.before or "")
