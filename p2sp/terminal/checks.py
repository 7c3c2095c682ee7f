"""Checks made before anything is asked or sent.

The rules are the protocol's own (p2sp.common.limits, p2sp.common.usernames),
so a name the server would refuse is refused here, in the user's language,
before a password is asked for or a request is sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from p2sp.common.limits import (
    GROUP_NAME_MAX,
    GROUP_NAME_PATTERN,
    PASSWORD_MAX,
    PASSWORD_MIN,
    USERNAME_MAX,
    USERNAME_MIN,
    USERNAME_PATTERN,
)
from p2sp.common.usernames import UsernameError, check_scripts, display_form, scripts_of
from p2sp.terminal.registry import CommandRefused, UsageError
from p2sp.terminal.strings import Strings

if TYPE_CHECKING:
    from p2sp.terminal.app import ClientApp


_USERNAME_CHAR: Final = re.compile(USERNAME_PATTERN)
_GROUP_NAME: Final = re.compile(GROUP_NAME_PATTERN)


def _char(ch: str) -> str:
    """One character named for a person: ``'/'``, or ``U+001B`` if it does not show."""
    return f"'{ch}'" if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"


def _listing(strings: Strings, items: Sequence[str]) -> str:
    """``a, b and c`` in the user's language."""
    if len(items) <= 1:
        return "".join(items)
    head = strings("check.list_separator").join(items[:-1])
    return head + strings("check.list_last") + items[-1]


def _script_names(strings: Strings, scripts: set[str]) -> str:
    names = []
    for script in sorted(scripts):
        key = f"script.{script.lower()}"
        names.append(strings(key) if strings.has(key) else script.title())
    return _listing(strings, names)


def check_username(app: ClientApp, name: str, *, new: bool = False) -> None:
    """Refuse a name that cannot be anyone's (``CommandRefused``), before anything is sent.

    Length and characters always; with ``new`` (``reg``) also the rest of
    the registration rule: the PRECIS form and one script per name.
    Look-alikes of existing names only the server can tell (``user_exists``).
    """
    strings = app.strings
    shown = app.handler.name(name)
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX:
        raise CommandRefused(
            strings(
                "check.username.length",
                min=USERNAME_MIN,
                max=USERNAME_MAX,
                name=shown,
                count=len(name),
            )
        )
    bad = next((ch for ch in name if not _USERNAME_CHAR.match(ch)), None)
    if bad is not None:
        raise CommandRefused(strings("check.username.char", char=_char(bad)))
    if not new:
        return
    try:
        display = display_form(name)
    except UsernameError as exc:
        raise CommandRefused(
            strings("check.username.other", name=shown, reason=exc.reason)
        ) from None
    try:
        check_scripts(display)
    except UsernameError:
        scripts = _script_names(strings, scripts_of(display))
        raise CommandRefused(
            strings("check.username.scripts", name=shown, scripts=scripts)
        ) from None


def check_group_name(app: ClientApp, name: str) -> None:
    """Refuse a group name the server would (too long, control characters)."""
    if not name:
        raise UsageError
    if len(name) > GROUP_NAME_MAX:
        raise CommandRefused(app.strings("check.group.length", max=GROUP_NAME_MAX, count=len(name)))
    if not _GROUP_NAME.match(name):
        raise CommandRefused(app.strings("check.group.control"))


async def refuse_before_secrets(app: ClientApp, refusal: CommandRefused, count: int) -> None:
    """Refuse a command before its passwords are asked for.

    A person is not asked at all. A script (piped stdin) has written the
    password lines already: they are read and dropped, so the script stays
    in step and a password is never run as a command (and echoed back as an
    unknown one).
    """
    if getattr(app.terminal, "scripted", False):
        for _ in range(count):
            if await app.terminal.read_secret("") is None:
                break
    raise refusal


def check_password(app: ClientApp, password: str) -> None:
    """Refuse a new password outside the protocol's length rule."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise CommandRefused(
            app.strings(
                "check.password.length", min=PASSWORD_MIN, max=PASSWORD_MAX, count=len(password)
            )
        )
