"""Groups, public rooms and administration through the real terminal client.

Every client is ``python -m p2sp.terminal`` with piped stdin against the
real server (SQLite and PostgreSQL), driven with the client's commands:
``newgroup``, ``addgroupuser``, ``groups``, ``sendgroup <n>``,
``delgroupuser``, ``delgroup``, and the administrator's ``allusers``,
``broadcast``, ``blockuser`` ... Expected lines come from the client's own
string table, so they follow the wording; the formats docs/client.md gives
(``[group] sender: text (HH:MM)``, ``[n] name creator online/total``) are
spelled out as well.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from p2sp.terminal.commands import COMMANDS, help_lines
from p2sp.terminal.strings import Strings
from tests.e2e.conftest import TEST_ENV
from tests.e2e.test_terminal_chat import (
    PW,
    LiveClient,
    clock_window,
    login,
    register,
    run_script,
)

pytestmark = pytest.mark.timeout(150)

EN = Strings("en")
ZH = Strings("zh")


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


def promote(server: Any, name: str, verb: str = "promote") -> None:
    """Make ``name`` a server admin with the server's CLI, as an operator would."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "p2sp.server",
            verb,
            name,
            "--database-url",
            server.database_url,
        ],
        capture_output=True,
        text=True,
        env={**TEST_ENV, "PATH": "/usr/bin:/bin"},
        cwd=server.workdir,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def demote(server: Any, name: str) -> None:
    """Take the server admin right away with the server's CLI."""
    promote(server, name, "demote")


def expect_help(client: LiveClient, strings: Strings, name: str) -> None:
    """``client`` shows ``name``'s entry of the command list next."""
    for line in help_lines(strings, COMMANDS[name]):
        assert client.expect(line.strip()) == line


def failed(client: LiveClient, code: str) -> str:
    """The next refusal printed by ``client``; it must carry ``code``."""
    line = client.expect("(")  # skip ahead to the next line with a code in it
    while not line.endswith(")") or not (line.startswith("Failed") or line.startswith("失败")):
        line = client.expect("(")
    assert line.endswith(f"({code})"), line
    return line


# --- (a) a group formed, listed and used by number -------------------------


