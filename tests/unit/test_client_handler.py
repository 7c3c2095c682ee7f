"""Display lines of the terminal client, in English and Chinese, and language choice."""

from __future__ import annotations

import datetime as dt
import string
from typing import Any

import pytest

from p2sp.client.client import Event
from p2sp.client.errors import ConnectionLost, RequestFailed, RequestTimeout
from p2sp.client.handler import KICK_REASONS, NOTICE_KINDS, ClientMessageHandler
from p2sp.client.strings import EN, ZH, Strings, detect_language, resolve_language
from p2sp.common.exceptions import ChatError


def ev(type_: str, **payload: Any) -> Event:
    return Event(type_, payload, 1_700_000_000_000)


#: 2024-05-01 09:07:30 UTC, in ms
SENT_AT = int(dt.datetime(2024, 5, 1, 9, 7, 30, tzinfo=dt.UTC).timestamp() * 1000)


@pytest.fixture
def en() -> ClientMessageHandler:
    return ClientMessageHandler(Strings("en"), tz=dt.UTC)


@pytest.fixture
def zh() -> ClientMessageHandler:
    return ClientMessageHandler(Strings("zh"), tz=dt.UTC)


def direct(**extra: Any) -> Event:
    payload: dict[str, Any] = {
        "conversation_id": 4,
        "seq": 2,
        "message_id": 17,
        "kind": "direct",
        "from": "alice",
        "to": "bob",
        "text": "你好 world",
        "type": "text",
        "sent_at": SENT_AT,
        "system": False,
        "replay": False,
    }
    return ev("message", **{**payload, **extra})


def notice(
    notice: dict[str, Any] | None, text: str = "alice added you as a friend", **extra: Any
) -> Event:
    payload: dict[str, Any] = {
        "conversation_id": 1,
        "seq": 1,
        "message_id": 3,
        "kind": "system",
        "from": None,
        "to": "bob",
        "text": text,
        "type": "system",
        "sent_at": SENT_AT,
        "system": True,
        "replay": False,
        "notice": notice,
    }
    return ev("message", **{**payload, **extra})


