"""Chats, history, search, replies, edits, retractions and receipts.

Messages are named by the number at the end of their line (``#12``, see
``p2sp.terminal.refs``); chats by a user name, or by a group's number in the
last ``groups`` list, as ``sendgroup`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from p2sp.client import RequestFailed
from p2sp.common.limits import HISTORY_PAGE_MAX, SEARCH_QUERY_MAX
from p2sp.terminal.chatview import Chat
from p2sp.terminal.checks import check_username
from p2sp.terminal.commands.lookup import listed, number_of
from p2sp.terminal.display.history import CHANGE_TYPES
from p2sp.terminal.refs import Shown
from p2sp.terminal.registry import CommandRefused, UsageError, command

if TYPE_CHECKING:
    from p2sp.terminal.app import ClientApp

#: messages ``history`` shows when not told how many
HISTORY_DEFAULT: Final = 20
#: pages ``history`` reads at most to find that many messages (edits and
#: retractions are on the pages too, but not shown)
HISTORY_PAGES: Final = 5


def shown_message(app: ClientApp, typed: str) -> Shown:
    """The message numbered ``typed`` (``#12`` or ``12``), or a refusal saying why not."""
    number = app.view.refs.parse(typed)
    if number is None:
        raise CommandRefused(app.strings("ref.bad", text=app.handler.name(typed)))
    shown = app.view.refs.get(number)
    if shown is None:
        raise CommandRefused(app.strings("ref.unknown", ref=number))
    return shown


@command("chats", aliases=("conversations",))
async def cmd_chats(app: ClientApp, args: list[str]) -> None:
    """Marks of what was just shown are sent first, so the counts include them."""
    await app.client.flush_reads()
    data = await app.client.conversations()
    app.show(*app.handler.conversations(data["conversations"], more=data["has_more"]))


def _history_target(app: ClientApp, args: list[str]) -> tuple[dict[str, Any], Chat | None, str]:
    """(how to name the chat to the server, the chat if known, its name for the title)."""
    if not args:
        chat = app.view.last_chat
        if chat is None:
            raise CommandRefused(app.strings("history.no_target"))
        return {"conversation_id": chat.conversation_id}, chat, chat.name
    typed = args[0]
    number = number_of(typed)
    if number is None:
        check_username(app, typed)
        return {"username": typed}, None, app.handler.name(typed)
    rows = app.group_list
    if rows is None:
        raise CommandRefused(app.strings("history.not_listed"))
    group = listed(rows, number)
    if group is None:
        raise CommandRefused(app.strings("sendgroup.bad_number", number=number, count=len(rows)))
    name = app.strings("chats.group", group=app.handler.group(group.get("name")))
    return {"group_id": group["group_id"]}, None, name


async def _latest(
    app: ClientApp, selector: dict[str, Any], count: int
) -> tuple[int | None, list[dict[str, Any]], bool]:
    """(conversation_id, the newest ``count`` messages to show, whether older ones exist).

    Edits and retractions are on the pages but not shown (their targets show
    the result), so older pages are read until ``count`` messages are found.
    The newest page is marked read up to its end.
    """
    rows: list[dict[str, Any]] = []
    conversation_id: int | None = None
    before: int | None = None
    more = False
    for _ in range(HISTORY_PAGES):
        page = await app.client.history(**selector, before_seq=before, limit=count)
        if conversation_id is None and isinstance(page.get("conversation_id"), int):
            conversation_id = page["conversation_id"]
            selector = {"conversation_id": conversation_id}
            if page["messages"]:
                app.client.mark_read(conversation_id, page["messages"][-1]["seq"])
        rows = page["messages"] + rows
        more = bool(page.get("has_more"))
        if not more or not page["messages"] or len(_visible(rows)) >= count:
            break
        before = rows[0]["seq"]
    visible = _visible(rows)
    return conversation_id, visible[-count:], more or len(visible) > count


def _visible(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("type") not in CHANGE_TYPES]


@command("history", max_args=2)
async def cmd_history(app: ClientApp, args: list[str]) -> None:
    """The newest ``count`` messages of a chat, oldest first; the page is marked read."""
    count = HISTORY_DEFAULT
    if len(args) == 2:
        count = number_of(args[1]) or 0
        if not 1 <= count <= HISTORY_PAGE_MAX:
            raise UsageError
    selector, chat, name = _history_target(app, args)
    try:
        conversation_id, shown, more = await _latest(app, selector, count)
    except RequestFailed as exc:
        if exc.code != "no_such_conversation" or "username" not in selector:
            raise
        app.show(app.strings("history.none", name=name))  # never talked: nothing yet
        return
    target = args[0] if args else (chat.target if chat else "")
    if conversation_id is not None:
        app.view.last_chat = Chat(conversation_id, name, target)
    if not shown:
        app.show(app.strings("history.none", name=name))
        return
    app.show(app.strings("history.title", name=name, count=len(shown)))
    app.show(*app.view.history_lines(shown))
    if more:
        shown_target = app.handler.name(target) if target else "…"
        app.show(app.strings("history.more", target=shown_target, max=HISTORY_PAGE_MAX))


@command("search", min_args=1, max_args=1, rest=True)
async def cmd_search(app: ClientApp, args: list[str]) -> None:
    query = args[0].strip()
    if not 1 <= len(query) <= SEARCH_QUERY_MAX:
        raise CommandRefused(
            app.strings("check.search.length", max=SEARCH_QUERY_MAX, count=len(query))
        )
    data = await app.client.search(query)
    shown_query = app.handler.name(query)
    if not data["results"]:
        app.show(app.strings("search.none", query=shown_query))
        return
    app.show(app.strings("search.title", query=shown_query, count=len(data["results"])))
    app.show(*app.view.search_lines(data["results"]))
    if data["has_more"]:
        app.show(app.strings("search.more"))


@command("reply", min_args=2, max_args=2, rest=True)
async def cmd_reply(app: ClientApp, args: list[str]) -> None:
    """A reply goes where the message is: to the direct chat or the group it was said in."""
    target = shown_message(app, args[0])
    text = args[1]
    if target.kind == "direct" and target.peer:
        data = await app.client.send(target.peer, text, reply_to=target.message_id)
        ref = app.view.sent(data, kind="direct", to=target.peer, text=text)
        echo = app.strings(
            "reply.echo",
            to=app.handler.name(target.peer),
            reply=target.number,
            message=app.handler.body(text),
        )
    elif target.kind == "group" and target.group_id is not None:
        data = await app.client.sendgroup(target.group_id, text, reply_to=target.message_id)
        ref = app.view.sent(
            data, kind="group", group_id=target.group_id, group_name=target.group_name, text=text
        )
        echo = app.strings(
            "reply.echo_group",
            group=app.handler.group(target.group_name),
            reply=target.number,
            message=app.handler.body(text),
        )
    else:
        raise CommandRefused(app.strings("reply.system", ref=target.number))
    app.show(app.handler.with_ref(echo, ref))


@command("edit", min_args=2, max_args=2, rest=True)
async def cmd_edit(app: ClientApp, args: list[str]) -> None:
    target = shown_message(app, args[0])
    await app.client.edit(target.message_id, args[1])
    target.text = args[1]
    app.show(app.strings("edit.ok", ref=target.number, message=app.handler.body(args[1])))


@command("recall", min_args=1, max_args=1, aliases=("retract", "撤回"))
async def cmd_recall(app: ClientApp, args: list[str]) -> None:
    target = shown_message(app, args[0])
    await app.client.retract(target.message_id)
    target.retracted, target.text = True, ""
    app.show(app.strings("recall.ok", ref=target.number))


@command("receipts", min_args=1, max_args=1)
async def cmd_receipts(app: ClientApp, args: list[str]) -> None:
    target = shown_message(app, args[0])
    if target.conversation_id is None or target.seq is None:
        raise CommandRefused(app.strings("ref.unknown", ref=target.number))
    data = await app.client.receipts(target.conversation_id, target.seq)
    app.show(app.handler.receipts(data, target.number))