def test_three_terminals_form_a_group_and_chat_by_number(server: Any, live: Any) -> None:
    register(server, "alice", "bob", "carol")
    alice, bob, carol = live("zh"), live("zh"), live("en")
    login(alice, "alice")
    login(bob, "bob")
    login(carol, "carol", EN)

    alice.send("newgroup 运维")
    alice.expect(ZH("newgroup.ok", name="运维"))
    alice.send("addgroupuser 运维 bob")
    alice.expect(ZH("addgroupuser.ok", username="bob", group="运维"))
    assert bob.expect("系统消息") == "[系统消息]:alice 邀请你加入了群组 运维"
    alice.send("addgroupuser 运维 carol")
    alice.expect(ZH("addgroupuser.ok", username="carol", group="运维"))
    assert carol.expect("[System]") == "[System]: alice added you to the group 运维"

    # Refusals: by the server (with its code) and by the client (unknown name).
    alice.send("addgroupuser 运维 bob")
    failed(alice, "already_member")
    alice.send("addgroupuser 运维 nobody")
    failed(alice, "no_such_user")
    alice.send("addgroupuser 开发 bob")
    alice.expect(ZH("group.unknown", name="开发"))
    bob.send("addgroupuser 运维 carol")
    failed(bob, "not_permitted")  # a plain member does not invite

    alice.send("groups")
    alice.expect(ZH("groups.title", count=1))
    assert alice.expect("[1]") == "[1] 运维 alice 3/3  (群主)"
    bob.send("groups")
    bob.expect(ZH("groups.title", count=1))
    assert bob.expect("[1]") == "[1] 运维 alice 3/3"

    start = time.time()
    alice.send("sendgroup 1 hello")
    alice.expect("-> [运维]: hello")
    line = bob.expect("[运维]")
    assert line in {f"[运维] alice:hello ({hhmm}) #1" for hhmm in clock_window(start)}
    line = carol.expect("[运维]")
    assert line in {f"[运维] alice: hello ({hhmm}) #1" for hhmm in clock_window(start)}

    bob.send("sendgroup 1 你好  大家")
    bob.expect("-> [运维]: 你好  大家")
    assert alice.expect("[运维] bob:").startswith("[运维] bob:你好  大家 (")
    assert carol.expect("[运维] bob:").startswith("[运维] bob: 你好  大家 (")

    # sendgroup needs a groups list first, and a number on it.
    carol.send("sendgroup 1 hi")
    carol.expect(EN("sendgroup.not_listed"))
    carol.send("groups", "sendgroup 2 hi")
    carol.expect(EN("sendgroup.bad_number", number=2, count=1))
    carol.send("sendgroup one hi")
    carol.expect(EN("command.usage", usage=EN("cmd.sendgroup.usage")))
    carol.send("sendgroup 1 from carol")
    carol.expect("-> [运维]: from carol")
    assert alice.expect("[运维] carol:").startswith("[运维] carol:from carol (")
    assert bob.expect("[运维] carol:").startswith("[运维] carol:from carol (")

    # Two of bob's groups share a name: name@creator says which.
    bob.send("newgroup 运维")
    bob.expect(ZH("newgroup.ok", name="运维"))
    bob.send("addgroupuser 运维 carol")
    bob.expect(ZH("group.ambiguous", name="运维", count=2, choices="运维@alice, 运维@bob"))
    bob.send("addgroupuser 运维@bob carol")
    bob.expect(ZH("addgroupuser.ok", username="carol", group="运维"))
    assert carol.expect("[System]") == "[System]: bob added you to the group 运维"

    for client in (alice, bob, carol):
        lines = client.close()
        # every group message shown exactly once, none to its own sender
        for text in ("hello (", "你好  大家 (", "from carol ("):
            shown = [x for x in lines if x.startswith("[运维]") and text in x]
            assert len(shown) <= 1, lines
    assert sum(x.startswith("[运维] ") for x in alice.lines) == 2
    assert sum(x.startswith("[运维] ") for x in bob.lines) == 2
    assert sum(x.startswith("[运维] ") for x in carol.lines) == 2


# --- (b) a member removed, a group deleted ---------------------------------


def test_removed_member_is_told_and_gets_nothing_more(server: Any, live: Any) -> None:
    register(server, "alice", "bob", "carol")
    alice, bob, carol = live("zh"), live("zh"), live("en")
    login(alice, "alice")
    login(bob, "bob")
    login(carol, "carol", EN)
    alice.send("newgroup ops", "addgroupuser ops bob", "addgroupuser ops carol")
    alice.expect(ZH("addgroupuser.ok", username="carol", group="ops"))
    carol.expect("added you to the group ops")
    carol.send("groups")
    assert carol.expect("[1]") == "[1] ops alice 3/3"

    bob.send("delgroupuser ops carol")
    failed(bob, "not_permitted")
    alice.send("delgroupuser ops alice")
    failed(alice, "cannot_kick_self")
    alice.send("delgroupuser ops carol")
    alice.expect(ZH("delgroupuser.ok", username="carol", group="ops"))
    assert carol.expect("[System]") == "[System]: alice removed you from the group ops"
    alice.send("delgroupuser ops carol")
    failed(alice, "not_member")

    # carol's old numbering still points at ops: the server refuses her.
    carol.send("sendgroup 1 still here?")
    failed(carol, "not_member")
    carol.send("groups")
    carol.expect(EN("groups.none"))
    carol.send("sendgroup 1 hi")
    carol.expect(EN("sendgroup.empty"))

    alice.send("groups", "sendgroup 1 after carol left")
    alice.expect("-> [ops]: after carol left")
    assert bob.expect("[ops]").startswith("[ops] alice:after carol left (")

    alice.send("delgroup ops")
    alice.expect(ZH("delgroup.ok", name="ops"))
    assert bob.expect("系统消息") == "[系统消息]:alice 解散了群组 ops"
    alice.send("delgroup ops")
    alice.expect(ZH("group.unknown", name="ops"))

    carol_lines = carol.close()
    assert not any("after carol left" in x for x in carol_lines), carol_lines
    bob.close()
    alice.close()


