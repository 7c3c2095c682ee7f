"""Administration (unlocked by a login with ``is_admin``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2sp.terminal.checks import (
    check_group_name,
    check_username,
)
from p2sp.terminal.commands.lookup import typed_name
from p2sp.terminal.registry import (
    UsageError,
    command,
)

if TYPE_CHECKING:
    from p2sp.terminal.app import ClientApp


def _split_group_head(remainder: str, count: int) -> list[str]:
    """Split ``"a group" creator message ...`` into ``count`` arguments.

    The first may be in quotes (a group name with spaces); the last takes
    the rest of the line.
    """
    text = remainder.strip()
    if text[:1] in ('"', "'"):
        end = text.find(text[0], 1)
        if end > 0:
            return [text[1:end], *text[end + 1 :].split(maxsplit=count - 2)]
    return text.split(maxsplit=count - 1)


@command("allusers", max_args=1, admin_only=True)
async def cmd_allusers(app: ClientApp, args: list[str]) -> None:
    if args and args[0] != "--online":
        raise UsageError
    online_only = bool(args)
    users = await app.client.allusers(online_only=online_only)
    app.show(*app.handler.users(users, online_only=online_only))


@command("allgroup", admin_only=True, aliases=("allgroups",))
async def cmd_allgroup(app: ClientApp, args: list[str]) -> None:
    app.show(*app.handler.all_groups(await app.client.allgroup()))


@command("adminsend", min_args=2, max_args=2, rest=True, admin_only=True)
async def cmd_adminsend(app: ClientApp, args: list[str]) -> None:
    to, text = args
    check_username(app, to)
    await app.client.adminsend(to, text)
    app.show(app.strings("adminsend.echo", to=app.handler.name(to), message=app.handler.body(text)))


@command(
    "adminsendgroup",
    min_args=3,
    max_args=3,
    admin_only=True,
    splitter=lambda remainder: _split_group_head(remainder, 3),
)
async def cmd_adminsendgroup(app: ClientApp, args: list[str]) -> None:
    name, creator, text = args
    check_group_name(app, name)
    check_username(app, creator)
    await app.client.adminsendgroup(text, name=name, creator=creator)
    app.show(
        app.strings(
            "adminsendgroup.echo", group=app.handler.group(name), message=app.handler.body(text)
        )
    )


@command("broadcast", min_args=1, max_args=1, rest=True, admin_only=True)
async def cmd_broadcast(app: ClientApp, args: list[str]) -> None:
    count = await app.client.broadcast(args[0])
    app.show(app.strings("broadcast.ok", count=count))


@command("blockuser", min_args=1, max_args=1, admin_only=True)
async def cmd_blockuser(app: ClientApp, args: list[str]) -> None:
    check_username(app, args[0])
    await app.client.blockuser(args[0])
    app.show(app.strings("blockuser.ok", username=app.handler.name(args[0])))


@command("unblockuser", min_args=1, max_args=1, admin_only=True)
async def cmd_unblockuser(app: ClientApp, args: list[str]) -> None:
    check_username(app, args[0])
    await app.client.unblockuser(args[0])
    app.show(app.strings("unblockuser.ok", username=app.handler.name(args[0])))


def _group_and_creator(app: ClientApp, args: list[str]) -> tuple[str, str]:
    name, creator = typed_name(args[:-1]), args[-1]
    check_group_name(app, name)
    check_username(app, creator)
    return name, creator


@command("blockgroup", min_args=2, max_args=None, admin_only=True)
async def cmd_blockgroup(app: ClientApp, args: list[str]) -> None:
    name, creator = _group_and_creator(app, args)
    await app.client.blockgroup(name=name, creator=creator)
    app.show(
        app.strings(
            "blockgroup.ok", name=app.handler.group(name), creator=app.handler.name(creator)
        )
    )


@command("unblockgroup", min_args=2, max_args=None, admin_only=True)
async def cmd_unblockgroup(app: ClientApp, args: list[str]) -> None:
    name, creator = _group_and_creator(app, args)
    await app.client.unblockgroup(name=name, creator=creator)
    app.show(
        app.strings(
            "unblockgroup.ok", name=app.handler.group(name), creator=app.handler.name(creator)
        )
    )
