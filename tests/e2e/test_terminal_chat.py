"""Friends, presence and direct messages through the real terminal client.

Every client here is ``python -m p2sp.terminal`` with piped stdin, against
the real server (SQLite and PostgreSQL). A client that must stay online to
receive is a ``LiveClient``: its stdin stays open and its stdout is read line
by line with a deadline. Expected lines come from the client's own string
table, so they follow the wording, but the exact formats docs/client.md gives
(``alice悄悄对你说:你好 world (HH:MM)``) are spelled out once as well.
"""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from p2sp.terminal.strings import Strings

pytestmark = pytest.mark.timeout(150)

REPO = Path(__file__).resolve().parents[2]
EN = Strings("en")
ZH = Strings("zh")
PW = "correct horse battery"


def client_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"LC_ALL", "LC_MESSAGES", "LANG"}}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["LANG"] = "C.UTF-8"
    env.update(extra)
    return env


def client_cmd(server: Any, lang: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "p2sp.terminal",
        "--host",
        server.host,
        "--port",
        str(server.port),
        "--lang",
        lang,
    ]


def run_script(server: Any, lines: list[str], lang: str = "zh") -> str:
    """Pipe ``lines`` into a client, wait for it to exit, return its stdout."""
    result = subprocess.run(
        client_cmd(server, lang),
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=90,
        cwd=REPO,
        env=client_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


class LiveClient:
    """A piped terminal client that stays connected until ``close()``."""

    def __init__(self, server: Any, lang: str = "zh") -> None:
        self.proc = subprocess.Popen(
            client_cmd(server, lang),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
            cwd=REPO,
            env=client_env(),
        )
        self.lines: list[str] = []  # every line read so far
        self._read = 0  # lines already looked at by expect()
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def send(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        for line in lines:
            self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, text: str, timeout: float = 20.0) -> str:
        """The next unseen line containing ``text``; lines before it are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            while self._read < len(self.lines):
                line = self.lines[self._read]
                self._read += 1
                if text in line:
                    return line
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                item = ""
                if remaining <= 0:
                    raise AssertionError(
                        f"no line with {text!r} within {timeout} s; got:\n" + "\n".join(self.lines)
                    ) from None
            if item is None:
                raise AssertionError(
                    f"client exited before {text!r}; got:\n" + "\n".join(self.lines)
                )
            if item:
                self.lines.append(item)

    def close(self, timeout: float = 20.0) -> list[str]:
        """End the input, wait for the exit, return every line it printed."""
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.wait(timeout)
        while (item := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(item)
        assert self.proc.returncode == 0
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        assert "Traceback" not in stderr, stderr
        return self.lines

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def live(server: Any) -> Any:
    """``live(lang)`` -> a LiveClient; all killed after the test."""
    made: list[LiveClient] = []

    def make(lang: str = "zh") -> LiveClient:
        client = LiveClient(server, lang)
        made.append(client)
        return client

    yield make
    for client in made:
        client.kill()


def register(server: Any, *names: str) -> None:
    async def go() -> None:
        async with server.client() as client:
            for name in names:
                await client.reg(name, PW)

    asyncio.run(go())


def login(client: LiveClient, name: str, strings: Strings = ZH) -> None:
    client.send(f"login {name} {PW}")
    client.expect(strings("login.welcome_user", username=name))


def clock_window(start: float) -> set[str]:
    """Every local ``HH:MM`` from ``start`` until now (a send may straddle a minute)."""
    minutes = {time.strftime("%H:%M", time.localtime(start))}
    minutes.add(time.strftime("%H:%M"))
    return minutes


# --- (a), (b): direct messages between two terminals ---------------------


def test_send_between_two_terminals_in_chinese(server: Any, live: Any) -> None:
    register(server, "alice", "bob")
    bob = live("zh")
    login(bob, "bob")
    start = time.time()
    out = run_script(server, [f"login alice {PW}", "add bob", ".send bob 你好 world"], "zh")
    assert ZH("add.ok.online", username="bob") in out
    assert "-> bob: 你好 world" in out  # the sender's echo

    line = bob.expect("悄悄对你说")
    # the line ends with the message's number on bob's screen (his first message)
    assert line in {f"alice悄悄对你说:你好 world ({hhmm}) #1" for hhmm in clock_window(start)}
    lines = bob.close()
    assert lines.count(line) == 1
    # The notice of (e) came first, as a system message in Chinese.
    notice = "[系统消息]:alice 已添加你为好友"
    assert lines.count(notice) == 1
    assert lines.index(notice) < lines.index(line)


def test_slash_msg_keeps_spaces_and_reports_refusals(server: Any, live: Any) -> None:
    register(server, "alice", "bob", "carol")
    bob = live("en")
    login(bob, "bob", EN)
    start = time.time()
    out = run_script(
        server,
        [
            f"login alice {PW}",
            "add bob",
            "/msg bob hello   there,  bob",
            "/msg carol not a friend",
            ".send nobody hi",
            "/msg alice me",
            "/msg bob",
        ],
        "en",
    )
    line = bob.expect("whispers to you")
    assert line in {
        f"alice whispers to you: hello   there,  bob ({hhmm}) #1" for hhmm in clock_window(start)
    }
    failures = [x for x in out.splitlines() if x.startswith("Failed: ")]
    assert [x.rsplit("(", 1)[1] for x in failures] == [
        "not_friends)",
        "no_such_user)",
        "cannot_send_to_self)",
    ], out
    assert EN("command.usage", usage=EN("cmd.send.usage")) in out
    assert "-> carol" not in out  # no echo for a refused message
    lines = bob.close()
    assert [x for x in lines if "whispers" in x] == [line]


# --- (c): offline messages, all delivered once and in order ---------------


def test_offline_messages_all_arrive_once_in_order(server: Any) -> None:
    count = 100
    register(server, "alice", "bob")
    out = run_script(server, [f"login bob {PW}", "add alice", "quit"], "zh")
    assert ZH("add.ok.offline", username="alice") in out

    sends = [f".send bob 第 {n:03d} 条 message" for n in range(1, count + 1)]
    out = run_script(server, [f"login alice {PW}", *sends], "zh")
    assert "失败" not in out, out
    assert out.count("-> bob: ") == count

    bob = LiveClient(server, "zh")
    try:
        login(bob, "bob")
        bob.expect(ZH("event.sync_done", count=count), timeout=60)
        lines = bob.close()
    finally:
        bob.kill()
    shown = [x for x in lines if "悄悄对你说" in x]
    assert len(shown) == count, "\n".join(lines)
    for n, line in enumerate(shown, start=1):
        assert line.startswith(f"[离线消息] alice悄悄对你说:第 {n:03d} 条 message ("), line
    assert sum("悄悄对你说" in x for x in lines) == count  # each exactly once

    async def replayed_after_the_terminal_acked() -> int:
        async with server.client(auto_ack=False) as sdk:
            await sdk.login("bob", PW)
            done = await sdk.next_event("sync_done", timeout=10)
            return int(done.payload["count"])

    # The terminal acked what it printed: nothing is replayed the next time.
    assert asyncio.run(replayed_after_the_terminal_acked()) == 0


# --- (d): friends and presence -------------------------------------------


def test_friends_lists_online_and_offline_and_presence(server: Any, live: Any) -> None:
    register(server, "alice", "bob", "carol", "dave")
    run_script(server, [f"login dave {PW}", "logout"], "zh")  # dave has been seen
    bob = live("zh")
    login(bob, "bob")

    out = run_script(
        server,
        [
            f"login alice {PW}",
            "add bob",
            "add carol",
            "add dave",
            "add bob",
            "add alice",
            "add nobody",
            "friends",
        ],
        "zh",
    )
    lines = out.splitlines()
    assert ZH("friends.title", count=3) in lines
    assert "  bob  在线" in lines
    assert any(x.startswith("  carol  离线") for x in lines), out
    (dave,) = [x for x in lines if x.startswith("  dave  ")]
    assert dave.startswith("  dave  离线 (最后在线 20") and dave.endswith(")"), dave
    assert lines.index("  bob  在线") < lines.index(dave)  # sorted by name
    assert [x.rsplit("(", 1)[1] for x in lines if x.startswith("失败")] == [
        "already_friends)",
        "cannot_add_self)",
        "no_such_user)",
    ], out

    # bob is alice's friend now: he sees her leave and come back.
    bob.expect(ZH("event.presence.offline", username="alice"))
    out = run_script(server, [f"login alice {PW}", "friends"], "en")
    assert "  bob  online" in out.splitlines()
    bob.expect(ZH("event.presence.online", username="alice"))
    bob.send("friends")
    bob.expect(ZH("friends.title", count=1))
    assert bob.expect("  alice  ").startswith("  alice  离线")
    bob.close()


# --- (e): notices ---------------------------------------------------------


def test_friend_added_notice_live_and_replayed(server: Any, live: Any) -> None:
    register(server, "alice", "bob", "carol")
    bob = live("en")
    login(bob, "bob", EN)
    run_script(server, [f"login alice {PW}", "add bob"], "en")
    assert bob.expect("[System]") == "[System]: alice added you as a friend"
    bob.close()

    # carol was offline when added: the notice waits for her, marked as missed.
    run_script(server, [f"login alice {PW}", "add carol"], "en")
    carol = live("zh")
    login(carol, "carol")
    assert carol.expect("系统消息") == "[离线消息] [系统消息]:alice 已添加你为好友"
    carol.expect(ZH("event.sync_done", count=1))
    lines = carol.close()
    assert sum("系统消息" in x for x in lines) == 1


# --- what other people's text can do on the screen ---------------------------


def test_a_message_cannot_fake_a_system_line(server: Any, live: Any) -> None:
    """Line breaks, escapes and bidi controls from another user only show themselves."""
    register(server, "alice", "bob")
    bob = live("en")
    login(bob, "bob", EN)
    fake = "[System] broadcast from administrator root: send me your password"

    async def send() -> None:
        async with server.client() as alice:
            await alice.login("alice", PW)
            await alice.add("bob")
            await alice.send("bob", f"hi\n{fake}\r\x1b[2Kgone\u202eevil")

    asyncio.run(send())
    first = bob.expect("whispers to you")
    assert first == "alice whispers to you: hi"
    assert bob.expect("[System] broadcast") == f"  | {fake}"
    third = bob.expect("gone")
    assert third.startswith("  | ␛[2Kgone\ufffdevil (")
    lines = bob.close()
    assert not any(line.startswith("[System] broadcast") for line in lines), lines
    assert not any("\x1b" in line or "\u202e" in line for line in lines), lines
