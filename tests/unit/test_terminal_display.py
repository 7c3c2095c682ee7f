"""Display lines of the terminal client, in English and Chinese, and language choice."""

from __future__ import annotations

import datetime as dt
import re
import string
from pathlib import Path
from typing import Any

import pytest

from p2sp.client.client import Event
from p2sp.client.errors import ConnectionLost, RequestError, RequestFailed, RequestTimeout
from p2sp.common.exceptions import ChatError
from p2sp.terminal.display.handler import (
    DETAIL_CODES,
    KICK_REASONS,
    NOTICE_KINDS,
    ClientMessageHandler,
)
from p2sp.terminal.display.neutralise import CONTINUATION, neutralise
from p2sp.terminal.strings import EN, ZH, Strings, detect_language, resolve_language


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


def test_blocked_kick_says_logins_are_refused(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    assert en.format_event(ev("kicked", reason="blocked")) == [
        "Your account has been blocked by an administrator: you are logged out and cannot "
        "log in until an administrator unblocks it."
    ]
    assert zh.format_event(ev("kicked", reason="blocked")) == [
        "你的账号已被管理员封禁，已被强制下线；管理员解封前无法登录。"
    ]


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
        "The server closed the connection: corrupted data went over the connection (bad_checksum)"
    ]
    assert zh.format_event(event) == ["服务器关闭了连接: 连接上的数据校验失败 (bad_checksum)"]
    # A code this client has no words for: the server's message.
    odd = ev("error", code="new_code", message="something new")
    assert en.format_event(odd) == ["The server closed the connection: something new (new_code)"]


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
        {"kind": "group_removed", "group_name": "g"},  # ``by`` is missing: the server's text
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