# --- public rooms -------------------------------------------------------------


def test_public_rooms_list_join_talk_and_leave(server: Any, live: Any) -> None:
    register(server, "alice", "bob")
    alice, bob = live("en"), live("zh")
    login(alice, "alice", EN)
    login(bob, "bob")

    alice.send("rooms")
    alice.expect(EN("rooms.title", count=1))
    assert alice.expect("[1]").startswith("[1] public system ")  # made by the server
    alice.send("join 1")
    alice.expect("Joined public (")
    alice.send("join public")
    failed(alice, "already_member")
    bob.send("join public")
    bob.expect("已加入 public (")
    bob.send("rooms")
    assert bob.expect("[1]").endswith("  (已加入)")
    bob.send("join 9")
    bob.expect(ZH("room.bad_number", number="9"))
    bob.send("join nowhere")
    bob.expect(ZH("room.unknown", name="nowhere"))

    bob.send("groups")
    line = bob.expect("[1]")
    assert line.startswith("[1] public system ") and line.endswith("  (公共聊天室)"), line
    bob.send("sendgroup 1 大家好")
    assert alice.expect("[public]").startswith("[public] bob: 大家好 (")

    alice.send("leave public")
    alice.expect(EN("leave.ok", name="public"))
    alice.send("leave public")
    alice.expect(EN("room.not_joined", name="public"))
    bob.send("sendgroup 1 anyone?")
    bob.expect("-> [public]: anyone?")
    assert not any("anyone?" in x for x in alice.close())
    bob.close()


# --- (c) administration ---------------------------------------------------------


