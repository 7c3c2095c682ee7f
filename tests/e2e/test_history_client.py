"""History, replies, edits, retractions, receipts and search through the real terminal client.

The real server (SQLite and PostgreSQL) and ``python -m p2sp.terminal`` with
piped stdin: alice (in English) writes bob (in Chinese) ten messages while he
is offline; bob logs in, finds them unread in ``chats``, reads them with
``history`` (alice is told), answers one with ``reply``; alice edits one of
hers and retracts another, and bob sees both; bob's ``search`` finds a word
in the two chats he is in and not in a group he is not in. Carol, who only
sets the groups up, uses the SDK.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from p2sp.terminal.strings import Strings
from tests.e2e.test_terminal_chat import PW, LiveClient, clock_window, login, register

pytestmark = pytest.mark.timeout(150)

EN = Strings("en")
ZH = Strings("zh")
WORD = "火锅"  # two characters: shorter than a trigram, found by the server's bounded scan
PHRASE = "吃火锅"  # three: found through the search index


@pytest.fixture
def live(server: Any) -> Any:
    """``live(lang)`` -> a LiveClient; all killed after the test."""
    made: list[LiveClient] = []

    def make(lang: str) -> LiveClient:
        client = LiveClient(server, lang)
        made.append(client)
        return client

    yield make
    for client in made:
        client.kill()


def number(line: str) -> int:
    """The message number a line ends with (``... #12``)."""
    found = re.search(r"#(\d+)$", line)
    assert found, line
    return int(found.group(1))


def set_up_groups(server: Any) -> None:
    """carol's two groups: "dinner" with bob, "secret" with alice only; the word in both."""

    async def go() -> None:
        async with server.client() as carol:
            await carol.login("carol", PW)
            dinner = await carol.newgroup("dinner")
            await carol.addgroupuser(dinner["group_id"], "bob")
            await carol.sendgroup(dinner["group_id"], f"今晚{PHRASE}吗")
            secret = await carol.newgroup("secret")
            await carol.addgroupuser(secret["group_id"], "alice")
            await carol.sendgroup(secret["group_id"], f"别告诉bob，我们去{PHRASE}")

    asyncio.run(go())


def test_offline_messages_history_reply_edit_recall_receipts_and_search(
    server: Any, live: Any
) -> None:
    register(server, "alice", "bob", "carol")
    alice = live("en")
    login(alice, "alice", EN)
    alice.send("add bob")
    alice.expect(EN("add.ok.offline", username="bob"))
    set_up_groups(server)

    alice.expect("[secret] carol: ")  # carol's group message is alice's #1

    # alice writes bob ten messages while he is offline; her echoes carry #2 .. #11
    mine = []
    for n in range(1, 11):
        text = f"message {n} {PHRASE}" if n == 4 else f"message {n}"
        alice.send(f".send bob {text}")
        mine.append(number(alice.expect(f"-> bob: {text}")))
    assert mine == list(range(2, 12))

    # bob logs in: the ten are replayed, marked offline, and stay unread
    bob = live("zh")
    login(bob, "bob")
    replayed = [bob.expect(f"alice悄悄对你说:message {n}") for n in range(1, 11)]
    assert all(line.startswith("[离线消息] ") for line in replayed)
    bob.expect(ZH("event.sync_done", count=13).split("13")[0])
    bob.send("chats")
    bob.expect(ZH("chats.title", count=3).split("(")[0])
    assert bob.expect("  alice").startswith("  alice  (10 条未读)  alice:message 10 (")

    # history shows them with bob's numbers and marks them read: alice is told
    bob.send("history alice")
    bob.expect(ZH("history.title", name="alice", count=10))
    rows = [bob.expect(f"alice:message {n}") for n in range(1, 11)]
    bob_numbers = [number(row) for row in rows]
    assert bob_numbers == [number(line) for line in replayed]  # one number per message
    assert alice.expect("read up to") == EN("receipt.read", username="bob", ref=mine[9])
    bob.send("chats")
    assert "未读" not in bob.expect("  alice")

    # bob answers alice's third message; alice sees the quote under her own number
    start = time.time()
    bob.send(f"reply #{bob_numbers[2]} 收到第三条")
    echo = bob.expect(f"-> alice (回复 #{bob_numbers[2]}): 收到第三条")
    assert number(echo) > bob_numbers[9]
    answer = alice.expect("bob whispers to you:")
    assert answer in {
        f"bob whispers to you: [re alice #{mine[2]}: message 3] 收到第三条 ({hhmm}) #12"
        for hhmm in clock_window(start)
    }

    # alice edits her ninth message and retracts the tenth; bob sees both
    alice.send(f"edit #{mine[8]} message 9, corrected")
    alice.expect(EN("edit.ok", ref=mine[8], message="message 9, corrected"))
    edited = bob.expect("(已编辑)")
    assert edited.startswith(f"alice (已编辑) #{bob_numbers[8]}:message 9, corrected (")
    alice.send(f"recall #{mine[9]}")
    alice.expect(EN("recall.ok", ref=mine[9]))
    assert bob.expect("撤回") == f"alice撤回了一条消息 (#{bob_numbers[9]})"
    bob.send("history alice 3")
    bob.expect(ZH("history.title", name="alice", count=3))
    assert bob.expect("message 9").endswith(f"message 9, corrected (已编辑) #{bob_numbers[8]}")
    assert bob.expect("撤回").endswith(f"alice撤回了一条消息 #{bob_numbers[9]}")

    # search: the chat with alice and the dinner group, never carol's secret group
    for query in (WORD, PHRASE):
        bob.send(f"search {query}")
        bob.expect(ZH("search.title", query=query, count=2))
        hits = [bob.expect(f"{PHRASE}") for _ in range(2)]
        # newest first: alice wrote after carol
        assert hits[0].startswith(f"  [与 alice] alice:message 4 {PHRASE} (")
        assert number(hits[0]) == bob_numbers[3]
        assert hits[1].startswith("  [dinner] carol:今晚吃火锅吗 (")

    alice.send("search 别告诉bob")
    alice.expect(EN("search.title", query="别告诉bob", count=1))
    assert alice.expect("[secret]").startswith("  [secret] carol: 别告诉bob")

    lines = bob.close()
    assert not [x for x in lines if "secret" in x or "别告诉" in x], lines
    alice.close()