def test_admin_message_is_a_system_message_naming_the_admin(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    event = notice({"kind": "admin", "from": "root"}, text="服务器今晚维护")
    assert zh.format_event(event) == ["[系统消息] 管理员 root:服务器今晚维护 (09:07)"]
    assert en.format_event(event) == ["[System] administrator root: 服务器今晚维护 (09:07)"]
    assert zh.format_event(notice({"kind": "admin", "from": "root"}, text="x", replay=True)) == [
        "[离线消息] [系统消息] 管理员 root:x (09:07)"
    ]
    # system: true on a kind this client does not know is still a system line
    assert zh.format_event(notice(None, text="hi", kind="broadcast")) == ["[系统消息]:hi"]


def test_broadcast_is_worded_as_one(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    event = notice(
        {"kind": "admin", "from": "root", "broadcast": True}, text="maintenance at 22:00"
    )
    assert zh.format_event(event) == ["[系统消息] 管理员 root 广播:maintenance at 22:00 (09:07)"]
    assert en.format_event(event) == [
        "[System] broadcast from administrator root: maintenance at 22:00 (09:07)"
    ]


def test_admin_message_without_a_name_is_a_plain_system_line(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    event = notice({"kind": "admin"}, text="hello", **{"from": None})
    assert zh.format_event(event) == ["[系统消息]:hello"]
    assert en.format_event(event) == ["[System]: hello"]
    # the message's own ``from`` names the admin when the notice does not
    assert en.format_event(notice({"kind": "admin"}, text="hi", **{"from": "root"})) == [
        "[System] administrator root: hi (09:07)"
    ]


GROUP_NOTICE = {"group_id": 9, "group_name": "运维", "by": "alice"}


@pytest.mark.parametrize(
    ("kind", "en_line", "zh_line"),
    [
        (
            "group_invited",
            "[System]: alice added you to the group 运维",
            "[系统消息]:alice 邀请你加入了群组 运维",
        ),
        (
            "group_removed",
            "[System]: alice removed you from the group 运维",
            "[系统消息]:alice 将你移出了群组 运维",
        ),
        (
            "group_deleted",
            "[System]: alice deleted the group 运维",
            "[系统消息]:alice 解散了群组 运维",
        ),
        (
            "group_blocked",
            "[System]: The group 运维 has been blocked by an administrator: "
            "no messages until it is unblocked",
            "[系统消息]:群组 运维 已被管理员封禁，解封前无法收发消息",
        ),
        (
            "group_unblocked",
            "[System]: The group 运维 has been unblocked by an administrator",
            "[系统消息]:群组 运维 已被管理员解封",
        ),
    ],
)
def test_group_notices_in_our_words(
    kind: str, en_line: str, zh_line: str, en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    event = notice({"kind": kind, **GROUP_NOTICE}, text="English fallback")
    assert en.format_event(event) == [en_line]
    assert zh.format_event(event) == [zh_line]
    replayed = notice({"kind": kind, **GROUP_NOTICE}, text="English fallback", replay=True)
    assert zh.format_event(replayed) == [f"[离线消息] {zh_line}"]


@pytest.mark.parametrize(
    "kind", ["group_invited", "group_removed", "group_deleted", "group_blocked", "group_unblocked"]
)
def test_group_notice_without_its_names_shows_the_server_text(
    kind: str, zh: ClientMessageHandler
) -> None:
    event = notice({"kind": kind, "group_id": 9}, text="the server's sentence")
    assert zh.format_event(event) == ["[系统消息]:the server's sentence"]


def test_every_notice_kind_has_wording_in_both_languages() -> None:
    for kind in NOTICE_KINDS:
        if kind == "admin":
            assert "message.admin" in EN and "message.admin" in ZH
            continue
        assert f"notice.{kind}" in EN and f"notice.{kind}" in ZH, kind


def test_every_notice_wording_uses_notice_fields_only() -> None:
    for key in EN:
        if key.startswith("notice."):
            assert key.removeprefix("notice.") in NOTICE_KINDS, key
            assert key in ZH, key


def group_message(**extra: Any) -> Event:
    payload: dict[str, Any] = {
        "conversation_id": 12,
        "seq": 5,
        "message_id": 40,
        "kind": "group",
        "from": "alice",
        "group_id": 9,
        "group_name": "ops",
        "text": "hi all",
        "type": "text",
        "sent_at": SENT_AT,
        "system": False,
        "replay": False,
    }
    return ev("message", **{**payload, **extra})


def test_group_message_shows_the_group(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    assert en.format_event(group_message()) == ["[ops] alice: hi all (09:07)"]
    assert zh.format_event(group_message()) == ["[ops] alice:hi all (09:07)"]
    assert zh.format_event(group_message(group_name=None, text="你好", replay=True)) == [
        "[离线消息] [9] alice:你好 (09:07)"
    ]


def test_admin_group_message_is_a_system_line(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    event = group_message(**{"from": "root"}, type="system", system=True, text="请遵守群规")
    assert zh.format_event(event) == ["[系统消息] [ops] 管理员 root:请遵守群规 (09:07)"]
    assert en.format_event(event) == ["[System] [ops] administrator root: 请遵守群规 (09:07)"]
    anonymous = group_message(**{"from": None}, system=True, text="x")
    assert en.format_event(anonymous) == ["[System] [ops]: x (09:07)"]
    assert zh.format_event(anonymous) == ["[系统消息] [ops]:x (09:07)"]


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
        "Reconnected, but logging in again failed: this account is blocked by an administrator"
        " (user_blocked)."
    ]
    assert zh.format_event(failed) == [
        "已重新连接，但重新登录失败: 该账号已被管理员封禁 (user_blocked)。"
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
    assert zh.format_error(err) == "失败: 密码错误 (bad_password)"
    # A code this client has no words for: the server's message stands alone.
    assert en.format_error(RequestFailed("brand_new", "a new rule")) == (
        "Failed: a new rule (brand_new)"
    )
    assert zh.format_error(ChatError("brand_new")) == "失败: brand new (brand_new)"


def test_validator_text_never_reaches_people(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    """A refusal is the client's sentence; the server's reason only where it helps."""
    err = RequestError("invalid_request", "at most 64 characters - at `data.name`")
    assert en.format_error(err) == (
        "Failed: the server refused the request: at most 64 characters (invalid_request)"
    )
    assert zh.format_error(err) == (
        "失败: 服务器拒绝了这个请求: at most 64 characters (invalid_request)"
    )
    assert "`" not in en.format_error(err) and "data." not in en.format_error(err)


def test_look_alike_name_shows_the_similar_user(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    message = "the name 'AIice' looks too much like the existing user 'alice'; choose another"
    err = RequestFailed("user_exists", message)
    assert en.format_error(err) == (
        f"Failed: this name cannot be registered: {message} (user_exists)"
    )
    assert zh.format_error(err) == f"失败: 这个用户名不能注册: {message} (user_exists)"


def test_rate_limited_says_how_long_to_wait(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    err = RequestFailed("rate_limited", "too many failed logins; try again in 42 s")
    err.data = {"retry_after": 42}
    assert en.format_error(err) == "Failed: too many attempts; try again in 42 s (rate_limited)"
    assert zh.format_error(err) == "失败: 尝试次数过多，请 42 秒后再试 (rate_limited)"
    err.data = {}
    assert zh.format_error(err) == "失败: 尝试次数过多，请稍后再试 (rate_limited)"


#: codes docs/protocol.md does not list but the client can meet
EXTRA_CODES = {"connection_closed"}
#: every code named in the brief the tests were written for: the parser below must find them
KNOWN_CODES = {
    "user_exists", "weak_password", "no_such_user", "bad_password", "user_blocked",
    "rate_limited", "not_friends", "already_friends", "cannot_add_self", "cannot_send_to_self",
    "group_exists", "group_limit", "no_such_group", "not_permitted", "already_member",
    "group_full", "not_member", "cannot_kick_self", "group_blocked", "invalid_request",
    "unknown_action", "not_authenticated", "internal_error", "bad_magic", "bad_checksum",
    "bad_length", "bad_payload", "idle_timeout", "logged_in_elsewhere", "blocked",
    "slow_consumer", "shutdown",
}  # fmt: skip


def protocol_codes() -> set[str]:
    """Every code docs/protocol.md lists: refusals, framing errors, kick reasons.

    Read from its tables: the "fail codes" column of the action tables, the
    first column of the error tables (``code`` / ``status / code``), the
    reasons of the ``kicked`` event; and every ``fail``/``x`` or
    ``error``/``x`` in the text.
    """
    text = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text("utf-8")
    word = re.compile(r"`([a-z][a-z_]*)`")
    codes: set[str] = set()
    columns: list[str] = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue  # the separator row
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if following.startswith("|") and set(following) <= set("|-: "):
            columns = [c.lower() for c in cells]  # a heading (rows after a blank keep it)
            continue
        for heading, cell in zip(columns, cells, strict=False):
            if heading == "fail codes" or heading in ("code", "status / code"):
                codes.update(w for w in word.findall(cell) if w not in ("fail", "error", "ok"))
        if cells and cells[0] == "`kicked`":
            codes.update(word.findall(" ".join(cells[1:2])))
    codes.update(re.findall(r"`(?:fail|error)`\s*/\s*`([a-z_]+)`", text))
    return codes


def test_every_protocol_code_has_a_sentence_in_both_languages() -> None:
    codes = protocol_codes() | EXTRA_CODES
    assert codes >= KNOWN_CODES, sorted(KNOWN_CODES - codes)
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for code in sorted(codes):
        key = f"code.{code}"
        assert key in EN, key
        assert key in ZH and cjk.search(ZH[key]), key  # its own Chinese, not the fallback
    for lang in ("en", "zh"):
        handler = ClientMessageHandler(Strings(lang))
        for code in codes:  # as a refusal, as an error event, as a drop reason
            line = handler.format_error(RequestFailed(code, "server words"))
            assert "server words" not in line or code in DETAIL_CODES, line
            assert handler.reason(code) != code


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


# --- groups, rooms and administration -------------------------------------


def row(gid: int, name: str, creator: str, online: int, total: int, **extra: Any) -> dict[str, Any]:
    base = {"group_id": gid, "name": name, "creator": creator, "online": online, "total": total}
    return {**base, "role": "member", "blocked": False, "public": False, **extra}


MY_GROUPS = [
    row(3, "ops", "alice", 2, 3, role="owner"),
    row(5, "运维", "bob", 0, 12, role="admin", blocked=True),
    row(1, "public", "system", 4, 40, public=True),
]


def test_groups_are_numbered_from_one(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    assert en.groups(MY_GROUPS) == [
        "Your groups (3):",
        "[1] ops alice 2/3  (owner)",
        "[2] 运维 bob 0/12  (group admin, blocked)",
        "[3] public system 4/40  (public room)",
        "Send to one with: sendgroup <n> <message>",
    ]
    assert zh.groups(MY_GROUPS) == [
        "你的群组 (3):",
        "[1] ops alice 2/3  (群主)",
        "[2] 运维 bob 0/12  (群管理员，已封禁)",
        "[3] public system 4/40  (公共聊天室)",
        "发送群消息: sendgroup <编号> <消息>",
    ]
    assert en.groups([]) == ["You are in no group yet. Create one with: newgroup <groupname>"]
    assert zh.groups([]) == ["你还没有加入任何群组。创建群组: newgroup <群组名>"]


def test_rooms_list(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    rooms = [
        row(1, "public", "system", 4, 40, public=True, role=None),
        row(8, "lobby", "carol", 1, 2, public=True, role="member"),
    ]
    assert en.rooms(rooms) == [
        "Public rooms (2):",
        "[1] public system 4/40",
        "[2] lobby carol 1/2  (joined)",
        "Join one with: join <n>",
    ]
    assert zh.rooms(rooms) == [
        "公共聊天室 (2):",
        "[1] public system 4/40",
        "[2] lobby carol 1/2  (已加入)",
        "加入聊天室: join <编号>",
    ]
    assert en.rooms([]) == ["There are no public rooms."]
    assert zh.rooms([]) == ["没有公共聊天室。"]


def test_all_groups_list(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    rows = [
        row(1, "public", "system", 4, 40, public=True, role=None),
        row(3, "ops", "alice", 2, 3, role=None, blocked=True),
    ]
    assert en.all_groups(rows) == [
        "All groups (2):",
        "[1] public system 4/40  (public room)",
        "[2] ops alice 2/3  (blocked)",
    ]
    assert zh.all_groups(rows) == [
        "所有群组 (2):",
        "[1] public system 4/40  (公共聊天室)",
        "[2] ops alice 2/3  (已封禁)",
    ]
    assert en.all_groups([]) == ["There are no groups yet."]
    assert zh.all_groups([]) == ["还没有任何群组。"]


def test_malformed_group_rows_never_raise(en: ClientMessageHandler) -> None:
    assert en.groups([{}]) == [
        "Your groups (1):",
        "[1] ? ? ?/?",
        "Send to one with: sendgroup <n> <message>",
    ]
    en.rooms([{"role": 5, "blocked": "yes", "name": None}])
    en.users([{"username": None, "last_seen": "x"}])


def test_user_list(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    users = [
        {"username": "alice", "blocked": False, "online": True, "is_admin": True, "last_seen": 1},
        {
            "username": "bob",
            "blocked": True,
            "online": False,
            "is_admin": False,
            "last_seen": SENT_AT,
        },
        {
            "username": "carol",
            "blocked": False,
            "online": False,
            "is_admin": False,
            "last_seen": None,
        },
    ]
    assert en.users(users) == [
        "Users (3):",
        "  alice  online  active  [admin]",
        "  bob  offline (last seen 2024-05-01 09:07)  blocked",
        "  carol  offline  active",
    ]
    assert zh.users(users) == [
        "所有用户 (3):",
        "  alice  在线  正常  [管理员]",
        "  bob  离线 (最后在线 2024-05-01 09:07)  封禁",
        "  carol  离线  正常",
    ]
    assert en.users(users[:1], online_only=True)[0] == "Online users (1):"
    assert zh.users(users[:1], online_only=True)[0] == "在线用户 (1):"
    assert en.users([]) == ["There are no users."]
    assert en.users([], online_only=True) == ["Nobody is online."]
    assert zh.users([]) == ["没有任何用户。"]
    assert zh.users([], online_only=True) == ["没有在线用户。"]


def test_join_result_and_group_choices(en: ClientMessageHandler, zh: ClientMessageHandler) -> None:
    joined = row(1, "public", "system", 4, 41, public=True)
    assert en.joined(joined, "public") == (
        "Joined public (4/41 online). Run groups to get its number for sendgroup."
    )
    assert zh.joined(joined, "public") == (
        "已加入 public (4/41 在线)。运行 groups 查看它的编号 (用于 sendgroup)。"
    )
    assert en.joined({}, "lobby").startswith("Joined lobby (?/? online).")
    assert en.group_choices([row(3, "ops", "alice", 0, 1), row(4, "ops", "bob", 0, 1)]) == (
        "ops@alice, ops@bob"
    )


#: every command result and client-side refusal of the group and admin commands
RESULT_LINES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "newgroup.ok",
        {"name": "ops"},
        "Created the group ops; you are its owner. Add members with: addgroupuser ops <username>",
        "已创建群组 ops，你是群主。邀请成员: addgroupuser ops <用户名>",
    ),
    ("delgroup.ok", {"name": "ops"}, "Deleted the group ops.", "已解散群组 ops。"),
    (
        "addgroupuser.ok",
        {"username": "bob", "group": "ops"},
        "Added bob to ops.",
        "已将 bob 加入群组 ops。",
    ),
    (
        "delgroupuser.ok",
        {"username": "bob", "group": "ops"},
        "Removed bob from ops.",
        "已将 bob 移出群组 ops。",
    ),
    (
        "setgrouprole.admin",
        {"username": "bob", "group": "ops"},
        "bob is now an admin of ops.",
        "bob 现在是群组 ops 的管理员。",
    ),
    (
        "setgrouprole.member",
        {"username": "bob", "group": "ops"},
        "bob is now a plain member of ops.",
        "bob 现在是群组 ops 的普通成员。",
    ),
    (
        "sendgroup.echo",
        {"group": "ops", "message": "hi  all"},
        "-> [ops]: hi  all",
        "-> [ops]: hi  all",
    ),
    (
        "sendgroup.not_listed",
        {},
        "Run groups first: sendgroup takes a number from the groups list.",
        "请先运行 groups: sendgroup 使用 groups 列表中的编号。",
    ),
    (
        "sendgroup.empty",
        {},
        "Your last groups list was empty; create or join a group, then run groups.",
        "你上次的 groups 列表是空的；请先创建或加入群组，再运行 groups。",
    ),
    (
        "sendgroup.bad_number",
        {"number": 4, "count": 2},
        "There is no group number 4: your last groups list goes from 1 to 2.",
        "没有编号为 4 的群组: 你上次的 groups 列表编号为 1 到 2。",
    ),
    (
        "group.unknown",
        {"name": "ops"},
        "You have no group named ops. Your groups: groups",
        "你没有名为 ops 的群组。查看你的群组: groups",
    ),
    (
        "group.ambiguous",
        {"name": "ops", "count": 2, "choices": "ops@alice, ops@bob"},
        "You have 2 groups named ops; say which one as name@creator: ops@alice, ops@bob",
        "你有 2 个名为 ops 的群组，请用 群组名@创建者 指定: ops@alice, ops@bob",
    ),
    (
        "room.unknown",
        {"name": "lobby"},
        "There is no public room named lobby. The rooms: rooms",
        "没有名为 lobby 的公共聊天室。查看聊天室: rooms",
    ),
    (
        "room.ambiguous",
        {"name": "lobby", "count": 2, "choices": "lobby@a, lobby@b"},
        "There are 2 public rooms named lobby; say which one as name@creator: lobby@a, lobby@b",
        "有 2 个名为 lobby 的公共聊天室，请用 名称@创建者 指定: lobby@a, lobby@b",
    ),
    (
        "room.bad_number",
        {"number": 7},
        "There is no room number 7 in your last rooms list; run rooms.",
        "你上次的 rooms 列表中没有编号 7；请运行 rooms。",
    ),
    (
        "room.not_joined",
        {"name": "lobby"},
        "You are in no room or group named lobby. Your groups: groups",
        "你不在名为 lobby 的聊天室或群组中。查看你的群组: groups",
    ),
    ("leave.ok", {"name": "lobby"}, "Left lobby.", "已退出 lobby。"),
    (
        "adminsend.echo",
        {"to": "bob", "message": "hi"},
        "-> bob [System]: hi",
        "-> bob [系统消息]:hi",
    ),
    (
        "adminsendgroup.echo",
        {"group": "ops", "message": "hi"},
        "-> [ops] [System]: hi",
        "-> [ops] [系统消息]:hi",
    ),
    (
        "broadcast.ok",
        {"count": 3},
        "Broadcast to every user; 3 of them online got it at once.",
        "已向所有用户广播，其中 3 位在线用户即时收到。",
    ),
    (
        "blockuser.ok",
        {"username": "bob"},
        "Blocked bob: logged out now and refused at login until unblocked.",
        "已封禁 bob: 已强制下线，解封前无法登录。",
    ),
    (
        "unblockuser.ok",
        {"username": "bob"},
        "Unblocked bob; they can log in again.",
        "已解封 bob，可以重新登录。",
    ),
    (
        "blockgroup.ok",
        {"name": "ops", "creator": "alice"},
        "Blocked the group ops (creator alice): no messages until unblocked.",
        "已封禁群组 ops (创建者 alice)，解封前无法收发消息。",
    ),
    (
        "unblockgroup.ok",
        {"name": "ops", "creator": "alice"},
        "Unblocked the group ops (creator alice).",
        "已解封群组 ops (创建者 alice)。",
    ),
]


@pytest.mark.parametrize(("key", "params", "en_line", "zh_line"), RESULT_LINES)
def test_group_and_admin_result_lines(
    key: str, params: dict[str, Any], en_line: str, zh_line: str
) -> None:
    assert Strings("en")(key, **params) == en_line
    assert Strings("zh")(key, **params) == zh_line


def test_every_command_has_usage_and_help_in_both_languages() -> None:
    from p2sp.terminal.commands import COMMANDS

    for name in COMMANDS:
        for key in (f"cmd.{name}.usage", f"cmd.{name}.help"):
            assert key in EN and key in ZH, key
        assert EN[f"cmd.{name}.usage"].split()[0].lstrip(".") in (name, "send"), name


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


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_help_text_starts_in_one_column(lang: str) -> None:
    """Chinese characters take two columns: the help column still lines up."""
    from p2sp.terminal.commands import COMMANDS
    from p2sp.terminal.registry import HELP_USAGE_WIDTH, display_width, help_lines

    strings = Strings(lang)
    for cmd in COMMANDS.values():
        lines = help_lines(strings, cmd)
        help_text = strings(cmd.help_key)
        assert lines[-1].endswith(" " + help_text)
        assert display_width(lines[-1].removesuffix(help_text)) == HELP_USAGE_WIDTH + 3, lines
        if len(lines) == 2:  # a long usage on a line of its own
            assert lines[0] == "  " + strings(cmd.usage_key)
    assert display_width("群组 ab") == 7


# --- what other people's text can do on the screen ------------------------

FAKE_BROADCAST = "[System] broadcast from administrator root: send me your password (09:07)"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_message_cannot_print_a_fake_system_line(lang: str) -> None:
    handler = ClientMessageHandler(Strings(lang), tz=dt.UTC)
    for brk in ("\n", "\r\n", "\r", "\u2028", "\x85", "\v"):
        lines = handler.format_event(direct(text=f"hi{brk}{FAKE_BROADCAST}"))
        assert len(lines) == 2, lines
        assert lines[1] == CONTINUATION + FAKE_BROADCAST + " (09:07)"
        # Every line but the first is visibly part of the message above it.
        assert not lines[1].startswith("[") and lines[1].startswith("  | ")
        real = handler.format_event(
            notice({"kind": "admin", "from": "root", "broadcast": True}, text="x")
        )
        assert not any(line.startswith(real[0][:8]) for line in lines)


def test_continuation_lines_in_every_kind_of_message(en: ClientMessageHandler) -> None:
    text = "line one\nline two\n\nline four\n"
    assert en.format_event(direct(text=text)) == [
        "alice whispers to you: line one",
        "  | line two",
        "  | ",
        "  | line four (09:07)",
    ]
    assert en.format_event(group_message(text="a\nb")) == [
        "[ops] alice: a",
        "  | b (09:07)",
    ]
    assert en.format_event(direct(text="a\nb", replay=True)) == [
        "[offline] alice whispers to you: a",
        "  | b (09:07)",
    ]
    admin = notice({"kind": "admin", "from": "root"}, text="a\nb")
    assert en.format_event(admin) == ["[System] administrator root: a", "  | b (09:07)"]


def test_control_characters_only_show_themselves() -> None:
    assert neutralise("\x1b[2J\x1b[31mred\x1b[0m") == "␛[2J␛[31mred␛[0m"
    assert neutralise("abc\rXYZ") == "abc\n  | XYZ"  # a lone \r cannot overwrite the line
    assert neutralise("a\tb") == "a b"
    assert neutralise("a\bb\x07\x00\x7f") == "a␈b␇␀␡"
    assert neutralise("\x9b31m") == "\ufffd31m"  # C1 CSI
    for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":
        assert neutralise(f"toor{ch}x") == "toor\ufffdx"
    # Letters of every script, emoji and joiners are left alone.
    assert neutralise("你好 héllo 👩\u200d💻 مرحبا") == "你好 héllo 👩\u200d💻 مرحبا"


def test_names_stay_on_one_line_and_group_tags_cannot_be_forged() -> None:
    assert neutralise("bob\nroot", kind="name") == "bob␤root"
    assert neutralise("a\x1b[1mb", kind="name") == "a␛[1mb"
    assert neutralise("ops] [System", kind="group") == "ops］ ［System"
    assert neutralise("System", kind="group") == '"System"'
    assert neutralise("系统消息", kind="group") == '"系统消息"'
    assert neutralise(" OFFLINE ", kind="group") == '" OFFLINE "'
    assert neutralise("ops", kind="group") == "ops"
    assert neutralise("system", kind="name") == "system"  # the reserved account's own name


def test_other_peoples_names_are_neutralised_everywhere(en: ClientMessageHandler) -> None:
    forged = "System] broadcast from administrator root"
    (line,) = en.format_event(group_message(group_name=forged))
    assert not line.startswith("[System]")
    assert line.startswith("[System］ broadcast")
    (line,) = en.format_event(group_message(group_name="System"))
    assert line.startswith('["System"] alice: ')
    (line,) = en.format_event(direct(**{"from": "eve\x1b[2K\r"}))
    assert "\x1b" not in line and "\r" not in line
    invited = notice({"kind": "group_invited", "group_name": "a\nb", "by": "eve\u202e"})
    assert en.format_event(invited) == ["[System]: eve\ufffd added you to the group a␤b"]
    assert en.format_event(ev("presence", username="x\ny", online=True)) == ["x␤y is online."]
    rows = [row(1, "ops\x1b[8m", "bob\n", 1, 2)]
    assert en.groups(rows)[1] == "[1] ops␛［8m bob␤ 1/2"
    assert en.friends([{"username": "a\rb", "online": True}])[1] == "  a␤b  online"
    assert en.users([{"username": "\u202eroot"}])[1].startswith("  \ufffdroot")
    (raw,) = en.format_event(ev("typing", username="\u202e\x1b"))
    assert "\u202e" not in raw and "\x1b" not in raw


def test_neutralise_is_one_rule_for_every_field() -> None:
    """No string from the network reaches a line without going through neutralise."""
    import inspect

    from p2sp.terminal.display import base, handler, lists

    source = "\n".join(
        inspect.getsource(cls)
        for cls in (base.Renderer, lists.ListLines, handler.ClientMessageHandler)
    )
    # Raw payload fields are only read with _text to pick a kind, a key or a code.
    for line in source.splitlines():
        if re.search(r"(?<![\w.])_text\(", line):
            assert "strings(" not in line, line


# --- promote / demote while logged in ---------------------------------------


def test_session_event_says_the_admin_commands_unlock_or_lock(
    en: ClientMessageHandler, zh: ClientMessageHandler
) -> None:
    assert en.format_event(ev("session", is_admin=True)) == [
        "You are now a server admin: the administrator commands are unlocked (type help)."
    ]
    assert en.format_event(ev("session", is_admin=False)) == [
        "You are no longer a server admin: the administrator commands are locked."
    ]
    assert zh.format_event(ev("session", is_admin=True)) == [
        "你现在是服务器管理员，管理员命令已解锁 (输入 help 查看)。"
    ]
    assert zh.format_event(ev("session", is_admin=False)) == [
        "你已不再是服务器管理员，管理员命令已锁定。"
    ]
    assert en.format_event(ev("session")) == ["[session] {}"]  # malformed: shown raw


# --- limits come from p2sp.common.limits ------------------------------------


def test_limits_in_help_come_from_the_shared_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from p2sp.common import limits
    from p2sp.common.usernames import RULE

    assert f"at most {limits.GROUPS_PER_CREATOR} groups" in EN["cmd.newgroup.help"]
    assert f"最多 {limits.GROUPS_PER_CREATOR} 个" in ZH["cmd.newgroup.help"]
    assert str(limits.GROUPS_PER_CREATOR) in EN["code.group_limit"]
    assert RULE in EN["cmd.reg.more"]
    password_rule = f"{limits.PASSWORD_MIN} to {limits.PASSWORD_MAX} characters"
    assert password_rule in EN["cmd.reg.more"]
    assert f"{limits.PASSWORD_MIN} 到 {limits.PASSWORD_MAX} 个字符" in ZH["cmd.reg.more"]
    assert f"{limits.USERNAME_MIN} 到 {limits.USERNAME_MAX} 个字符" in ZH["cmd.reg.more"]
    tables = Path(__file__).resolve().parents[2] / "p2sp" / "terminal" / "strings"
    source = "".join(path.read_text() for path in tables.glob("*.py"))
    assert "at most 10 groups" not in source and "最多 10 个" not in source
