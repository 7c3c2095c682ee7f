"""The protocol's codes and the SDK's reasons, in words, in both languages.

Every code of docs/protocol.md (a refusal, a framing error, a kick reason) has
a ``code.<code>`` sentence in both tables; a unit test reads the codes from
docs/protocol.md and checks. ``reason.<code>``: the reasons only the SDK gives
for a dropped connection.
"""

from __future__ import annotations

from typing import Final

from p2sp.common.limits import (
    GROUPS_PER_CREATOR,
    PASSWORD_MAX,
    PASSWORD_MIN,
)

EN_CODES: Final[dict[str, str]] = {
    # --- the protocol's codes (docs/protocol.md), as words ----------------
    # refusals of requests
    "code.user_exists": "this name cannot be registered",
    "code.weak_password": f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters",
    "code.no_such_user": "there is no user of that name",
    "code.bad_password": "wrong password",
    "code.user_blocked": "this account is blocked by an administrator",
    "code.rate_limited": "too many attempts; try again in {seconds} s",
    "code.rate_limited_later": "too many attempts; try again in a moment",
    "code.not_friends": "you are not friends yet; add them first (add <username>)",
    "code.already_friends": "you are friends already",
    "code.cannot_add_self": "you cannot add yourself as a friend",
    "code.cannot_send_to_self": "you cannot send a message to yourself",
    "code.group_exists": "you already have a group of that name",
    "code.group_limit": (
        f"you already have {GROUPS_PER_CREATOR} groups, the most one user may create;"
        " delete one first"
    ),
    "code.no_such_group": "there is no such group",
    "code.not_permitted": "you are not allowed to do that",
    "code.already_member": "already a member of that group",
    "code.group_full": "the group is full",
    "code.not_member": "not a member of that group",
    "code.cannot_kick_self": "you cannot remove yourself from a group; use leave",
    "code.group_blocked": "the group is blocked by an administrator",
    "code.no_such_conversation": "there is no such conversation among yours",
    "code.no_such_message": "there is no such message, or you cannot see it",
    "code.edit_window_passed": "it is too late to edit that message",
    "code.retract_window_passed": "it is too late to retract that message",
    "code.message_retracted": "that message has been retracted",
    "code.invalid_request": "the server refused the request",
    "code.unknown_action": "the server does not know this request (an older server?)",
    "code.not_authenticated": "you are not logged in; log in first",
    "code.internal_error": "the server failed; try again later",
    "code.connection_closed": "the server closed the connection",
    "code.unknown_error": "the server refused the request",
    # framing errors: the connection is closed
    "code.bad_magic": "data that is not p2sp went over the connection",
    "code.bad_checksum": "corrupted data went over the connection",
    "code.bad_length": "an oversized message went over the connection",
    "code.bad_payload": "unreadable data went over the connection",
    "code.idle_timeout": "the connection was idle for too long",
    # kick reasons
    "code.logged_in_elsewhere": "logged in somewhere else",
    "code.blocked": "account blocked",
    "code.slow_consumer": "too many undelivered messages",
    "code.shutdown": "the server is shutting down",
    # --- reasons only the SDK gives for a dropped connection -------------
    "reason.connection_error": "network error",
    "reason.ping_timeout": "the server stopped answering",
    "reason.relogin_timeout": "the server did not answer the login",
    "reason.client_closed": "closed by you",
    "reason.client_error": "an internal error of the client",
}

ZH_CODES: Final[dict[str, str]] = {
    # --- the protocol's codes (docs/protocol.md), as words ----------------
    "code.user_exists": "这个用户名不能注册",
    "code.weak_password": f"密码须为 {PASSWORD_MIN} 到 {PASSWORD_MAX} 个字符",
    "code.no_such_user": "没有这个用户",
    "code.bad_password": "密码错误",
    "code.user_blocked": "该账号已被管理员封禁",
    "code.rate_limited": "尝试次数过多，请 {seconds} 秒后再试",
    "code.rate_limited_later": "尝试次数过多，请稍后再试",
    "code.not_friends": "你们还不是好友，请先添加好友 (add <用户名>)",
    "code.already_friends": "你们已经是好友了",
    "code.cannot_add_self": "不能添加自己为好友",
    "code.cannot_send_to_self": "不能给自己发消息",
    "code.group_exists": "你已经有一个同名的群组",
    "code.group_limit": f"每人最多创建 {GROUPS_PER_CREATOR} 个群组，你已达到上限，请先解散一个",
    "code.no_such_group": "没有这个群组",
    "code.not_permitted": "你没有权限执行此操作",
    "code.already_member": "已经是该群组的成员",
    "code.group_full": "群组人数已满",
    "code.not_member": "不是该群组的成员",
    "code.cannot_kick_self": "不能将自己移出群组，请使用 leave",
    "code.group_blocked": "该群组已被管理员封禁",
    "code.no_such_conversation": "你没有这个会话",
    "code.no_such_message": "没有这条消息，或你无权查看",
    "code.edit_window_passed": "已超过可以编辑这条消息的时间",
    "code.retract_window_passed": "已超过可以撤回这条消息的时间",
    "code.message_retracted": "这条消息已被撤回",
    "code.invalid_request": "服务器拒绝了这个请求",
    "code.unknown_action": "服务器不认识这个请求 (服务器版本较旧？)",
    "code.not_authenticated": "你还没有登录，请先登录",
    "code.internal_error": "服务器内部出错，请稍后再试",
    "code.connection_closed": "服务器关闭了连接",
    "code.unknown_error": "服务器拒绝了这个请求",
    "code.bad_magic": "连接上出现了不是 p2sp 协议的数据",
    "code.bad_checksum": "连接上的数据校验失败",
    "code.bad_length": "连接上的消息过长",
    "code.bad_payload": "连接上的数据无法解析",
    "code.idle_timeout": "连接空闲时间过长",
    "code.logged_in_elsewhere": "账号在别处登录",
    "code.blocked": "账号被封禁",
    "code.slow_consumer": "未送达的消息过多",
    "code.shutdown": "服务器正在关闭",
    # --- reasons only the SDK gives for a dropped connection -------------
    "reason.connection_error": "网络错误",
    "reason.ping_timeout": "服务器无响应",
    "reason.relogin_timeout": "服务器未应答登录请求",
    "reason.client_closed": "由你关闭",
    "reason.client_error": "客户端内部错误",
}
