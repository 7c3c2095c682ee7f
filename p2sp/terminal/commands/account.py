"""Accounts, friends and direct messages: reg, login, logout, add, friends, send."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2sp.terminal.checks import (
    check_password,
    check_username,
    refuse_before_secrets,
)
from p2sp.terminal.registry import (
    CommandRefused,
    command,
)

if TYPE_CHECKING:
    from p2sp.terminal.app import ClientApp


@command("reg", min_args=1, max_args=1, history_args=1)
async def cmd_reg(app: ClientApp, args: list[str]) -> None:
    """The name is checked before a password is asked for; the passwords are
    compared and their length checked here, so a typo never reaches the server."""
    username = args[0]
    try:
        check_username(app, username, new=True)
    except CommandRefused as refusal:
        await refuse_before_secrets(app, refusal, 2)
    first = await app.terminal.read_secret(app.strings("prompt.password"))
    if first is None:
        app.show(app.strings("reg.cancelled"))
        return
    second = await app.terminal.read_secret(app.strings("prompt.password_again"))
    if second is None:
        app.show(app.strings("reg.cancelled"))
        return
    if first != second:
        app.show(app.strings("reg.mismatch"))
        return
    check_password(app, first)
    user_id = await app.client.reg(username, first)
    app.show(app.handler.registered(username, user_id))


@command("login", min_args=1, max_args=2, rest=True, history_args=1)
async def cmd_login(app: ClientApp, args: list[str]) -> None:
    """The password is the rest of the line, so one with spaces can be typed inline.

    The input history keeps only ``login <username>`` (``history_args``).
    """
    username = args[0]
    password = args[1] if len(args) > 1 else None
    try:
        check_username(app, username)
    except CommandRefused as refusal:
        await refuse_before_secrets(app, refusal, 0 if password is not None else 1)
    if password is None:
        password = await app.terminal.read_secret(app.strings("prompt.password"))
        if password is None:
            app.show(app.strings("login.cancelled"))
            return
    data = await app.client.login(username, password)
    app.forget_lists()
    app.show(*app.handler.welcome(data))


@command("logout")
async def cmd_logout(app: ClientApp, args: list[str]) -> None:
    app.forget_lists()
    app.view.last_chat = None
    await app.client.logout()
    app.show(app.strings("logout.ok"))


@command("add", min_args=1, max_args=1)
async def cmd_add(app: ClientApp, args: list[str]) -> None:
    check_username(app, args[0])
    data = await app.client.add(args[0])
    app.show(app.handler.added(data, args[0]))


@command("friends")
async def cmd_friends(app: ClientApp, args: list[str]) -> None:
    app.show(*app.handler.friends(await app.client.friends()))


@command("send", min_args=2, max_args=2, rest=True, aliases=(".send", "/msg", "msg"))
async def cmd_send(app: ClientApp, args: list[str]) -> None:
    """``.send <user> <message>`` (the original P2SP client's command) or ``/msg``.

    The message is the rest of the line, inner spaces kept. A failure is
    reported by the dispatcher (the code in words, and the code); success is
    a one-line echo ending with the message's number (``#12``).
    """
    to, text = args
    check_username(app, to)
    data = await app.client.send(to, text)
    ref = app.view.sent(data, kind="direct", to=to, text=text)
    app.show(app.handler.with_ref(app.handler.sent(to, text), ref))
