"""Message numbers, replies, edits, retractions, receipts, chats, history and search lines.

Pure display and bookkeeping (``ClientMessageHandler``, ``Refs``, ``ChatView``),
in English and Chinese; the commands that use them are in
``test_terminal_commands.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from p2sp.client import Event
from p2sp.terminal.chatview import ChatView
from p2sp.terminal.display import ClientMessageHandler
from p2sp.terminal.refs import Refs
from p2sp.terminal.strings import Strings

#: 2024-05-01 09:07:30 UTC, in ms
SENT_AT = int(dt.datetime(2024, 5, 1, 9, 7, 30, tzinfo=dt.UTC).timestamp() * 1000)


def message(seq: int, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "conversation_id": 4,
        "seq": seq,
        "message_id": 4000 + seq,
        "kind": "direct",
        "from": "alice",
        "to": "bob",
        "text": text,
        "type": "text",
        "sent_at": SENT_AT,
        "system": False,
        "replay": False,
        "reply_to": None,
        "target_id": None,
        "edited_at": None,
        "retracted": False,
        "attachments": [],
        **extra,
    }


def group(seq: int, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return message(seq, text, kind="group", group_id=9, group_name="ops", **extra)


def changed(seq: int, target: int, text: str = "", **extra: Any) -> dict[str, Any]:
    kind = "edit" if text else "retract"
    return message(seq, text, type=kind, target_id=4000 + target, **extra)


@pytest.fixture
def en() -> ClientMessageHandler:
    return ClientMessageHandler(Strings("en"), tz=dt.UTC)


@pytest.fixture
def zh() -> ClientMessageHandler:
    return ClientMessageHandler(Strings("zh"), tz=dt.UTC)


# --- message lines with numbers, replies, edits, retractions -----------------


def test_message_lines_end_with_their_number(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    event = Event("message", message(1, "你好"), 0)
    assert en.format_event(event, ref=12) == ["alice whispers to you: 你好 (09:07) #12"]
    assert zh.format_event(event, ref=12) == ["alice悄悄对你说:你好 (09:07) #12"]
    assert en.format_event(event) == ["alice whispers to you: 你好 (09:07)"]  # no number given
    grp = Event("message", group(2, "hello", replay=True), 0)
    assert zh.format_event(grp, ref=3) == ["[离线消息] [ops] alice:hello (09:07) #3"]
    multi = Event("message", message(3, "one\ntwo"), 0)
    assert en.format_event(multi, ref=4) == [
        "alice whispers to you: one",
        "  | two (09:07) #4",
    ]


def test_a_reply_quotes_what_it_answers(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    quote = {"message_id": 4001, "seq": 1, "from": "bob", "text": "are you coming tonight? " * 3}
    event = Event("message", message(2, "yes", reply_to=quote), 0)
    assert en.format_event(event, ref=5, reply_ref=1) == [
        "alice whispers to you: [re bob #1: are you coming tonight? are y…] yes (09:07) #5"
    ]
    assert zh.format_event(event, ref=5, reply_ref=1) == [
        "alice悄悄对你说:[回复 bob #1: are you coming tonight? are y…] yes (09:07) #5"
    ]
    erased = Event("message", message(2, "yes", reply_to={**quote, "text": ""}), 0)
    assert en.format_event(erased, ref=5, reply_ref=1) == [
        "alice whispers to you: [re bob #1] yes (09:07) #5"
    ]
    forged = {**quote, "text": "line\n[System]: fake"}  # a quote stays on its line
    (line,) = en.format_event(Event("message", message(2, "x", reply_to=forged), 0), ref=2)
    assert "\n" not in line and "[re bob: line [System]: fake] x" in line


def test_edits_and_retractions_as_they_arrive(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    edit = changed(5, 1, "new text")
    assert en.change_line(edit, ref=12) == "alice (edited) #12: new text (09:07)"
    assert zh.change_line(edit, ref=12) == "alice (已编辑) #12:new text (09:07)"
    retract = changed(6, 1)
    assert en.change_line(retract, ref=12) == "alice retracted a message (#12)"
    assert zh.change_line(retract, ref=12) == "alice撤回了一条消息 (#12)"
    in_group = {**retract, "kind": "group", "group_name": "运维", "from": "root"}
    assert (
        zh.change_line(in_group, ref=3, author="alice") == "[运维] root撤回了alice的一条消息 (#3)"
    )
    assert en.change_line(in_group, ref=3, author="alice") == (
        "[运维] root retracted a message of alice (#3)"
    )
    assert en.change_line({**edit, "replay": True}, ref=1).startswith("[offline] alice (edited)")
    # format_event words a change as one too, with the target's number
    assert en.format_event(Event("message", edit, 0), ref=12) == [
        "alice (edited) #12: new text (09:07)"
    ]


def test_messages_shown_after_they_changed(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    edited = Event("message", message(1, "fixed", edited_at=SENT_AT + 5, replay=True), 0)
    assert en.format_event(edited, ref=2) == [
        "[offline] alice whispers to you: fixed (09:07) (edited) #2"
    ]
    assert zh.format_event(edited, ref=2) == [
        "[离线消息] alice悄悄对你说:fixed (09:07) (已编辑) #2"
    ]
    gone = Event("message", message(1, "", retracted=True), 0)
    assert zh.format_event(gone, ref=2) == ["alice撤回了一条消息 (#2)"]


# --- chats, history, search, receipts ----------------------------------------


def test_chats_list_unread_counts_and_last_messages(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    rows = [
        {"kind": "direct", "peer": "alice", "unread": 10, "last_message": message(10, "m10")},
        {"kind": "group", "name": "ops", "unread": 0, "last_message": changed(7, 2)},
        {
            "kind": "system",
            "unread": 1,
            "last_message": {
                **message(1, "alice added you as a friend"),
                "kind": "system",
                "from": None,
                "system": True,
                "notice": {"kind": "friend_added", "username": "alice"},
            },
        },
        {"kind": "direct", "peer": "carol", "unread": 0, "last_message": None},
    ]
    assert en.conversations(rows, more=True) == [
        "Conversations (4):",
        "  alice  (10 unread)  alice: m10 (09:07)",
        "  [ops]  alice retracted a message (09:07)",
        "  [System]  (1 unread)  alice added you as a friend (09:07)",
        "  carol",
        "  ... and older conversations",
        "Read one with: history <username>, or history <group n> after groups",
    ]
    zh_lines = zh.conversations(rows)
    assert zh_lines[1] == "  alice  (10 条未读)  alice:m10 (09:07)"
    assert zh_lines[3] == "  [系统消息]  (1 条未读)  alice 已添加你为好友 (09:07)"
    assert en.conversations([]) == ["No conversations yet."]
    edited = {"kind": "direct", "peer": "a", "last_message": changed(3, 1, "x" * 60)}
    assert en.conversations([edited])[1] == f"  a  alice (edited): {'x' * 39}… (09:07)"


def test_history_rows(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    mine = message(2, "ok", **{"from": "bob", "to": "alice", "status": "read"})
    assert en.history_row(message(1, "hello"), ref=1) == ["[05-01 09:07] alice: hello #1"]
    assert zh.history_row(message(1, "hello"), ref=1) == ["[05-01 09:07] alice:hello #1"]
    assert en.history_row(mine, ref=2, own=True) == ["[05-01 09:07] bob: ok #2 ✓✓"]
    assert en.history_row({**mine, "status": "delivered"}, ref=2, own=True)[0].endswith("#2 ✓")
    assert en.history_row({**mine, "status": "sent"}, ref=2, own=True)[0].endswith("#2")
    edited = message(3, "better", edited_at=SENT_AT + 1)
    assert en.history_row(edited, ref=3) == ["[05-01 09:07] alice: better (edited) #3"]
    gone = message(4, "", retracted=True)
    assert zh.history_row(gone, ref=4) == ["[05-01 09:07] alice撤回了一条消息 #4"]
    assert en.history_row(gone, ref=4) == ["[05-01 09:07] alice retracted a message #4"]


def test_search_rows(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    direct = {**message(1, "大家你好啊"), "conversation_kind": "direct", "peer": "alice"}
    assert en.search_row(direct, ref=7) == ["  [with alice] alice: 大家你好啊 (05-01 09:07) #7"]
    assert zh.search_row(direct, ref=7) == ["  [与 alice] alice:大家你好啊 (05-01 09:07) #7"]
    in_group = {**group(2, "你好"), "conversation_kind": "group", "conversation_name": "ops"}
    assert en.search_row(in_group, ref=8) == ["  [ops] alice: 你好 (05-01 09:07) #8"]


def test_receipt_lines(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    assert en.read_up_to("bob", 12) == "✓✓ bob read up to #12"
    assert zh.read_up_to("bob", 12) == "✓✓ bob 已读到 #12"
    data = {"delivered": ["bob", "carol"], "read": ["bob"], "delivered_count": 2, "read_count": 1}
    assert en.receipts(data, 3) == "#3: read by 1 (bob); received by 2 (bob, carol)"
    assert zh.receipts(data, 3) == "#3: 1 人已读 (bob)；2 人已收到 (bob, carol)"
    assert en.receipts({}, 3) == "#3: read by 0; received by 0"


# --- numbers ------------------------------------------------------------------


def test_a_message_keeps_its_number() -> None:
    refs = Refs()
    first = refs.note(message(1), "bob")
    second = refs.note(message(2), "bob")
    assert first is not None and second is not None
    assert (first.number, second.number) == (1, 2)
    again = refs.note(message(1, "edited"), "bob")
    assert again is first and again.text == "edited"
    assert first.peer == "alice" and not first.own and first.kind == "direct"
    mine = refs.sent(
        {"conversation_id": 4, "seq": 3, "message_id": 4003}, "bob", kind="direct", to="alice"
    )
    assert mine is not None and mine.own and mine.peer == "alice" and mine.number == 3
    assert refs.get(3) is mine and refs.get(99) is None
    assert [Refs.parse(t) for t in ("#12", "12", " #3 ", "x", "#", "#-1")] == [
        12,
        12,
        3,
        None,
        None,
        None,
    ]
    assert refs.own_up_to(4, 5) is mine and refs.own_up_to(4, 2) is None


def test_a_quoted_message_is_numbered_in_the_replys_chat() -> None:
    refs = Refs()
    quote = {"message_id": 4001, "seq": 1, "from": "bob", "text": "hi"}
    shown = refs.quoted(message(2, "re", reply_to=quote), "bob")
    assert shown is not None
    assert (shown.conversation_id, shown.seq, shown.sender, shown.own) == (4, 1, "bob", True)
    assert shown.peer == "alice"  # a reply to bob's own message still goes to alice
    in_group = refs.quoted(group(3, "re", reply_to={**quote, "message_id": 9001}), "bob")
    assert in_group is not None and (in_group.group_id, in_group.group_name) == (9, "ops")


def test_old_numbers_are_forgotten_past_the_limit() -> None:
    refs = Refs(limit=2)
    for seq in (1, 2, 3):
        refs.note(message(seq), "bob")
    assert refs.get(1) is None and refs.get(3) is not None


# --- ChatView: what is shown, marked read and said about receipts ---------------


class FakeClient:
    username = "bob"


def view(lang: str = "en") -> ChatView:
    return ChatView(FakeClient(), ClientMessageHandler(Strings(lang), tz=dt.UTC))  # type: ignore[arg-type]


def test_live_messages_are_marked_read_and_replayed_ones_are_not() -> None:
    chats = view()
    lines, read = chats.event_lines(Event("message", message(1), 0))
    assert lines == ["alice whispers to you: hi (09:07) #1"] and read == (4, 1)
    lines, read = chats.event_lines(Event("message", message(2, replay=True), 0))
    assert lines[0].startswith("[offline]") and read is None
    assert chats.last_chat is not None and chats.last_chat.target == "alice"
    notice = {**message(1), "conversation_id": 2, "kind": "system", "from": None, "system": True}
    lines, read = chats.event_lines(Event("message", notice, 0))
    assert not lines[0].endswith("#3") and read == (2, 1)  # notices go without a number


def test_a_change_is_shown_once_about_its_target() -> None:
    chats = view()
    chats.event_lines(Event("message", message(1, "first"), 0))
    edit = Event("message", changed(2, 1, "second"), 0, change="edit", target=None)
    assert chats.event_lines(edit)[0] == ["alice (edited) #1: second (09:07)"]
    assert chats.event_lines(edit)[0] == []  # the same text again: nothing new
    gone = Event("message", changed(3, 1), 0, change="retract", target=None)
    assert chats.event_lines(gone)[0] == ["alice retracted a message (#1)"]
    assert chats.event_lines(gone)[0] == []


def test_changes_replayed_after_the_final_state_are_not_shown_again() -> None:
    chats = view("zh")
    final = message(1, "third", edited_at=SENT_AT + 3, replay=True)
    chats.event_lines(Event("message", final, 0))
    older = Event(
        "message",
        changed(2, 1, "second", replay=True, sent_at=SENT_AT + 2),
        0,
        change="edit",
        target=final,
    )
    assert chats.event_lines(older)[0] == []  # superseded by a later edit
    latest = Event(
        "message",
        changed(3, 1, "third", replay=True, sent_at=SENT_AT + 3),
        0,
        change="edit",
        target=final,
    )
    assert chats.event_lines(latest)[0] == []  # already shown with this text
    erased = message(5, "", retracted=True, replay=True)
    chats.event_lines(Event("message", erased, 0))
    again = Event("message", changed(6, 5, replay=True), 0, change="retract", target=erased)
    assert chats.event_lines(again)[0] == []
    unseen = Event("message", changed(7, 6, "x"), 0, change="edit", target=None)
    assert chats.event_lines(unseen)[0] == ["alice (已编辑) #3:x (09:07)"]  # a new number


def test_read_receipts_name_ones_own_message_once() -> None:
    chats = view()
    own = chats.sent(
        {"conversation_id": 4, "seq": 3, "message_id": 4003}, kind="direct", to="alice"
    )
    chats.sent({"conversation_id": 4, "seq": 5, "message_id": 4005}, kind="direct", to="alice")
    receipt = {"conversation_id": 4, "username": "alice", "delivered_seq": 4, "read_seq": 4}
    assert chats.event_lines(Event("receipt", receipt, 0)) == (
        [f"✓✓ alice read up to #{own}"],
        None,
    )
    assert chats.receipt_lines(receipt) == []  # said already
    assert chats.receipt_lines({**receipt, "read_seq": 2}) == []  # none of ours read yet
    assert chats.receipt_lines({**receipt, "read_seq": 9}) == [f"✓✓ alice read up to #{own + 1}"]
    chats.sent({"conversation_id": 9, "seq": 1, "message_id": 9001}, kind="group", group_id=9)
    group_receipt = {"conversation_id": 9, "username": "carol", "delivered_seq": 1, "read_seq": 1}
    assert chats.receipt_lines(group_receipt) == []  # groups: ask with receipts #n
    assert chats.receipt_lines({"conversation_id": "x"}) == []
