"""chats, history, search, reply, edit, recall and receipts against the fake server.

Each test drives ``ClientApp.execute`` with a ``RecordingTerminal``, in
English and Chinese, and checks both what reached the server and what the
user saw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from client_fakes import (
    Envelope,
    FakeConn,
    FakeServer,
    RecordingTerminal,
    change,
    client_factory,
    msg,
    running_server,
    wait_for,
)

from p2sp.client import Client
from p2sp.terminal.app import ClientApp
from p2sp.terminal.commands import COMMANDS
from p2sp.terminal.display import ClientMessageHandler
from p2sp.terminal.strings import Strings

EN = Strings("en")
ZH = Strings("zh")

GROUP = {
    "group_id": 9,
    "name": "ops",
    "creator": "bob",
    "online": 1,
    "total": 2,
    "role": "owner",
    "blocked": False,
    "public": False,
}


def page(*rows: dict[str, Any], more: bool = False) -> dict[str, Any]:
    conv = rows[0]["conversation_id"] if rows else 4
    return {"conversation_id": conv, "messages": list(rows), "has_more": more, "first_seq": 1}


class Chats:
    """The fake server's answers: alice wrote bob ten messages in conversation 4."""

    def __init__(self) -> None:
        self.history: dict[str, Any] = page(*(msg(4, n, text=f"m{n}") for n in range(1, 11)))
        self.seq = 10

    async def __call__(self, conn: FakeConn, req: Envelope, server: FakeServer) -> None:
        kind, data = req["type"], req["payload"].get("data", {})
        if kind == "history":
            conn.respond(req, self.history)
        elif kind == "conversations":
            last = msg(4, 10, text="m10")
            row = {"conversation_id": 4, "kind": "direct", "peer": "alice", "unread": 10}
            conn.respond(req, {"conversations": [{**row, "last_message": last}], "has_more": False})
        elif kind in ("send", "sendgroup"):
            self.seq += 1
            conv = 4 if kind == "send" else 90
            ok = {"conversation_id": conv, "seq": self.seq, "message_id": conv * 1000 + self.seq}
            conn.respond(req, {**ok, "sent_at": 1})
        elif kind == "edit":
            conn.respond(req, {"conversation_id": 4, "seq": 20, "edited_at": 5})
        elif kind == "retract":
            conn.respond(req, {"conversation_id": 4, "seq": 21})
        elif kind == "read":
            conn.respond(req, {"unread": 0})
        elif kind == "receipts":
            conn.respond(req, {"delivered": ["alice"], "read": ["alice"], "delivered_count": 1,
                               "read_count": 1})  # fmt: skip
        elif kind == "groups":
            conn.respond(req, {"groups": [GROUP]})
        elif kind == "search":
            hits = [
                {**msg(4, 2, text="大家你好啊"), "conversation_kind": "direct", "peer": "alice"}
            ]
            conn.respond(
                req, {"results": hits if data["query"] == "你好" else [], "has_more": False}
            )
        else:
            await server.default(conn, req)


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with running_server() as srv:
        chats = Chats()
        srv.on_request = lambda conn, req: chats(conn, req, srv)
        yield srv


@pytest.fixture
async def make_app(server: FakeServer) -> AsyncIterator[Callable[..., Any]]:
    apps: list[ClientApp] = []
    async with client_factory(server) as make_client:

        async def make(lang: str = "en") -> tuple[ClientApp, RecordingTerminal]:
            terminal = RecordingTerminal()
            client: Client = make_client(read_interval=60.0)
            app = ClientApp(client, Strings(lang), terminal)
            app.handler = ClientMessageHandler(Strings(lang), tz=dt.UTC)
            app.view.handler = app.handler
            assert await app.start()
            apps.append(app)
            await app.execute("login bob password1")
            terminal.lines.clear()
            return app, terminal

        yield make
        for app in apps:
            await app.stop()


def data_of(server: FakeServer, action: str) -> dict[str, Any]:
    return server.actions(action)[-1]["payload"]["data"]


async def test_help_lists_the_new_commands_in_both_languages() -> None:
    for name in ("chats", "history", "search", "reply", "edit", "recall", "receipts"):
        assert name in COMMANDS
        for strings in (EN, ZH):
            for key in (f"cmd.{name}.usage", f"cmd.{name}.help"):
                assert strings.has(key) and strings(key) != key
    assert COMMANDS["recall"].aliases == ("retract", "撤回")
    names = list(COMMANDS)
    assert names.index("send") < names.index("chats") < names.index("newgroup")


@pytest.mark.parametrize(("lang", "unread"), [("en", "(10 unread)"), ("zh", "(10 条未读)")])
async def test_chats_sends_pending_read_marks_first(
    server: FakeServer, make_app: Callable[..., Any], lang: str, unread: str
) -> None:
    app, terminal = await make_app(lang)
    app.client.mark_read(4, 3)
    await app.execute("chats")
    reads = server.actions("read")
    assert len(reads) == 1 and server.requests.index(reads[0]) < server.requests.index(
        server.actions("conversations")[0]
    )
    assert unread in terminal.lines[1] and terminal.lines[1].startswith("  alice")


