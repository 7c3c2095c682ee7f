"""help and quit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2sp.terminal.registry import (
    command,
    find_command,
    help_lines,
)

if TYPE_CHECKING:
    from p2sp.terminal.app import ClientApp


@command("help", max_args=1, needs_server=False, aliases=("?",))
async def cmd_help(app: ClientApp, args: list[str]) -> None:
    """Every command this user may run, and the ways out; ``help <command>``: one, in full."""
    if args:
        cmd = find_command(args[0])
        if cmd is None:
            app.show(app.strings("command.unknown", name=app.handler.name(args[0])))
            return
        app.show(*help_lines(app.strings, cmd))
        more = f"cmd.{cmd.name}.more"
        if app.strings.has(more):
            for line in app.strings(more).split("\n"):
                app.show(app.strings("help.more", line=line))
        return
    public, admin = app.visible_commands()
    app.show(app.strings("help.title"))
    for cmd in public:
        app.show(*help_lines(app.strings, cmd))
    if admin:
        app.show(app.strings("help.admin_title"))
        for cmd in admin:
            app.show(*help_lines(app.strings, cmd))
    app.show(app.strings("help.ways_out"))


@command("quit", needs_server=False, aliases=("exit",))
async def cmd_quit(app: ClientApp, args: list[str]) -> None:
    app.quit()