# --- kicked ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "en_words", "zh_words"),
    [
        ("logged_in_elsewhere", "logged in somewhere else", "在别处登录"),
        ("blocked", "blocked by an administrator", "封禁"),
        ("slow_consumer", "Nothing is lost", "消息不会丢失"),
        ("shutdown", "shutting down", "服务器正在关闭"),
    ],
)
def test_kicked_reasons_are_worded_for_people(
    reason: str, en_words: str, zh_words: str, en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    (en_line,) = en.format_event(ev("kicked", reason=reason))
    (zh_line,) = zh.format_event(ev("kicked", reason=reason))
    assert en_words in en_line
    assert zh_words in zh_line
    assert "_" not in en_line  # words, not the protocol code


def test_every_kick_reason_has_its_own_line(en: ClientMessageHandler) -> None:
    lines = {en.format_event(ev("kicked", reason=r))[0] for r in KICK_REASONS}
    assert len(lines) == len(KICK_REASONS)


def test_unknown_kick_reason_is_still_shown(en: ClientMessageHandler) -> None:
    assert en.format_event(ev("kicked", reason="maintenance")) == [
        "The server disconnected you (maintenance)."
    ]
    assert en.format_event(ev("kicked")) == ["The server disconnected you (?)."]


# --- error, presence, sync ------------------------------------------------


def test_error_event(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    event = ev("error", code="bad_checksum", message="payload checksum does not match")
    assert en.format_event(event) == [
        "Server error: payload checksum does not match (bad_checksum)"
    ]
    assert zh.format_event(event) == ["服务器错误: payload checksum does not match (bad_checksum)"]


def test_presence(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    online = ev("presence", username="bob", online=True, status="online")
    offline = ev("presence", username="bob", online=False, status="offline")
    assert en.format_event(online) == ["bob is online."]
    assert en.format_event(offline) == ["bob is offline."]
    assert zh.format_event(online) == ["bob 上线了"]
    assert zh.format_event(offline) == ["bob 下线了"]


def test_sync_done_is_quiet_when_nothing_was_missed(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    assert en.format_event(ev("sync_done", count=0)) == []
    assert zh.format_event(ev("sync_done", count=0)) == []
    assert en.format_event(ev("sync_done", count=3)) == ["3 offline message(s) delivered."]
    assert zh.format_event(ev("sync_done", count=3)) == ["已收取 3 条离线消息"]


# --- messages -------------------------------------------------------------


def test_direct_message(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    assert zh.format_event(direct()) == ["alice悄悄对你说:你好 world (09:07)"]
    assert en.format_event(direct()) == ["alice whispers to you: 你好 world (09:07)"]


def test_direct_message_time_is_local_by_default() -> None:
    local = ClientMessageHandler(Strings("zh"))  # no tz: the machine's zone
    expected = dt.datetime.fromtimestamp(SENT_AT / 1000).strftime("%H:%M")
    assert local.format_event(direct()) == [f"alice悄悄对你说:你好 world ({expected})"]


def test_direct_message_keeps_text_verbatim(en: ClientMessageHandler) -> None:
    (line,) = en.format_event(direct(text="a  {b} {message}  c"))
    assert line == "alice whispers to you: a  {b} {message}  c (09:07)"


def test_replayed_messages_are_marked(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    assert zh.format_event(direct(replay=True)) == ["[离线消息] alice悄悄对你说:你好 world (09:07)"]
    assert en.format_event(direct(replay=True)) == [
        "[offline] alice whispers to you: 你好 world (09:07)"
    ]
    added = notice({"kind": "friend_added", "username": "alice"}, replay=True)
    assert zh.format_event(added) == ["[离线消息] [系统消息]:alice 已添加你为好友"]
    assert en.format_event(added) == ["[offline] [System]: alice added you as a friend"]


def test_friend_added_notice_in_our_words(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    event = notice({"kind": "friend_added", "username": "爱丽丝"}, text="English fallback")
    assert zh.format_event(event) == ["[系统消息]:爱丽丝 已添加你为好友"]
    assert en.format_event(event) == ["[System]: 爱丽丝 added you as a friend"]


@pytest.mark.parametrize(
    "bad_notice",
    [
        None,
        "friend_added",
        {},
        {"kind": "group_removed", "group_name": "g"},  # no wording (yet): the server's text
        {"kind": "from_the_future", "username": "alice"},
        {"kind": "friend_added"},  # a name our wording needs is missing
        {"kind": "friend_added", "username": ""},
        {"kind": "friend_added", "username": ["x"]},
        {"kind": 5},
    ],
)
def test_notice_falls_back_to_text(
    bad_notice: Any, en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    event = notice(bad_notice, text="Something happened")
    assert en.format_event(event) == ["[System]: Something happened"]
    assert zh.format_event(event) == ["[系统消息]:Something happened"]


def test_admin_message_is_a_system_message(zh: ClientMessageHandler) -> None:
    event = notice({"kind": "admin", "from": "root"}, text="服务器今晚维护")
    assert zh.format_event(event) == ["[系统消息]:服务器今晚维护"]
    # system: true on a kind this client does not know is still a system line
    assert zh.format_event(notice(None, text="hi", kind="broadcast")) == ["[系统消息]:hi"]


def test_every_notice_wording_uses_notice_fields_only() -> None:
    for key in EN:
        if key.startswith("notice."):
            assert key.removeprefix("notice.") in NOTICE_KINDS, key
            assert key in ZH, key


def test_group_message_has_a_place(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    event = direct(kind="group", group_id=9, group_name="ops", to=None, text="hi all")
    assert en.format_event(event) == ["[ops] alice: hi all (09:07)"]
    assert zh.format_event(event) == ["[ops] alice:hi all (09:07)"]
    assert zh.format_event(direct(kind="group", group_id=9, replay=True)) == [
        "[离线消息] [9] alice:你好 world (09:07)"
    ]


def test_unknown_message_kind_is_shown_raw(en: ClientMessageHandler) -> None:
    (line,) = en.format_event(direct(kind="channel"))
    assert line.startswith("[message] {") and "channel" in line


def test_malformed_message_never_raises(en: ClientMessageHandler) -> None:
    for bad in (
        {},
        {"kind": "direct"},
        {"kind": "direct", "from": 3, "text": None, "sent_at": "soon"},
        {"kind": "direct", "sent_at": 10**30},
        {"kind": "direct", "sent_at": True},
        {"kind": "system", "notice": {"kind": None}},
        {"kind": "group", "group_name": None},
        {"kind": ["direct"]},
    ):
        en.format_event(Event("message", bad, 0))
    (line,) = en.format_event(Event("message", {"kind": "direct", "sent_at": "soon"}, 0))
    assert line == "? whispers to you:  (--:--)"


# --- friends and sends ----------------------------------------------------


def test_add_result(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    assert (
        en.added({"username": "Bob", "online": True}, "bob") == "Bob is now your friend (online)."
    )
    assert zh.added({"username": "bob", "online": False}, "bob") == "已添加 bob 为好友 (离线)。"
    assert en.added({}, "bob") == "bob is now your friend (offline)."


def test_friend_list(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    friends = [
        {"username": "alice", "online": True, "status": "online", "last_seen": None},
        {"username": "bob", "online": False, "status": "offline", "last_seen": SENT_AT},
        {"username": "carol", "online": False, "status": "offline", "last_seen": None},
    ]
    assert zh.friends(friends) == [
        "好友 (3):",
        "  alice  在线",
        "  bob  离线 (最后在线 2024-05-01 09:07)",
        "  carol  离线",
    ]
    assert en.friends(friends) == [
        "Friends (3):",
        "  alice  online",
        "  bob  offline (last seen 2024-05-01 09:07)",
        "  carol  offline",
    ]
    assert en.friends([]) == ["You have no friends yet. Add one with: add <username>"]
    assert zh.friends([]) == ["还没有好友。添加好友: add <用户名>"]


def test_send_echo(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    assert en.sent("bob", "hi  there") == "-> bob: hi  there"
    assert zh.sent("bob", "你好") == "-> bob: 你好"


# --- local connection events ----------------------------------------------


def test_disconnected(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    again = ev("disconnected", reason="connection_closed", will_reconnect=True)
    final = ev("disconnected", reason="logged_in_elsewhere", will_reconnect=False)
    assert en.format_event(again) == [
        "Connection to the server lost (the server closed the connection); reconnecting..."
    ]
    assert "reconnect" not in en.format_event(final)[0].split(".")[0]
    assert "logged in somewhere else" in en.format_event(final)[0]
    assert zh.format_event(again) == ["与服务器的连接已断开 (服务器关闭了连接)，正在重新连接..."]
    assert en.format_event(ev("disconnected", reason="client_closed")) == ["Disconnected."]
    # A reason without wording shows its code rather than nothing.
    assert "(weird_code)" in en.format_event(ev("disconnected", reason="weird_code"))[0]


def test_reconnected(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    assert en.format_event(ev("reconnected", relogged_in=True, username="alice")) == [
        "Reconnected; logged in again as alice."
    ]
    assert zh.format_event(ev("reconnected", relogged_in=True, username="alice")) == [
        "已重新连接，并已重新登录为 alice。"
    ]
    assert en.format_event(ev("reconnected", relogged_in=False)) == ["Reconnected to the server."]
    failed = ev(
        "reconnected", relogged_in=False, username="alice", code="user_blocked", message="blocked"
    )
    assert en.format_event(failed) == [
        "Reconnected, but logging in again failed: blocked (user_blocked)."
    ]


def test_unknown_event_falls_back_to_raw(en: ClientMessageHandler) -> None:
    assert en.format_event(ev("typing", username="bob")) == ['[typing] {"username":"bob"}']


def test_malformed_payload_never_raises(en: ClientMessageHandler) -> None:
    for kind in (
        "message",
        "kicked",
        "error",
        "presence",
        "sync_done",
        "disconnected",
        "reconnected",
    ):
        en.format_event(Event(kind, {"reason": 5, "code": None, "count": "x", "username": 3}, 0))


# --- errors and command results -------------------------------------------


def test_format_chat_error(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    err = RequestFailed("bad_password", "wrong password")
    assert en.format_error(err) == "Failed: wrong password (bad_password)"
    assert zh.format_error(err) == "失败: wrong password (bad_password)"
    assert en.format_error(ChatError("user_exists")) == "Failed: user exists (user_exists)"


def test_format_transport_errors(en: ClientMessageHandler) -> None:
    assert "lost" in en.format_error(ConnectionLost("x"))
    assert "did not answer" in en.format_error(RequestTimeout("x"))
    assert en.format_error(ValueError("boom")) == "Error: boom"


def test_welcome_shows_admin_status(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    user = {"username": "alice", "is_admin": False, "user_id": 1, "auth_token": "t"}
    admin = {**user, "is_admin": True}
    assert en.welcome(user) == ["Welcome, alice! You are logged in."]
    assert "administrator" in en.welcome(admin)[0]
    assert len(en.welcome(admin)) == 2  # plus the hint about admin commands
    assert "管理员" in zh.welcome(admin)[0]
    assert en.registered("alice", 3) == ("Registered alice (user id 3). Log in with: login alice")


# --- the string tables ----------------------------------------------------


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_chinese_table_matches_english() -> None:
    assert set(ZH) <= set(EN), "a zh key without an English original"
    for key, template in ZH.items():
        assert _fields(template) == _fields(EN[key]), key


def test_missing_chinese_key_falls_back_to_english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EN, "test.only_en", "only {what}")
    assert Strings("zh")("test.only_en", what="English") == "only English"
    assert Strings("zh")("no.such.key") == "no.such.key"


def test_missing_placeholder_does_not_crash() -> None:
    assert Strings("en")("event.presence.online") == "{username} is online."


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "zh_TW.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, "en"),  # LC_ALL wins, as in POSIX
        ({"LC_MESSAGES": "zh_CN", "LANG": "en_US"}, "zh"),
        ({"LC_ALL": "", "LANG": "zh_CN"}, "zh"),  # empty means unset
    ],
)
def test_language_from_locale(environ: dict[str, str], expected: str) -> None:
    assert detect_language(environ) == expected


def test_lang_option_beats_locale() -> None:
    assert resolve_language("en", {"LANG": "zh_CN.UTF-8"}) == "en"
    assert resolve_language("zh", {"LANG": "en_US.UTF-8"}) == "zh"
    assert resolve_language(None, {"LANG": "zh_CN.UTF-8"}) == "zh"
    assert resolve_language("fr", {}) == "en"
    assert Strings("zh_CN").lang == "zh"
    assert Strings("klingon").lang == "en"