@pytest.mark.parametrize(
    ("lang", "title", "row"),
    [
        ("en", "alice: the last 10 message(s)", "alice: m1 #1"),
        ("zh", "alice: 最近 10 条消息", "alice:m1 #1"),
    ],
)
async def test_history_shows_numbers_and_marks_the_page_read(
    server: FakeServer, make_app: Callable[..., Any], lang: str, title: str, row: str
) -> None:
    app, terminal = await make_app(lang)
    await app.execute("history alice")
    assert data_of(server, "history") == {"username": "alice", "limit": 20}
    assert terminal.lines[0] == title
    assert terminal.lines[1].endswith(row) and terminal.lines[10].endswith("#10")
    assert app.client.pending_reads == {4: 10}
    await app.execute("history alice 5")
    assert data_of(server, "history")["limit"] == 5
    assert terminal.lines[-7] == title.replace("10", "5")
    assert terminal.lines[-6].endswith("m6 #6")  # the same message, the same number
    more = Strings(lang)("history.more", target="alice", max=200)
    assert terminal.lines[-1] == more  # the page had more than was shown


async def test_history_without_a_name_and_by_group_number(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:
    app, terminal = await make_app()
    await app.execute("history")
    assert terminal.lines == [EN("history.no_target")]
    assert server.actions("history") == []
    await app.execute("history alice")
    await app.execute("history")
    assert data_of(server, "history") == {"conversation_id": 4, "limit": 20}
    await app.execute("history 1")
    assert terminal.lines[-1] == EN("history.not_listed")
    await app.execute("groups")
    await app.execute("history 1 3")
    assert data_of(server, "history") == {"group_id": 9, "limit": 3}
    await app.execute("history 2")
    assert terminal.lines[-1] == EN("sendgroup.bad_number", number=2, count=1)
    for bad in ("history alice 0", "history alice 201", "history alice x"):
        await app.execute(bad)
        assert terminal.lines[-1] == EN("command.usage", usage=EN("cmd.history.usage"))
    await app.execute("history a/b")
    assert "cannot be part of a user name" in terminal.lines[-1]


async def test_history_skips_changes_and_reads_older_pages_to_fill_the_count(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:
    app, terminal = await make_app()
    chats: Any = server.on_request
    pages = [
        page(msg(4, 3, text="three"), change(4, 4, 3, "3!"), change(4, 5, 2), more=True),
        page(msg(4, 1, text="one"), msg(4, 2, text="", retracted=True), more=False),
    ]

    async def paged(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "history":
            conn.respond(req, pages.pop(0))
        else:
            await chats(conn, req)

    server.on_request = paged
    await app.execute("history alice 3")
    first, second = (r["payload"]["data"] for r in server.actions("history"))
    assert first == {"username": "alice", "limit": 3}
    assert second == {"conversation_id": 4, "before_seq": 3, "limit": 3}
    assert terminal.lines[0] == "alice: the last 3 message(s)"
    assert [line.split("] ", 1)[1] for line in terminal.lines[1:]] == [
        "alice: one #1",
        "alice retracted a message #2",
        "alice: three #3",
    ]
    assert app.client.pending_reads == {4: 5}  # the newest page's end


async def test_reply_goes_to_the_chat_of_the_message(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:
    app, terminal = await make_app("zh")
    await app.execute("history alice")
    await app.execute("reply #3 收到")
    assert data_of(server, "send") | {"client_msg_id": None} == {
        "to": "alice",
        "text": "收到",
        "reply_to": 4003,
        "client_msg_id": None,
    }
    assert terminal.lines[-1] == "-> alice (回复 #3): 收到 #11"

    server.conns[0].push("message", msg(90, 1, kind="group", group_id=9, group_name="ops"))
    await wait_for(lambda: terminal.lines[-1].endswith("#12"))
    await app.execute("reply 12 ok")
    assert data_of(server, "sendgroup")["group_id"] == 9
    assert data_of(server, "sendgroup")["reply_to"] == 90001
    assert terminal.lines[-1] == "-> [ops] (回复 #12): ok #13"


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_numbers_that_name_nothing_are_refused_before_sending(
    server: FakeServer, make_app: Callable[..., Any], lang: str
) -> None:
    strings = Strings(lang)
    app, terminal = await make_app(lang)
    await app.execute("reply #5 hi")
    assert terminal.lines[-1] == strings("ref.unknown", ref=5)
    await app.execute("edit five x")
    assert terminal.lines[-1] == strings("ref.bad", text="five")
    await app.execute("recall")
    assert terminal.lines[-1] == strings("command.usage", usage=strings("cmd.recall.usage"))
    assert not server.actions("send") and not server.actions("edit")
    # notices go without a number: nothing to reply to
    notice = {**msg(2, 1), "kind": "system", "from": None, "system": True}
    server.conns[0].push("message", notice)
    await wait_for(lambda: len(terminal.lines) == 4)
    assert "#" not in terminal.lines[-1]


async def test_edit_and_recall_own_messages(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:
    app, terminal = await make_app()
    await app.execute(".send alice hello")
    assert terminal.lines[-1] == "-> alice: hello #1"
    await app.execute("edit #1 hello again")
    assert data_of(server, "edit") == {"message_id": 4011, "text": "hello again"}
    assert terminal.lines[-1] == "Edited #1: hello again"
    await app.execute("撤回 #1")
    assert data_of(server, "retract") == {"message_id": 4011}
    assert terminal.lines[-1] == "You retracted message #1."
    app_zh, terminal_zh = await make_app("zh")
    await app_zh.execute(".send alice 你好")
    await app_zh.execute("recall #1")
    assert terminal_zh.lines[-1] == "你撤回了一条消息 (#1)"


async def test_refusals_of_edits_are_worded(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:
    chats: Any = server.on_request

    async def late(conn: FakeConn, req: Envelope) -> None:
        if req["type"] in ("edit", "retract"):
            code = "edit_window_passed" if req["type"] == "edit" else "retract_window_passed"
            conn.respond(req, status="fail", code=code, message="too late")
        else:
            await chats(conn, req)

    server.on_request = late
    app, terminal = await make_app("zh")
    await app.execute(".send alice hi")
    await app.execute("edit #1 x")
    assert terminal.lines[-1] == "失败: 已超过可以编辑这条消息的时间 (edit_window_passed)"
    await app.execute("recall #1")
    assert terminal.lines[-1] == "失败: 已超过可以撤回这条消息的时间 (retract_window_passed)"


@pytest.mark.parametrize(
    ("lang", "title", "none"),
    [("en", "Messages containing 你好 (1):", "No message contains xyz."),
     ("zh", "包含 你好 的消息 (1):", "没有包含 xyz 的消息。")],
)  # fmt: skip
async def test_search_numbers_its_results(
    server: FakeServer, make_app: Callable[..., Any], lang: str, title: str, none: str
) -> None:
    app, terminal = await make_app(lang)
    await app.execute("search 你好")
    assert data_of(server, "search") == {"query": "你好", "limit": 20}
    assert terminal.lines[0] == title
    assert terminal.lines[1].endswith("大家你好啊 (11-14 22:13) #1")
    await app.execute("reply #1 hi")
    assert data_of(server, "send")["reply_to"] == 4002 and data_of(server, "send")["to"] == "alice"
    await app.execute("search xyz")
    assert terminal.lines[-1] == none
    await app.execute("search " + "x" * 201)
    assert "200" in terminal.lines[-1] and len(server.actions("search")) == 2


async def test_live_messages_are_read_and_receipts_shown(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:
    app, terminal = await make_app()
    conn = server.conns[0]
    conn.push("message", msg(4, 1, text="live"))
    conn.push("message", msg(4, 2, text="missed", replay=True))
    await wait_for(lambda: len(terminal.lines) == 2)
    assert app.client.pending_reads == {4: 1}  # the replayed one waits for history
    await app.execute(".send alice mine")
    conn.push("receipt", {"conversation_id": 4, "username": "alice", "delivered_seq": 11,
                          "read_seq": 11})  # fmt: skip
    await wait_for(lambda: terminal.lines[-1] == "✓✓ alice read up to #3")
    conn.push("message", change(4, 12, 1, "live, edited"))
    await wait_for(lambda: terminal.lines[-1] == "alice (edited) #1: live, edited (22:13)")
    await app.execute("receipts #3")
    assert data_of(server, "receipts") == {"conversation_id": 4, "seq": 11}
    assert terminal.lines[-1] == "#3: read by 1 (alice); received by 1 (alice)"


async def test_history_with_someone_never_talked_to_says_so(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:
    chats: Any = server.on_request

    async def nothing(conn: FakeConn, req: Envelope) -> None:
        if req["type"] == "history":
            conn.respond(req, status="fail", code="no_such_conversation", message="none")
        else:
            await chats(conn, req)

    server.on_request = nothing
    app, terminal = await make_app("zh")
    await app.execute("history carol")
    assert terminal.lines == [ZH("history.none", name="carol")]
    await app.execute("groups")
    await app.execute("history 1")  # a group one is not in (any more): the refusal itself
    assert terminal.lines[-1].endswith("(no_such_conversation)")


async def test_a_message_known_only_by_its_change_can_be_answered(
    server: FakeServer, make_app: Callable[..., Any]
) -> None:
    app, terminal = await make_app()
    server.conns[0].push("message", change(4, 5, 2, "fixed"))  # message 4002, never shown
    await wait_for(lambda: terminal.lines == ["alice (edited) #1: fixed (22:13)"])
    await app.execute("reply #1 ok")
    assert data_of(server, "send")["to"] == "alice"
    assert data_of(server, "send")["reply_to"] == 4002
