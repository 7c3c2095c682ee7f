"""Groups and public rooms (named as ``p2sp.terminal.commands.lookup`` says)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2sp.terminal.checks import (
    check_group_name,
    check_username,
)
from p2sp.terminal.commands.lookup import (
    listed,
    match_groups,
    my_group,
    number_of,
    pick,
    typed_name,
)
from p2sp.terminal.registry import (
    CommandRefused,
    UsageError,
    command,
)

if TYPE_CHECKING:
    from p2sp.terminal.app import ClientApp


@command("newgroup", min_args=1, max_args=None)
async def cmd_newgroup(app: ClientApp, args: list[str]) -> None:
    name = typed_name(args)
    check_group_name(app, name)
    data = await app.client.newgroup(name)
    app.show(app.strings("newgroup.ok", name=app.handler.group(data.get("name") or name)))


@command("delgroup", min_args=1, max_args=None)
async def cmd_delgroup(app: ClientApp, args: list[str]) -> None:
    group = await my_group(app, typed_name(args))
    await app.client.delgroup(group["group_id"])
    app.show(app.strings("delgroup.ok", name=app.handler.group(group["name"])))


@command("addgroupuser", min_args=2, max_args=None)
async def cmd_addgroupuser(app: ClientApp, args: list[str]) -> None:
    check_username(app, args[-1])
    group = await my_group(app, typed_name(args[:-1]))
    await app.client.addgroupuser(group["group_id"], args[-1])
    app.show(
        app.strings(
            "addgroupuser.ok",
            username=app.handler.name(args[-1]),
            group=app.handler.group(group["name"]),
        )
    )


@command("delgroupuser", min_args=2, max_args=None)
async def cmd_delgroupuser(app: ClientApp, args: list[str]) -> None:
    check_username(app, args[-1])
    group = await my_group(app, typed_name(args[:-1]))
    await app.client.delgroupuser(group["group_id"], args[-1])
    app.show(
        app.strings(
            "delgroupuser.ok",
            username=app.handler.name(args[-1]),
            group=app.handler.group(group["name"]),
        )
    )


@command("setgrouprole", min_args=3, max_args=None)
async def cmd_setgrouprole(app: ClientApp, args: list[str]) -> None:
    role = args[-1].lower()
    if role not in ("admin", "member"):
        raise UsageError
    check_username(app, args[-2])
    group = await my_group(app, typed_name(args[:-2]))
    await app.client.setgrouprole(group["group_id"], args[-2], role)
    app.show(
        app.strings(
            f"setgrouprole.{role}",
            username=app.handler.name(args[-2]),
            group=app.handler.group(group["name"]),
        )
    )


@command("groups")
async def cmd_groups(app: ClientApp, args: list[str]) -> None:
    """Shows the groups and remembers their numbering for ``sendgroup``."""
    rows = await app.client.groups()
    app.group_list = rows
    app.show(*app.handler.groups(rows))


@command("sendgroup", min_args=2, max_args=2, rest=True)
async def cmd_sendgroup(app: ClientApp, args: list[str]) -> None:
    number = number_of(args[0])
    if number is None:
        raise UsageError
    rows = app.group_list
    if rows is None:
        raise CommandRefused(app.strings("sendgroup.not_listed"))
    if not rows:
        raise CommandRefused(app.strings("sendgroup.empty"))
    group = listed(rows, number)
    if group is None:
        raise CommandRefused(app.strings("sendgroup.bad_number", number=number, count=len(rows)))
    data = await app.client.sendgroup(group["group_id"], args[1])
    ref = app.view.sent(
        data,
        kind="group",
        group_id=group["group_id"],
        group_name=group.get("name"),
        text=args[1],
    )
    echo = app.strings(
        "sendgroup.echo",
        group=app.handler.group(group.get("name")),
        message=app.handler.body(args[1]),
    )
    app.show(app.handler.with_ref(echo, ref))


@command("rooms")
async def cmd_rooms(app: ClientApp, args: list[str]) -> None:
    """Shows the public rooms and remembers their numbering for ``join`` / ``leave``."""
    rows = await app.client.publicgroups()
    app.room_list = rows
    app.show(*app.handler.rooms(rows))


@command("join", min_args=1, max_args=None)
async def cmd_join(app: ClientApp, args: list[str]) -> None:
    """A number of the last ``rooms`` list wins; otherwise a room's name."""
    typed = typed_name(args)
    room = listed(app.room_list, number_of(typed))
    if room is None:
        rooms = await app.client.publicgroups()
        if number_of(typed) is not None and not match_groups(rooms, typed):
            raise CommandRefused(app.strings("room.bad_number", number=typed))
        room = pick(app, rooms, typed, "room.unknown", "room.ambiguous")
    row = await app.client.joingroup(room["group_id"])
    app.show(app.handler.joined(row, room["name"]))


@command("leave", min_args=1, max_args=None)
async def cmd_leave(app: ClientApp, args: list[str]) -> None:
    """A number of the last ``rooms`` list, or the name of any group the user is in."""
    typed = typed_name(args)
    room = listed(app.room_list, number_of(typed))
    if room is None:
        mine = await app.client.groups()
        if number_of(typed) is not None and not match_groups(mine, typed):
            raise CommandRefused(app.strings("room.bad_number", number=typed))
        room = pick(app, mine, typed, "room.not_joined", "group.ambiguous")
    await app.client.leavegroup(room["group_id"])
    app.show(app.strings("leave.ok", name=app.handler.group(room["name"])))
