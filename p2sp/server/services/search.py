"""Search rules: whose messages a search may return.

Only the caller's conversations and, in each, their visible range; never a
retracted message; an edited message under its latest text only. The index
queries are ``repository/search.py``'s; this module checks the arguments
and names each hit's conversation (its kind, and the group's name or the
direct chat's peer).
"""

from __future__ import annotations

from typing import Any

from p2sp.server.events import row_payload
from p2sp.server.managers.connection import Session
from p2sp.server.repository.history import HistoryRepository
from p2sp.server.repository.search import SearchRepository
from p2sp.server.services.directory import Directory
from p2sp.server.services.history import HistoryService

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class SearchService:
    def __init__(
        self,
        *,
        repo: SearchRepository,
        history_repo: HistoryRepository,
        history: HistoryService,
        directory: Directory,
    ) -> None:
        self.repo = repo
        self.history_repo = history_repo
        self.history = history
        self.directory = directory

    async def search(
        self,
        me: Session,
        query: str,
        *,
        conversation_id: int | None,
        sender: str | None,
        before_id: int | None,
        limit: int,
    ) -> dict[str, Any]:
        if conversation_id is not None:
            await self.history.member(me, conversation_id)  # no_such_conversation
        sender_id = None
        if sender is not None:
            found = await self.directory.user(sender)
            if found is None:
                return {"results": [], "has_more": False}
            sender_id = found.id
        hits, more = await self.repo.search(
            me.user_id,
            query,
            conversation_id=conversation_id,
            sender_id=sender_id,
            before_id=before_id,
            limit=limit,
        )
        peers = await self.history_repo.peers(
            me.user_id, {h.row.conversation_id for h in hits if h.kind == "direct"}
        )
        results = []
        for hit in hits:
            peer = peers.get(hit.row.conversation_id)
            payload = row_payload(
                hit.row,
                kind=hit.kind,
                recipient=(me.username if hit.row.sender_id != me.user_id else peer),
                group_name=hit.name,
            )
            payload["conversation_kind"] = hit.kind
            payload["conversation_name"] = hit.name if hit.kind == "group" else None
            payload["peer"] = peer
            results.append(payload)
        return {"results": results, "has_more": more}
