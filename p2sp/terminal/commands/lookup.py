"""How commands find the groups and rooms a user names.

The original P2SP client names groups by name (``delgroup <groupname>``)
while the protocol takes a group_id: the client looks the name up among the
user's own groups (a fresh ``groups`` request), and ``name@creator`` picks
one of two groups of the same name. A name is the words before the trailing
arguments, so it may contain spaces (runs of spaces count as one; "quotes"
around it are dropped). ``sendgroup <n>`` and ``history <n>`` use the
numbers of the last ``groups`` list the user saw, ``join`` / ``leave`` those
of the last ``rooms`` list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from p2sp.terminal.registry import CommandRefused

if TYPE_CHECKING:
    from p2sp.terminal.app import ClientApp


def typed_name(words: Sequence[str]) -> str:
    """A group name typed as one or more words (runs of spaces as one, quotes dropped)."""
    name = " ".join(" ".join(words).split())
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = " ".join(name[1:-1].split())
    return name


def _same_name(row: dict[str, Any], name: str) -> bool:
    value = row.get("name")
    return isinstance(value, str) and " ".join(value.split()) == name


def match_groups(rows: Sequence[dict[str, Any]], typed: str) -> list[dict[str, Any]]:
    """Rows named ``typed``, or ``name@creator`` when no group has that whole name."""
    exact = [r for r in rows if _same_name(r, typed)]
    if exact or "@" not in typed:
        return exact
    name, _, creator = typed.rpartition("@")
    name = " ".join(name.split())
    return [
        r
        for r in rows
        if _same_name(r, name)
        and isinstance(r.get("creator"), str)
        and r["creator"].casefold() == creator.casefold()
    ]


def pick(
    app: ClientApp, rows: Sequence[dict[str, Any]], typed: str, unknown: str, ambiguous: str
) -> dict[str, Any]:
    found = match_groups(rows, typed)
    if not found:
        raise CommandRefused(app.strings(unknown, name=typed))
    if len(found) > 1:
        choices = app.handler.group_choices(found)
        raise CommandRefused(app.strings(ambiguous, name=typed, count=len(found), choices=choices))
    return found[0]


async def my_group(app: ClientApp, typed: str) -> dict[str, Any]:
    """One of the user's own groups by name (or ``name@creator``).

    A server admin, who may manage any group, also finds groups they are not in.
    """
    rows = await app.client.groups()
    if app.client.is_admin and not match_groups(rows, typed):
        rows = await app.client.allgroup()
    return pick(app, rows, typed, "group.unknown", "group.ambiguous")


def number_of(text: str) -> int | None:
    return int(text) if text.isdecimal() else None


def listed(rows: list[dict[str, Any]] | None, number: int | None) -> dict[str, Any] | None:
    if rows is None or number is None or not 1 <= number <= len(rows):
        return None
    return rows[number - 1]
