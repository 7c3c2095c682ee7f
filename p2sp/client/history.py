"""The SDK's requests for history, edits, receipts and search.

One helper per action of docs/protocol.md, "History, edits, receipts and
search", each returning the ``ok`` data (``edits`` its list of versions);
``read`` is in ``p2sp.client.reads``, beside its batched form. Messages
fetched by ``history`` are remembered by the message cache
(``p2sp.client.messages``), and one's own edits and retractions are applied
to it at once, since the server does not send a sender their own changes.
"""

from __future__ import annotations

from typing import Any

from p2sp.client.api import rows
from p2sp.client.events import EventStream


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that are not None: optional fields are left out of the request."""
    return {k: v for k, v in fields.items() if v is not None}


class HistoryRequests(EventStream):
    """Conversations, history pages, edits and retractions, read cursors, search."""

    async def conversations(
        self, limit: int = 50, before: int | None = None, before_id: int | None = None
    ) -> dict[str, Any]:
        """The caller's conversations, newest activity first.

        Returns {conversations: [{conversation_id, kind, peer, group_id, name,
        last_seq, last_activity, last_message, unread, delivered_seq,
        read_seq}], has_more}. The next page: ``before`` = the last row's
        ``last_activity``, ``before_id`` = its ``conversation_id``.
        """
        data = await self.call(
            "conversations", **_given(limit=limit, before=before, before_id=before_id)
        )
        return {
            "conversations": rows(data, "conversations"),
            "has_more": bool(data.get("has_more")),
        }

    async def history(
        self,
        conversation_id: int | None = None,
        username: str | None = None,
        group_id: int | None = None,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """A page of one conversation, named by exactly one of the first three.

        Returns {conversation_id, messages (ascending seq, each in its current
        state; one's own direct messages with ``status``), has_more,
        first_seq}. Without ``before_seq`` / ``after_seq``: the newest page.
        Edit and retract events are on the page too (their targets already
        show the result).
        """
        data = await self.call(
            "history",
            **_given(
                conversation_id=conversation_id,
                username=username,
                group_id=group_id,
                before_seq=before_seq,
                after_seq=after_seq,
                limit=limit,
            ),
        )
        messages = rows(data, "messages")
        self._messages.remember(messages)
        return {**data, "messages": messages}

    async def edit(self, message_id: int, text: str) -> dict[str, Any]:
        """Change the text of one's own message; returns {conversation_id, seq, edited_at}.

        ``seq`` is the edit event's. Fails with ``no_such_message``,
        ``not_permitted``, ``edit_window_passed`` or ``message_retracted``.
        """
        data = await self.call("edit", message_id=message_id, text=text)
        self._messages.edited(message_id, text, data.get("edited_at"))
        return data

    async def retract(self, message_id: int) -> dict[str, Any]:
        """Retract a message (one's own, or any as a group or server admin).

        Returns {conversation_id, seq} (of the retract event). Fails with
        ``no_such_message``, ``not_permitted`` or ``retract_window_passed``.
        """
        data = await self.call("retract", message_id=message_id)
        self._messages.retracted(message_id)
        return data

    async def edits(self, message_id: int) -> list[dict[str, Any]]:
        """The versions of a message, oldest first: [{text, edited_at}] ([] once retracted)."""
        return rows(await self.call("edits", message_id=message_id), "versions")

    async def receipts(self, conversation_id: int, seq: int) -> dict[str, Any]:
        """Who has the message at ``seq``: {delivered, read, delivered_count, read_count}."""
        return await self.call("receipts", conversation_id=conversation_id, seq=seq)

    async def search(
        self,
        query: str,
        conversation_id: int | None = None,
        sender: str | None = None,
        before_id: int | None = None,
        limit: int = 20,
    ) -> dict[str, Any]:
        """Messages whose current text contains ``query`` (any case, any script).

        ``sender`` is sent as ``from``. Returns {results: [message payloads,
        each with conversation_kind, conversation_name, peer], newest first;
        has_more}; the next page: ``before_id`` = the last result's
        ``message_id``.
        """
        fields = _given(
            query=query, conversation_id=conversation_id, before_id=before_id, limit=limit
        )
        if sender is not None:
            fields["from"] = sender
        data = await self.call("search", **fields)
        return {"results": rows(data, "results"), "has_more": bool(data.get("has_more"))}