def test_admin_commands_from_the_terminal(server: Any, live: Any) -> None:
    register(server, "root", "alice", "bob")
    promote(server, "root")
    out = run_script(
        server, [f"login alice {PW}", "newgroup ops", "addgroupuser ops bob", "logout"], "en"
    )
    assert EN("addgroupuser.ok", username="bob", group="ops") in out

    bob = live("en")
    login(bob, "bob", EN)
    bob.send("help")
    expect_help(bob, EN, "quit")
    assert EN("help.admin_title") not in bob.lines
    assert not any("allusers" in x or "blockuser" in x for x in bob.lines)
    bob.send("allusers")
    bob.expect(EN("command.admin_only", name="allusers"))

    root = live("zh")
    root.send(f"login root {PW}")
    root.expect(ZH("login.welcome_admin", username="root"))
    root.send("help")
    root.expect(ZH("help.admin_title"))
    for name in (
        "allusers",
        "allgroup",
        "adminsend",
        "adminsendgroup",
        "broadcast",
        "blockuser",
        "unblockuser",
        "blockgroup",
        "unblockgroup",
    ):
        expect_help(root, ZH, name)

    root.send("allusers")
    root.expect(ZH("users.title", count=3))
    seen = {root.expect("") for _ in range(3)}
    assert "  bob  在线  正常" in seen
    assert "  root  在线  正常  [管理员]" in seen
    (alice_line,) = [x for x in seen if x.startswith("  alice  ")]
    assert alice_line.startswith("  alice  离线") and alice_line.endswith("  正常"), alice_line
    root.send("allusers --online")
    root.expect(ZH("users.title_online", count=2))
    root.send("allgroup")
    root.expect(ZH("allgroup.title", count=2))
    assert root.expect("ops alice").endswith("] ops alice 1/2")

    root.send("broadcast 今晚 22:00 维护")
    root.expect("已向所有用户广播")
    assert bob.expect("broadcast").startswith(
        "[System] broadcast from administrator root: 今晚 22:00 维护 ("
    )
    root.send("adminsend bob 你好 bob")
    root.expect("-> bob [系统消息]:你好 bob")
    assert bob.expect("[System] administrator").startswith(
        "[System] administrator root: 你好 bob ("
    )

    # A blocked group takes no messages until it is unblocked.
    bob.send("groups", "sendgroup 1 before")
    bob.expect("-> [ops]: before")
    root.send("blockgroup ops alice")
    root.expect(ZH("blockgroup.ok", name="ops", creator="alice"))
    assert bob.expect("has been blocked").startswith("[System]: The group ops has been blocked")
    bob.send("sendgroup 1 during")
    failed(bob, "group_blocked")
    root.send("adminsendgroup ops alice 注意")
    failed(root, "group_blocked")
    root.send("blockgroup ops nobody")
    failed(root, "no_such_group")
    root.send("unblockgroup ops alice")
    root.expect(ZH("unblockgroup.ok", name="ops", creator="alice"))
    bob.expect("[System]: The group ops has been unblocked")
    bob.send("sendgroup 1 after")
    bob.expect("-> [ops]: after")
    root.send("adminsendgroup ops alice 请遵守群规")
    root.expect("-> [ops] [系统消息]:请遵守群规")
    assert bob.expect("[System] [ops]").startswith(
        "[System] [ops] administrator root: 请遵守群规 ("
    )

    # A blocked user is logged out at once and cannot log in until unblocked.
    root.send("blockuser bob")
    root.expect(ZH("blockuser.ok", username="bob"))
    bob.expect(EN("event.kicked.blocked"))
    bob.expect(EN("event.disconnected.final", reason=EN("code.blocked")))
    bob.send(f"login bob {PW}")
    failed(bob, "user_blocked")
    root.send("allusers")
    root.expect(ZH("users.title", count=3))
    (bob_line,) = [x for x in (root.expect("") for _ in range(3)) if x.startswith("  bob  ")]
    assert bob_line.startswith("  bob  离线") and bob_line.endswith("  封禁"), bob_line
    root.send("unblockuser bob")
    root.expect(ZH("unblockuser.ok", username="bob"))
    login(bob, "bob", EN)

    # A server admin manages groups they are not in, named as name@creator.
    root.send("delgroup ops@alice")
    root.expect(ZH("delgroup.ok", name="ops"))
    assert bob.expect("deleted the group") == "[System]: root deleted the group ops"

    # Logging out locks the admin commands again.
    root.send("logout", "help")
    expect_help(root, ZH, "quit")
    after_logout = root.lines[root.lines.index(ZH("logout.ok")) :]
    assert ZH("help.admin_title") not in after_logout
    root.send("allusers")
    root.expect(ZH("command.admin_only", name="allusers"))

    bob_lines = bob.close()
    assert sum("broadcast from administrator root" in x for x in bob_lines) == 1
    root.close()


def test_promote_and_demote_take_effect_at_once_in_a_live_terminal(server: Any, live: Any) -> None:
    """The server's ``session`` event unlocks and locks the admin commands."""
    register(server, "alice", "bob")
    alice, bob = live("en"), live("zh")
    login(alice, "alice", EN)
    login(bob, "bob")
    alice.send("allusers")
    alice.expect(EN("command.admin_only", name="allusers"))

    # The server notices a promotion by comparing the list of admins with its
    # previous look (every admin_poll = 1 s); give it its first look.
    time.sleep(1.5)
    promote(server, "alice")
    promote(server, "bob")
    alice.expect(EN("event.session.admin"))
    bob.expect(ZH("event.session.admin"))
    alice.send("allusers")  # no new login needed
    alice.expect(EN("users.title", count=2))
    bob.send("help")
    bob.expect(ZH("help.admin_title"))

    demote(server, "alice")
    alice.expect(EN("event.session.user"))
    alice.send("allusers")
    alice.expect(EN("command.admin_only", name="allusers"))
    alice.send("help")
    alice.expect(EN("help.ways_out"))
    assert EN("help.admin_title") not in alice.lines
