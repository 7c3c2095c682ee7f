"""Every string the terminal client shows a person, in English and Chinese.

One flat table per language, keyed by a dotted message id, with
``str.format`` placeholders. Keeping them here (and nowhere else) means a
translation is one file, a wording change is one line, and tests can check
that the tables agree. A new display format (a whisper, a system message, a
group line ...) is just another key in both tables.

Naming: ``cmd.<name>.usage`` / ``cmd.<name>.help`` describe commands,
``event.<type>...`` render server pushes, ``message.<kind>`` render chat
messages, ``notice.<kind>`` render system notices from their ``notice``
object (docs/protocol.md, "Events"), ``code.<code>`` put every code of the
protocol (a refusal, a framing error, a kick reason) into words,
``reason.<code>`` the reasons only this client's SDK gives for a dropped
connection, ``check.*`` the rules the client checks before it sends
anything, ``error.*`` report failures.

Limits (name lengths, the password rule, the group limit ...) are read from
``p2sp.common.limits`` and ``p2sp.common.usernames``, never written out here,
so a limit changed there changes every sentence that states it.

The language is ``--lang`` if given, else the locale (``LC_ALL``, then
``LC_MESSAGES``, then ``LANG``, the POSIX precedence: the first one set
wins; a value starting with ``zh`` means Chinese), else English. A key
missing in Chinese falls back to English; a key missing everywhere shows the
key itself, so a gap in a table is visible but never crashes the client.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from typing import Any, Final

from p2sp.common.limits import (
    GROUP_NAME_MAX,
    GROUPS_PER_CREATOR,
    PASSWORD_MAX,
    PASSWORD_MIN,
    USERNAME_MAX,
    USERNAME_MIN,
)
from p2sp.common.usernames import RULE as USERNAME_RULE

DEFAULT_LANGUAGE: Final = "en"
LANGUAGES: Final = ("en", "zh")
_LOCALE_VARS: Final = ("LC_ALL", "LC_MESSAGES", "LANG")

EN: Final[dict[str, str]] = {
    # --- program ---------------------------------------------------------
    "app.description": "p2sp terminal chat client",
    "app.arg_host": "server host (default: %(default)s)",
    "app.arg_port": "server port (default: %(default)s)",
    "app.arg_lang": "language of the client: en or zh (default: from the locale)",
    "app.arg_verbose": "log connection details to stderr",
    "app.banner": "Connected to {host}:{port}. Type help for the list of commands.",
    "app.connect_failed": "Cannot connect to {host}:{port}: {error}",
    "app.bye": "Bye.",
    "prompt.anonymous": "> ",
    "prompt.user": "{username}> ",
    "prompt.password": "Password: ",
    "prompt.password_again": "Password (again): ",
    # --- commands --------------------------------------------------------
    "cmd.reg.usage": "reg <username>",
    "cmd.reg.help": "create an account (asks for the password twice; help reg: the rules)",
    "cmd.reg.more": (
        f"A user name has {USERNAME_RULE}.\n"
        f"A password has {PASSWORD_MIN} to {PASSWORD_MAX} characters; it is asked twice, hidden."
    ),
    "cmd.login.usage": "login <username> [password]",
    "cmd.login.help": "log in (asks for the password, hidden, if it is not given)",
    "cmd.login.more": (
        "Type login <username> alone: the password is then asked without being shown,\n"
        "and never kept in the input history (a password typed on the line is left out\n"
        "of the history too)."
    ),
    "cmd.logout.usage": "logout",
    "cmd.logout.help": "log out",
    "cmd.add.usage": "add <username>",
    "cmd.add.help": "add a friend",
    "cmd.friends.usage": "friends",
    "cmd.friends.help": "list your friends and who is online",
    "cmd.send.usage": ".send <username> <message>",
    "cmd.send.help": "send a private message to a friend (also: /msg <username> <message>)",
    "cmd.newgroup.usage": "newgroup <groupname>",
    "cmd.newgroup.help": (
        f"create a group; you are its owner (at most {GROUPS_PER_CREATOR} groups)"
    ),
    "cmd.newgroup.more": (
        f"A group name has 1 to {GROUP_NAME_MAX} characters, spaces allowed;"
        " no line breaks or other control characters."
    ),
    "cmd.delgroup.usage": "delgroup <groupname>",
    "cmd.delgroup.help": "delete a group you own; its members are told",
    "cmd.addgroupuser.usage": "addgroupuser <groupname> <username>",
    "cmd.addgroupuser.help": "add a user to a group (its owner or a group admin)",
    "cmd.delgroupuser.usage": "delgroupuser <groupname> <username>",
    "cmd.delgroupuser.help": "remove a member from a group (its owner or a group admin)",
    "cmd.setgrouprole.usage": "setgrouprole <groupname> <username> admin|member",
    "cmd.setgrouprole.help": "make a member a group admin, or a plain member again (owner)",
    "cmd.groups.usage": "groups",
    "cmd.groups.help": "your groups: [n] name creator online/total (n is for sendgroup)",
    "cmd.sendgroup.usage": "sendgroup <n> <message>",
    "cmd.sendgroup.help": "send to group number n of your last groups list",
    "cmd.rooms.usage": "rooms",
    "cmd.rooms.help": "the public chat rooms: [n] name creator online/total",
    "cmd.join.usage": "join <room>",
    "cmd.join.help": "join a public room: its number in your last rooms list, or its name",
    "cmd.leave.usage": "leave <room>",
    "cmd.leave.help": "leave a room or group: its number in your last rooms list, or its name",
    "cmd.allusers.usage": "allusers [--online]",
    "cmd.allusers.help": "every user (only those online with --online): blocked? online?",
    "cmd.allgroup.usage": "allgroup",
    "cmd.allgroup.help": "every group on the server, as groups shows them",
    "cmd.adminsend.usage": "adminsend <username> <message>",
    "cmd.adminsend.help": "a system message to one user",
    "cmd.adminsendgroup.usage": "adminsendgroup <groupname> <creator> <message>",
    "cmd.adminsendgroup.help": 'a system message to a group ("quote" a name with spaces)',
    "cmd.broadcast.usage": "broadcast <message>",
    "cmd.broadcast.help": "a system message to every user",
    "cmd.blockuser.usage": "blockuser <username>",
    "cmd.blockuser.help": "block an account: logged out at once, no logins until unblocked",
    "cmd.unblockuser.usage": "unblockuser <username>",
    "cmd.unblockuser.help": "let a blocked account log in again",
    "cmd.blockgroup.usage": "blockgroup <groupname> <creator>",
    "cmd.blockgroup.help": "block a group: no messages until unblocked",
    "cmd.unblockgroup.usage": "unblockgroup <groupname> <creator>",
    "cmd.unblockgroup.help": "let a blocked group talk again",
    "cmd.help.usage": "help [command]",
    "cmd.help.help": "show this list, or more about one command",
    "cmd.quit.usage": "quit",
    "cmd.quit.help": "leave the client (also: exit, Ctrl-D, Ctrl-C on an empty line)",
    "help.title": "Commands:",
    "help.admin_title": "Administrator commands:",
    "help.line": "  {usage} {help}",
    "help.more": "    {line}",
    "help.ways_out": (
        "To leave: quit or exit, Ctrl-D, or Ctrl-C (Ctrl-C first clears a half-typed line)."
    ),
    "command.unknown": "Unknown command: {name}. Type help to see the commands.",
    "command.usage": "Usage: {usage}",
    "command.admin_only": "{name} is only for administrators.",
    # --- command results -------------------------------------------------
    "reg.ok": "Registered {username} (user id {user_id}). Log in with: login {username}",
    "reg.mismatch": "The two passwords do not match; nothing was registered.",
    "reg.cancelled": "Registration cancelled.",
    "check.username.length": (
        "A user name has {min} to {max} characters; {name} has {count}. Nothing was sent."
    ),
    "check.username.char": (
        "{char} cannot be part of a user name: use letters, digits, '_', '.' or '-'."
        " Nothing was sent."
    ),
    "check.username.scripts": (
        "{name} mixes {scripts} letters: names that mix scripts are refused, because they"
        " can look like someone else's. Nothing was sent."
    ),
    "check.username.other": "{name} cannot be a user name ({reason}). Nothing was sent.",
    "check.password.length": (
        "A password has {min} to {max} characters; this one has {count}. Nothing was sent."
    ),
    "check.group.length": (
        "A group name has at most {max} characters; this one has {count}. Nothing was sent."
    ),
    "check.group.control": (
        "A group name cannot contain line breaks, tabs or other control characters."
        " Nothing was sent."
    ),
    "check.list_separator": ", ",
    "check.list_last": " and ",
    "script.latin": "Latin",
    "script.cyrillic": "Cyrillic",
    "script.greek": "Greek",
    "script.armenian": "Armenian",
    "script.han": "Han (Chinese)",
    "script.hiragana": "Hiragana",
    "script.katakana": "Katakana",
    "script.hangul": "Hangul",
    "script.bopomofo": "Bopomofo",
    "script.arabic": "Arabic",
    "script.hebrew": "Hebrew",
    "script.thai": "Thai",
    "login.welcome_admin": "Welcome, {username}! You are logged in as an administrator.",
    "login.welcome_user": "Welcome, {username}! You are logged in.",
    "login.admin_hint": "Administrator commands are now available; type help to see them.",
    "login.cancelled": "Login cancelled.",
    "logout.ok": "Logged out.",
    "add.ok.online": "{username} is now your friend (online).",
    "add.ok.offline": "{username} is now your friend (offline).",
    "friends.title": "Friends ({count}):",
    "friends.none": "You have no friends yet. Add one with: add <username>",
    "friends.online": "  {username}  online",
    "friends.offline": "  {username}  offline",
    "friends.offline_seen": "  {username}  offline (last seen {last_seen})",
    "send.echo": "-> {to}: {message}",
    # --- groups and rooms ------------------------------------------------
    "newgroup.ok": (
        "Created the group {name}; you are its owner. Add members with: "
        "addgroupuser {name} <username>"
    ),
    "delgroup.ok": "Deleted the group {name}.",
    "addgroupuser.ok": "Added {username} to {group}.",
    "delgroupuser.ok": "Removed {username} from {group}.",
    "setgrouprole.admin": "{username} is now an admin of {group}.",
    "setgrouprole.member": "{username} is now a plain member of {group}.",
    "groups.title": "Your groups ({count}):",
    "groups.none": "You are in no group yet. Create one with: newgroup <groupname>",
    "groups.line": "[{number}] {name} {creator} {online}/{total}{marks}",
    "groups.marks": "  ({marks})",
    "groups.mark_separator": ", ",
    "groups.mark.owner": "owner",
    "groups.mark.admin": "group admin",
    "groups.mark.public": "public room",
    "groups.mark.joined": "joined",
    "groups.mark.blocked": "blocked",
    "groups.hint": "Send to one with: sendgroup <n> <message>",
    "rooms.title": "Public rooms ({count}):",
    "rooms.none": "There are no public rooms.",
    "rooms.hint": "Join one with: join <n>",
    "allgroup.title": "All groups ({count}):",
    "allgroup.none": "There are no groups yet.",
    "sendgroup.echo": "-> [{group}]: {message}",
    "sendgroup.not_listed": "Run groups first: sendgroup takes a number from the groups list.",
    "sendgroup.empty": "Your last groups list was empty; create or join a group, then run groups.",
    "sendgroup.bad_number": (
        "There is no group number {number}: your last groups list goes from 1 to {count}."
    ),
    "group.unknown": "You have no group named {name}. Your groups: groups",
    "group.ambiguous": (
        "You have {count} groups named {name}; say which one as name@creator: {choices}"
    ),
    "room.unknown": "There is no public room named {name}. The rooms: rooms",
    "room.ambiguous": (
        "There are {count} public rooms named {name}; say which one as name@creator: {choices}"
    ),
    "room.bad_number": "There is no room number {number} in your last rooms list; run rooms.",
    "room.not_joined": "You are in no room or group named {name}. Your groups: groups",
    "join.ok": (
        "Joined {name} ({online}/{total} online). Run groups to get its number for sendgroup."
    ),
    "leave.ok": "Left {name}.",
    # --- administration --------------------------------------------------
    "users.title": "Users ({count}):",
    "users.title_online": "Online users ({count}):",
    "users.none": "There are no users.",
    "users.none_online": "Nobody is online.",
    "users.line": "  {username}  {presence}  {status}{admin}",
    "users.online": "online",
    "users.offline": "offline",
    "users.offline_seen": "offline (last seen {last_seen})",
    "users.active": "active",
    "users.blocked": "blocked",
    "users.admin": "  [admin]",
    "adminsend.echo": "-> {to} [System]: {message}",
    "adminsendgroup.echo": "-> [{group}] [System]: {message}",
    "broadcast.ok": "Broadcast to every user; {count} of them online got it at once.",
    "blockuser.ok": "Blocked {username}: logged out now and refused at login until unblocked.",
    "unblockuser.ok": "Unblocked {username}; they can log in again.",
    "blockgroup.ok": "Blocked the group {name} (creator {creator}): no messages until unblocked.",
    "unblockgroup.ok": "Unblocked the group {name} (creator {creator}).",
    # --- errors ----------------------------------------------------------
    "error.request": "Failed: {message} ({code})",
    "error.request_detail": "Failed: {message}: {detail} ({code})",
    "error.connection_lost": (
        "The connection to the server was lost before it answered; try again in a moment."
    ),
    "error.not_connected": "Not connected to the server; reconnecting, try again in a moment.",
    "error.timeout": "The server did not answer in time; try again.",
    "error.other": "Error: {message}",
    # --- events ----------------------------------------------------------
    "event.kicked.logged_in_elsewhere": (
        "You have been logged out: your account just logged in somewhere else."
    ),
    "event.kicked.blocked": (
        "Your account has been blocked by an administrator: you are logged out and cannot "
        "log in until an administrator unblocks it."
    ),
    "event.kicked.slow_consumer": (
        "The server disconnected you because messages piled up faster than they could be "
        "delivered. Nothing is lost: they wait for your next login."
    ),
    "event.kicked.shutdown": "The server is shutting down.",
    "event.kicked.other": "The server disconnected you ({reason}).",
    "event.error": "The server closed the connection: {message} ({code})",
    "event.session.admin": (
        "You are now a server admin: the administrator commands are unlocked (type help)."
    ),
    "event.session.user": (
        "You are no longer a server admin: the administrator commands are locked."
    ),
    "message.direct": "{sender} whispers to you: {message} ({time})",
    "message.system": "[System]: {message}",
    "message.group": "[{group}] {sender}: {message} ({time})",
    "message.group_system": "[System] [{group}] administrator {sender}: {message} ({time})",
    "message.group_system_anonymous": "[System] [{group}]: {message} ({time})",
    "message.admin": "[System] administrator {sender}: {message} ({time})",
    "message.admin_broadcast": (
        "[System] broadcast from administrator {sender}: {message} ({time})"
    ),
    "message.replayed": "[offline] {line}",
    "notice.friend_added": "{username} added you as a friend",
    "notice.group_invited": "{by} added you to the group {group_name}",
    "notice.group_removed": "{by} removed you from the group {group_name}",
    "notice.group_deleted": "{by} deleted the group {group_name}",
    "notice.group_blocked": (
        "The group {group_name} has been blocked by an administrator: "
        "no messages until it is unblocked"
    ),
    "notice.group_unblocked": "The group {group_name} has been unblocked by an administrator",
    "event.presence.online": "{username} is online.",
    "event.presence.offline": "{username} is offline.",
    "event.sync_done": "{count} offline message(s) delivered.",
    "event.disconnected.reconnecting": "Connection to the server lost ({reason}); reconnecting...",
    "event.disconnected.final": (
        "Disconnected from the server ({reason}). Your next command connects again."
    ),
    "event.disconnected.closed": "Disconnected.",
    "event.reconnected.relogged": "Reconnected; logged in again as {username}.",
    "event.reconnected.plain": "Reconnected to the server.",
    "event.reconnected.relogin_failed": (
        "Reconnected, but logging in again failed: {message} ({code})."
    ),
    "event.unknown": "[{type}] {payload}",
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

ZH: Final[dict[str, str]] = {
    # --- program ---------------------------------------------------------
    "app.description": "p2sp 终端聊天客户端",
    "app.arg_host": "服务器地址 (默认: %(default)s)",
    "app.arg_port": "服务器端口 (默认: %(default)s)",
    "app.arg_lang": "界面语言: en 或 zh (默认: 跟随系统语言环境)",
    "app.arg_verbose": "在标准错误输出连接细节",
    "app.banner": "已连接到 {host}:{port}。输入 help 查看命令列表。",
    "app.connect_failed": "无法连接到 {host}:{port}: {error}",
    "app.bye": "再见。",
    "prompt.anonymous": "> ",
    "prompt.user": "{username}> ",
    "prompt.password": "密码: ",
    "prompt.password_again": "再次输入密码: ",
    # --- commands --------------------------------------------------------
    "cmd.reg.usage": "reg <用户名>",
    "cmd.reg.help": "注册账号 (需要输入两次密码；help reg 查看规则)",
    "cmd.reg.more": (
        f"用户名为 {USERNAME_MIN} 到 {USERNAME_MAX} 个字符: 同一种文字的字母、数字、"
        "'_'、'.' 或 '-'。\n"
        f"密码为 {PASSWORD_MIN} 到 {PASSWORD_MAX} 个字符，隐藏输入两次。"
    ),
    "cmd.login.usage": "login <用户名> [密码]",
    "cmd.login.help": "登录 (未给出密码时会隐藏提示输入)",
    "cmd.login.more": (
        "只输入 login <用户名>，密码会隐藏输入，且不会留在输入历史中\n"
        "(直接写在命令行上的密码也不会被记入历史)。"
    ),
    "cmd.logout.usage": "logout",
    "cmd.logout.help": "退出登录",
    "cmd.add.usage": "add <用户名>",
    "cmd.add.help": "添加好友",
    "cmd.friends.usage": "friends",
    "cmd.friends.help": "查看好友列表及在线状态",
    "cmd.send.usage": ".send <用户名> <消息>",
    "cmd.send.help": "给好友发私聊消息 (也可用: /msg <用户名> <消息>)",
    "cmd.newgroup.usage": "newgroup <群组名>",
    "cmd.newgroup.help": f"创建群组，你是群主 (最多 {GROUPS_PER_CREATOR} 个)",
    "cmd.newgroup.more": f"群组名为 1 到 {GROUP_NAME_MAX} 个字符，可含空格，不能含换行等控制字符。",
    "cmd.delgroup.usage": "delgroup <群组名>",
    "cmd.delgroup.help": "解散你创建的群组，并通知所有成员",
    "cmd.addgroupuser.usage": "addgroupuser <群组名> <用户名>",
    "cmd.addgroupuser.help": "邀请用户入群 (群主或群管理员)",
    "cmd.delgroupuser.usage": "delgroupuser <群组名> <用户名>",
    "cmd.delgroupuser.help": "将成员踢出群组 (群主或群管理员)",
    "cmd.setgrouprole.usage": "setgrouprole <群组名> <用户名> admin|member",
    "cmd.setgrouprole.help": "设为群管理员 (admin) 或普通成员 (member) (仅群主)",
    "cmd.groups.usage": "groups",
    "cmd.groups.help": "你的群组: [编号] 群组名 创建者 在线/总人数 (编号用于 sendgroup)",
    "cmd.sendgroup.usage": "sendgroup <编号> <消息>",
    "cmd.sendgroup.help": "向最近一次 groups 列表中第 <编号> 个群组发消息",
    "cmd.rooms.usage": "rooms",
    "cmd.rooms.help": "公共聊天室: [编号] 名称 创建者 在线/总人数",
    "cmd.join.usage": "join <聊天室>",
    "cmd.join.help": "加入公共聊天室: 最近一次 rooms 列表中的编号，或名称",
    "cmd.leave.usage": "leave <聊天室>",
    "cmd.leave.help": "退出聊天室或群组: 最近一次 rooms 列表中的编号，或名称",
    "cmd.allusers.usage": "allusers [--online]",
    "cmd.allusers.help": "所有用户及状态 (正常/封禁, 在线/离线)；--online 只列在线用户",
    "cmd.allgroup.usage": "allgroup",
    "cmd.allgroup.help": "服务器上的所有群组，格式同 groups",
    "cmd.adminsend.usage": "adminsend <用户名> <消息>",
    "cmd.adminsend.help": "给一个用户发系统消息",
    "cmd.adminsendgroup.usage": "adminsendgroup <群组名> <创建者> <消息>",
    "cmd.adminsendgroup.help": '给一个群组发系统消息 (含空格的群组名请加 "引号")',
    "cmd.broadcast.usage": "broadcast <消息>",
    "cmd.broadcast.help": "给所有用户发系统消息",
    "cmd.blockuser.usage": "blockuser <用户名>",
    "cmd.blockuser.help": "封禁用户: 立即下线，解封前无法登录",
    "cmd.unblockuser.usage": "unblockuser <用户名>",
    "cmd.unblockuser.help": "解封用户",
    "cmd.blockgroup.usage": "blockgroup <群组名> <创建者>",
    "cmd.blockgroup.help": "封禁群组: 解封前无法收发消息",
    "cmd.unblockgroup.usage": "unblockgroup <群组名> <创建者>",
    "cmd.unblockgroup.help": "解封群组",
    "cmd.help.usage": "help [命令]",
    "cmd.help.help": "显示本列表，或某个命令的详细说明",
    "cmd.quit.usage": "quit",
    "cmd.quit.help": "退出客户端 (也可用 exit、Ctrl-D，或在空行按 Ctrl-C)",
    "help.title": "命令:",
    "help.admin_title": "管理员命令:",
    "help.line": "  {usage} {help}",
    "help.more": "    {line}",
    "help.ways_out": "退出: quit 或 exit、Ctrl-D，或 Ctrl-C (输入了一半的行先被 Ctrl-C 清空)。",
    "command.unknown": "未知命令: {name}。输入 help 查看所有命令。",
    "command.usage": "用法: {usage}",
    "command.admin_only": "{name} 仅限管理员使用。",
    # --- command results -------------------------------------------------
    "reg.ok": "注册成功: {username} (用户ID {user_id})。登录: login {username}",
    "reg.mismatch": "两次输入的密码不一致，未注册。",
    "reg.cancelled": "已取消注册。",
    "check.username.length": "用户名须为 {min} 到 {max} 个字符，{name} 有 {count} 个。未发送。",
    "check.username.char": "用户名中不能有 {char}: 只能使用字母、数字、'_'、'.' 或 '-'。未发送。",
    "check.username.scripts": (
        "{name} 混用了{scripts}字母: 混用多种文字的用户名容易被误认为他人，因此不能注册。未发送。"
    ),
    "check.username.other": "{name} 不能用作用户名 ({reason})。未发送。",
    "check.password.length": "密码须为 {min} 到 {max} 个字符，这个有 {count} 个。未发送。",
    "check.group.length": "群组名最多 {max} 个字符，这个有 {count} 个。未发送。",
    "check.group.control": "群组名不能包含换行、制表符等控制字符。未发送。",
    "check.list_separator": "、",
    "check.list_last": "和",
    "script.latin": "拉丁",
    "script.cyrillic": "西里尔",
    "script.greek": "希腊",
    "script.armenian": "亚美尼亚",
    "script.han": "汉字",
    "script.hiragana": "平假名",
    "script.katakana": "片假名",
    "script.hangul": "韩文",
    "script.bopomofo": "注音",
    "script.arabic": "阿拉伯",
    "script.hebrew": "希伯来",
    "script.thai": "泰文",
    "login.welcome_admin": "欢迎，{username}！你已以管理员身份登录。",
    "login.welcome_user": "欢迎，{username}！登录成功。",
    "login.admin_hint": "管理员命令已解锁，输入 help 查看。",
    "login.cancelled": "已取消登录。",
    "logout.ok": "已退出登录。",
    "add.ok.online": "已添加 {username} 为好友 (在线)。",
    "add.ok.offline": "已添加 {username} 为好友 (离线)。",
    "friends.title": "好友 ({count}):",
    "friends.none": "还没有好友。添加好友: add <用户名>",
    "friends.online": "  {username}  在线",
    "friends.offline": "  {username}  离线",
    "friends.offline_seen": "  {username}  离线 (最后在线 {last_seen})",
    "send.echo": "-> {to}: {message}",
    # --- groups and rooms ------------------------------------------------
    "newgroup.ok": "已创建群组 {name}，你是群主。邀请成员: addgroupuser {name} <用户名>",
    "delgroup.ok": "已解散群组 {name}。",
    "addgroupuser.ok": "已将 {username} 加入群组 {group}。",
    "delgroupuser.ok": "已将 {username} 移出群组 {group}。",
    "setgrouprole.admin": "{username} 现在是群组 {group} 的管理员。",
    "setgrouprole.member": "{username} 现在是群组 {group} 的普通成员。",
    "groups.title": "你的群组 ({count}):",
    "groups.none": "你还没有加入任何群组。创建群组: newgroup <群组名>",
    "groups.line": "[{number}] {name} {creator} {online}/{total}{marks}",
    "groups.marks": "  ({marks})",
    "groups.mark_separator": "，",
    "groups.mark.owner": "群主",
    "groups.mark.admin": "群管理员",
    "groups.mark.public": "公共聊天室",
    "groups.mark.joined": "已加入",
    "groups.mark.blocked": "已封禁",
    "groups.hint": "发送群消息: sendgroup <编号> <消息>",
    "rooms.title": "公共聊天室 ({count}):",
    "rooms.none": "没有公共聊天室。",
    "rooms.hint": "加入聊天室: join <编号>",
    "allgroup.title": "所有群组 ({count}):",
    "allgroup.none": "还没有任何群组。",
    "sendgroup.echo": "-> [{group}]: {message}",
    "sendgroup.not_listed": "请先运行 groups: sendgroup 使用 groups 列表中的编号。",
    "sendgroup.empty": "你上次的 groups 列表是空的；请先创建或加入群组，再运行 groups。",
    "sendgroup.bad_number": "没有编号为 {number} 的群组: 你上次的 groups 列表编号为 1 到 {count}。",
    "group.unknown": "你没有名为 {name} 的群组。查看你的群组: groups",
    "group.ambiguous": "你有 {count} 个名为 {name} 的群组，请用 群组名@创建者 指定: {choices}",
    "room.unknown": "没有名为 {name} 的公共聊天室。查看聊天室: rooms",
    "room.ambiguous": "有 {count} 个名为 {name} 的公共聊天室，请用 名称@创建者 指定: {choices}",
    "room.bad_number": "你上次的 rooms 列表中没有编号 {number}；请运行 rooms。",
    "room.not_joined": "你不在名为 {name} 的聊天室或群组中。查看你的群组: groups",
    "join.ok": "已加入 {name} ({online}/{total} 在线)。运行 groups 查看它的编号 (用于 sendgroup)。",
    "leave.ok": "已退出 {name}。",
    # --- administration --------------------------------------------------
    "users.title": "所有用户 ({count}):",
    "users.title_online": "在线用户 ({count}):",
    "users.none": "没有任何用户。",
    "users.none_online": "没有在线用户。",
    "users.line": "  {username}  {presence}  {status}{admin}",
    "users.online": "在线",
    "users.offline": "离线",
    "users.offline_seen": "离线 (最后在线 {last_seen})",
    "users.active": "正常",
    "users.blocked": "封禁",
    "users.admin": "  [管理员]",
    "adminsend.echo": "-> {to} [系统消息]:{message}",
    "adminsendgroup.echo": "-> [{group}] [系统消息]:{message}",
    "broadcast.ok": "已向所有用户广播，其中 {count} 位在线用户即时收到。",
    "blockuser.ok": "已封禁 {username}: 已强制下线，解封前无法登录。",
    "unblockuser.ok": "已解封 {username}，可以重新登录。",
    "blockgroup.ok": "已封禁群组 {name} (创建者 {creator})，解封前无法收发消息。",
    "unblockgroup.ok": "已解封群组 {name} (创建者 {creator})。",
    # --- errors ----------------------------------------------------------
    "error.request": "失败: {message} ({code})",
    "error.request_detail": "失败: {message}: {detail} ({code})",
    "error.connection_lost": "服务器应答前连接已断开，请稍后重试。",
    "error.not_connected": "未连接到服务器，正在重新连接，请稍后重试。",
    "error.timeout": "服务器未及时应答，请重试。",
    "error.other": "错误: {message}",
    # --- events ----------------------------------------------------------
    "event.kicked.logged_in_elsewhere": "你已被强制下线: 你的账号刚刚在别处登录。",
    "event.kicked.blocked": "你的账号已被管理员封禁，已被强制下线；管理员解封前无法登录。",
    "event.kicked.slow_consumer": (
        "消息堆积过多，服务器断开了你的连接。消息不会丢失，下次登录时会送达。"
    ),
    "event.kicked.shutdown": "服务器正在关闭。",
    "event.kicked.other": "服务器断开了你的连接 ({reason})。",
    "event.error": "服务器关闭了连接: {message} ({code})",
    "event.session.admin": "你现在是服务器管理员，管理员命令已解锁 (输入 help 查看)。",
    "event.session.user": "你已不再是服务器管理员，管理员命令已锁定。",
    "message.direct": "{sender}悄悄对你说:{message} ({time})",
    "message.system": "[系统消息]:{message}",
    "message.group": "[{group}] {sender}:{message} ({time})",
    "message.group_system": "[系统消息] [{group}] 管理员 {sender}:{message} ({time})",
    "message.group_system_anonymous": "[系统消息] [{group}]:{message} ({time})",
    "message.admin": "[系统消息] 管理员 {sender}:{message} ({time})",
    "message.admin_broadcast": "[系统消息] 管理员 {sender} 广播:{message} ({time})",
    "message.replayed": "[离线消息] {line}",
    "notice.friend_added": "{username} 已添加你为好友",
    "notice.group_invited": "{by} 邀请你加入了群组 {group_name}",
    "notice.group_removed": "{by} 将你移出了群组 {group_name}",
    "notice.group_deleted": "{by} 解散了群组 {group_name}",
    "notice.group_blocked": "群组 {group_name} 已被管理员封禁，解封前无法收发消息",
    "notice.group_unblocked": "群组 {group_name} 已被管理员解封",
    "event.presence.online": "{username} 上线了",
    "event.presence.offline": "{username} 下线了",
    "event.sync_done": "已收取 {count} 条离线消息",
    "event.disconnected.reconnecting": "与服务器的连接已断开 ({reason})，正在重新连接...",
    "event.disconnected.final": "已与服务器断开 ({reason})。下一条命令会重新连接。",
    "event.disconnected.closed": "已断开连接。",
    "event.reconnected.relogged": "已重新连接，并已重新登录为 {username}。",
    "event.reconnected.plain": "已重新连接到服务器。",
    "event.reconnected.relogin_failed": "已重新连接，但重新登录失败: {message} ({code})。",
    "event.unknown": "[{type}] {payload}",
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

TABLES: Final[dict[str, dict[str, str]]] = {"en": EN, "zh": ZH}


def normalize_language(value: str | None) -> str | None:
    """``zh_CN.UTF-8`` -> ``zh``, ``en-US`` -> ``en``; None for anything unsupported."""
    if not value:
        return None
    head = value.strip().lower().replace("-", "_").split("_", 1)[0].split(".", 1)[0]
    return head if head in TABLES else None


def detect_language(environ: Mapping[str, str] | None = None) -> str:
    """The language the locale asks for: ``zh`` if it starts with ``zh``, else ``en``.

    Only the first locale variable that is set counts (``LC_ALL=C`` with
    ``LANG=zh_CN`` means the user overrode Chinese), as in POSIX.
    """
    env = os.environ if environ is None else environ
    for var in _LOCALE_VARS:
        value = env.get(var)
        if value:
            return "zh" if value.strip().lower().startswith("zh") else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def resolve_language(option: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``--lang`` when it names a supported language, else the locale's."""
    return normalize_language(option) or detect_language(environ)


class _KeepMissing(dict[str, Any]):
    """Leaves an unknown ``{placeholder}`` in place instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Strings:
    """The message table of one language, with English as the fallback."""

    def __init__(self, lang: str = DEFAULT_LANGUAGE) -> None:
        self.lang = normalize_language(lang) or DEFAULT_LANGUAGE
        self._table = TABLES[self.lang]

    def has(self, key: str) -> bool:
        return key in self._table or key in EN

    def fields(self, key: str) -> set[str]:
        """The placeholder names of message ``key`` in this language (empty if unknown)."""
        template = self._table.get(key, EN.get(key, ""))
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}

    def get(self, key: str, /, **params: Any) -> str:
        """The message ``key`` with its placeholders filled in."""
        template = self._table.get(key)
        if template is None:
            template = EN.get(key)
        if template is None:
            return key
        try:
            return template.format_map(_KeepMissing(params))
        except (ValueError, IndexError, TypeError):
            # A format spec that does not fit the value (``{usage:<30}`` fed a
            # non-string ...): show the template rather than crash the UI.
            return template

    __call__ = get
