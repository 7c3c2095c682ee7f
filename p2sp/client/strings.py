"""Every string the terminal client shows a person, in English and Chinese.

One flat table per language, keyed by a dotted message id, with
``str.format`` placeholders. Keeping them here (and nowhere else) means a
translation is one file, a wording change is one line, and tests can check
that the tables agree. A new display format (a whisper, a system message, a
group line ...) is just another key in both tables.

Naming: ``cmd.<name>.usage`` / ``cmd.<name>.help`` describe commands,
``event.<type>...`` render server pushes, ``message.<kind>`` render chat
messages, ``notice.<kind>`` render system notices from their ``notice``
object (PROTOCOL §5), ``reason.<code>`` turn a protocol reason code into
words, ``error.*`` report failures.

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
    "cmd.reg.help": "create an account (asks for the password twice)",
    "cmd.login.usage": "login <username> [password]",
    "cmd.login.help": "log in (asks for the password if it is not given)",
    "cmd.logout.usage": "logout",
    "cmd.logout.help": "log out",
    "cmd.add.usage": "add <username>",
    "cmd.add.help": "add a friend",
    "cmd.friends.usage": "friends",
    "cmd.friends.help": "list your friends and who is online",
    "cmd.send.usage": ".send <username> <message>",
    "cmd.send.help": "send a private message to a friend (also: /msg <username> <message>)",
    "cmd.help.usage": "help",
    "cmd.help.help": "show this list",
    "cmd.quit.usage": "quit",
    "cmd.quit.help": "leave the client (also: exit, Ctrl-D)",
    "help.title": "Commands:",
    "help.admin_title": "Administrator commands:",
    "help.line": "  {usage:<30} {help}",
    "command.unknown": "Unknown command: {name}. Type help to see the commands.",
    "command.usage": "Usage: {usage}",
    "command.admin_only": "{name} is only for administrators.",
    # --- command results -------------------------------------------------
    "reg.ok": "Registered {username} (user id {user_id}). Log in with: login {username}",
    "reg.mismatch": "The two passwords do not match; nothing was registered.",
    "reg.cancelled": "Registration cancelled.",
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
    # --- errors ----------------------------------------------------------
    "error.request": "Failed: {message} ({code})",
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
        "Your account has been blocked by an administrator; you are logged out."
    ),
    "event.kicked.slow_consumer": (
        "The server disconnected you because messages piled up faster than they could be "
        "delivered. Nothing is lost: they wait for your next login."
    ),
    "event.kicked.shutdown": "The server is shutting down.",
    "event.kicked.other": "The server disconnected you ({reason}).",
    "event.error": "Server error: {message} ({code})",
    "message.direct": "{sender} whispers to you: {message} ({time})",
    "message.system": "[System]: {message}",
    "message.group": "[{group}] {sender}: {message} ({time})",
    "message.group_system": "[{group}] [System]: {message} ({time})",
    "message.replayed": "[offline] {line}",
    "notice.friend_added": "{username} added you as a friend",
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
    # --- reason codes ----------------------------------------------------
    "reason.connection_closed": "the server closed the connection",
    "reason.connection_error": "network error",
    "reason.ping_timeout": "the server stopped answering",
    "reason.relogin_timeout": "the server did not answer the login",
    "reason.client_closed": "closed by you",
    "reason.client_error": "an internal error of the client",
    "reason.shutdown": "the server is shutting down",
    "reason.slow_consumer": "too many undelivered messages",
    "reason.logged_in_elsewhere": "logged in somewhere else",
    "reason.blocked": "account blocked",
    "reason.bad_magic": "the server sent data that is not p2sp",
    "reason.bad_checksum": "corrupted data from the server",
    "reason.bad_length": "oversized data from the server",
    "reason.bad_payload": "unreadable data from the server",
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
    "cmd.reg.help": "注册账号 (需要输入两次密码)",
    "cmd.login.usage": "login <用户名> [密码]",
    "cmd.login.help": "登录 (未给出密码时会提示输入)",
    "cmd.logout.usage": "logout",
    "cmd.logout.help": "退出登录",
    "cmd.add.usage": "add <用户名>",
    "cmd.add.help": "添加好友",
    "cmd.friends.usage": "friends",
    "cmd.friends.help": "查看好友列表及在线状态",
    "cmd.send.usage": ".send <用户名> <消息>",
    "cmd.send.help": "给好友发私聊消息 (也可用: /msg <用户名> <消息>)",
    "cmd.help.usage": "help",
    "cmd.help.help": "显示本列表",
    "cmd.quit.usage": "quit",
    "cmd.quit.help": "退出客户端 (也可用 exit 或 Ctrl-D)",
    "help.title": "命令:",
    "help.admin_title": "管理员命令:",
    "help.line": "  {usage:<30} {help}",
    "command.unknown": "未知命令: {name}。输入 help 查看所有命令。",
    "command.usage": "用法: {usage}",
    "command.admin_only": "{name} 仅限管理员使用。",
    # --- command results -------------------------------------------------
    "reg.ok": "注册成功: {username} (用户ID {user_id})。登录: login {username}",
    "reg.mismatch": "两次输入的密码不一致，未注册。",
    "reg.cancelled": "已取消注册。",
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
    # --- errors ----------------------------------------------------------
    "error.request": "失败: {message} ({code})",
    "error.connection_lost": "服务器应答前连接已断开，请稍后重试。",
    "error.not_connected": "未连接到服务器，正在重新连接，请稍后重试。",
    "error.timeout": "服务器未及时应答，请重试。",
    "error.other": "错误: {message}",
    # --- events ----------------------------------------------------------
    "event.kicked.logged_in_elsewhere": "你已被强制下线: 你的账号刚刚在别处登录。",
    "event.kicked.blocked": "你的账号已被管理员封禁，已被强制下线。",
    "event.kicked.slow_consumer": (
        "消息堆积过多，服务器断开了你的连接。消息不会丢失，下次登录时会送达。"
    ),
    "event.kicked.shutdown": "服务器正在关闭。",
    "event.kicked.other": "服务器断开了你的连接 ({reason})。",
    "event.error": "服务器错误: {message} ({code})",
    "message.direct": "{sender}悄悄对你说:{message} ({time})",
    "message.system": "[系统消息]:{message}",
    "message.group": "[{group}] {sender}:{message} ({time})",
    "message.group_system": "[{group}] [系统消息]:{message} ({time})",
    "message.replayed": "[离线消息] {line}",
    "notice.friend_added": "{username} 已添加你为好友",
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
    # --- reason codes ----------------------------------------------------
    "reason.connection_closed": "服务器关闭了连接",
    "reason.connection_error": "网络错误",
    "reason.ping_timeout": "服务器无响应",
    "reason.relogin_timeout": "服务器未应答登录请求",
    "reason.client_closed": "由你关闭",
    "reason.client_error": "客户端内部错误",
    "reason.shutdown": "服务器正在关闭",
    "reason.slow_consumer": "未送达的消息过多",
    "reason.logged_in_elsewhere": "账号在别处登录",
    "reason.blocked": "账号被封禁",
    "reason.bad_magic": "服务器发来的不是 p2sp 数据",
    "reason.bad_checksum": "服务器数据校验失败",
    "reason.bad_length": "服务器数据过长",
    "reason.bad_payload": "无法解析服务器数据",
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
