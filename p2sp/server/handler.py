"""ServerMessageHandler: frame -> action -> service call -> response.

The one place where a request is checked before any rule runs: the envelope
(docs/protocol.md, "Envelope"), the action name, the session token, and the
action's data Struct. Services receive validated data and the caller's
``Session``; they raise ``ChatError`` for a refusal and never see a socket. Anything else a
service raises is a server fault: logged with its traceback here, answered
with ``error``/``internal_error`` and no detail, and the connection lives on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from p2sp.common.actions import (
    Ack,
    AdminSend,
    AdminSendGroup,
    AllUsers,
    Broadcast,
    Conversations,
    Credentials,
    Edit,
    Empty,
    GroupMember,
    GroupRef,
    GroupRole,
    GroupSelector,
    History,
    MessageRef,
    NamedUser,
    NewGroup,
    Read,
    Search,
    SendDirect,
    SendGroup,
)
from p2sp.common.exceptions import BadPayload, ChatError, not_authenticated
from p2sp.common.message import (
    DEFAULT_JSON_DEPTH,
    MalformedRequest,
    Request,
    TooDeep,
    decode_data,
    decode_request,
    error_response_frame,
    response_frame,
)
from p2sp.server.auth import tokens_equal
from p2sp.server.managers.connection import Connection, Session
from p2sp.server.managers.connections import ConnectionManager
from p2sp.server.managers.replay import Replayer
from p2sp.server.services.admin import AdminService
from p2sp.server.services.edits import EditService
from p2sp.server.services.friends import FriendService
from p2sp.server.services.groups import GroupService
from p2sp.server.services.history import HistoryService
from p2sp.server.services.messages import MessageService
from p2sp.server.services.receipts import ReceiptService
from p2sp.server.services.search import SearchService
from p2sp.server.services.users import UserService
from p2sp.server.services.writer import Pending

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class Reply:
    """An action's answer plus work to do once the answer is on the wire
    (login's replay must follow the login response)."""

    data: dict[str, Any] | None
    after: Callable[[], Awaitable[Any]]


ActionFunc = Callable[
    [Connection, Any, Any], Awaitable[dict[str, Any] | Reply | Pending[Any] | None]
]

INTERNAL_ERROR = ChatError(
    "internal_error", "the server failed to handle this request", status="error"
)


@dataclass(slots=True, frozen=True)
class HistoryActions:
    """The services behind conversations, history, edits, receipts and search."""

    history: HistoryService
    edits: EditService
    receipts: ReceiptService
    search: SearchService


@dataclass(slots=True, frozen=True)
class Action:
    """One row of the action table."""

    name: str
    data_type: type
    func: ActionFunc
    needs_session: bool
    decoder: msgspec.json.Decoder


def _session_call(call: Callable[[Session, Any], Awaitable[Any]]) -> ActionFunc:
    """Adapt a service call that needs only the session and the data."""

    async def action(conn: Connection, session: Session, data: Any) -> Any:
        return await call(session, data)

    return action


class ServerMessageHandler:
    """Dispatches each request frame through the action table."""

    def __init__(
        self,
        connections: ConnectionManager,
        users: UserService,
        friends: FriendService,
        messages: MessageService,
        replayer: Replayer,
        groups: GroupService,
        admin: AdminService,
        *,
        max_json_depth: int = DEFAULT_JSON_DEPTH,
        history: HistoryActions | None = None,
    ) -> None:
        self.max_json_depth = max_json_depth
        self.connections = connections
        self.groups = groups
        self.admin = admin
        self.users = users
        self.friends = friends
        self.messages = messages
        self.replayer = replayer
        self.actions: dict[str, Action] = {}
        self.register("ping", Empty, self.ping, needs_session=False)
        self.register("reg", Credentials, self.reg, needs_session=False)
        self.register("login", Credentials, self.login, needs_session=False)
        self.register("logout", Empty, self.logout)
        self.register("add", NamedUser, self.add)
        self.register("friends", Empty, self.list_friends)
        self.register("send", SendDirect, self.send)
        self.register("ack", Ack, self.ack)
        g, a = groups, admin
        for name, data_type, call in (
            (
                "newgroup",
                NewGroup,
                lambda me, d: g.create(
                    me,
                    d.name,
                    public=d.public,
                    description=d.description,
                    max_members=d.max_members,
                ),
            ),
            ("delgroup", GroupRef, lambda me, d: g.delete(me, d.group_id)),
            ("addgroupuser", GroupMember, lambda me, d: g.invite(me, d.group_id, d.username)),
            ("delgroupuser", GroupMember, lambda me, d: g.kick(me, d.group_id, d.username)),
            (
                "setgrouprole",
                GroupRole,
                lambda me, d: g.set_role(me, d.group_id, d.username, d.role),
            ),
            ("groups", Empty, lambda me, d: g.mine(me)),
            (
                "sendgroup",
                SendGroup,
                lambda me, d: g.send(me, d.group_id, d.text, d.client_msg_id, d.reply_to),
            ),
            ("publicgroups", Empty, lambda me, d: g.public(me)),
            ("joingroup", GroupRef, lambda me, d: g.join(me, d.group_id)),
            ("leavegroup", GroupRef, lambda me, d: g.leave(me, d.group_id)),
            ("allusers", AllUsers, lambda me, d: a.all_users(me, d.online_only)),
            ("allgroup", Empty, lambda me, d: a.all_groups(me)),
            ("adminsend", AdminSend, lambda me, d: a.send(me, d.username, d.text)),
            ("adminsendgroup", AdminSendGroup, lambda me, d: a.send_group(me, d, d.text)),
            ("broadcast", Broadcast, lambda me, d: a.broadcast(me, d.text)),
            ("blockuser", NamedUser, lambda me, d: a.block_user(me, d.username, True)),
            ("unblockuser", NamedUser, lambda me, d: a.block_user(me, d.username, False)),
            ("blockgroup", GroupSelector, lambda me, d: a.block_group(me, d, True)),
            ("unblockgroup", GroupSelector, lambda me, d: a.block_group(me, d, False)),
        ):
            self.register(name, data_type, _session_call(call))
        if history is not None:
            self.register_history(history)

    def register_history(self, f: HistoryActions) -> None:
        """Conversations, history, edits, receipts and search."""
        h, e, r, q = f.history, f.edits, f.receipts, f.search
        for name, data_type, call in (
            (
                "conversations",
                Conversations,
                lambda me, d: h.conversations(
                    me, limit=d.limit, before=d.before, before_id=d.before_id
                ),
            ),
            (
                "history",
                History,
                lambda me, d: h.history(
                    me,
                    conversation_id=d.conversation_id,
                    username=d.username,
                    group_id=d.group_id,
                    before_seq=d.before_seq,
                    after_seq=d.after_seq,
                    limit=d.limit,
                ),
            ),
            ("edit", Edit, lambda me, d: e.edit(me, d.message_id, d.text)),
            ("retract", MessageRef, lambda me, d: e.retract(me, d.message_id)),
            ("edits", MessageRef, lambda me, d: e.versions(me, d.message_id)),
            ("read", Read, lambda me, d: r.read(me, d.conversation_id, d.seq)),
            ("receipts", Read, lambda me, d: r.receipts(me, d.conversation_id, d.seq)),
            (
                "search",
                Search,
                lambda me, d: q.search(
                    me,
                    d.query,
                    conversation_id=d.conversation_id,
                    sender=d.sender,
                    before_id=d.before_id,
                    limit=d.limit,
                ),
            ),
        ):
            self.register(name, data_type, _session_call(call))

    def register(
        self, name: str, data_type: type, func: ActionFunc, *, needs_session: bool = True
    ) -> None:
        """Add an action; later features add theirs with one call each."""
        self.actions[name] = Action(
            name, data_type, func, needs_session, msgspec.json.Decoder(data_type)
        )

    # -- dispatch -------------------------------------------------------------

    async def handle_frame(self, conn: Connection, payload: bytes) -> None:
        try:
            request = decode_request(payload, self.max_json_depth)
        except TooDeep as exc:
            # The frame is sound, only its content is refused: the connection lives.
            conn.send(error_response_frame(None, ChatError(exc.code, exc.message, status="error")))
            return
        except BadPayload as exc:
            conn.close_with_error(exc.code, exc.message)
            return
        except MalformedRequest as exc:
            conn.send(error_response_frame(exc.request_id, exc))
            return
        except ChatError as exc:
            conn.send(error_response_frame(None, exc))
            return
        frame, after = await self.dispatch(conn, request)
        if frame is not None:
            conn.send(frame)
        if after is not None:
            try:
                await after()
            except Exception:
                log.exception("%r: follow-up of %s failed", conn, request.action)

    async def dispatch(
        self, conn: Connection, request: Request
    ) -> tuple[bytes | None, Callable[[], Awaitable[Any]] | None]:
        """Run one request; returns the response frame (None: it will be sent
        when the request's commit is done) and any follow-up work."""
        action = self.actions.get(request.action)
        if action is None:
            err = ChatError("unknown_action", f"unknown action {request.action!r}", status="error")
            return error_response_frame(request.id, err), None
        try:
            session = self._authenticate(conn, request) if action.needs_session else conn.session
            data = decode_data(request, action.data_type, action.decoder)
            result = await action.func(conn, session, data)
            if type(result) is Pending:
                self._answer_on_commit(conn, request.id, result)
                return None, None
            if isinstance(result, Reply):
                return response_frame(request.id, data=result.data), result.after
            return response_frame(request.id, data=result), None
        except ChatError as exc:
            return error_response_frame(request.id, exc), None
        except Exception:
            log.exception("%r: action %s failed", conn, request.action)
            return error_response_frame(request.id, INTERNAL_ERROR), None

    @staticmethod
    def _answer_on_commit(conn: Connection, request_id: int | None, pending: Pending[Any]) -> None:
        """Send the response once the writer has committed (in commit order)."""

        def answer(future: asyncio.Future[Any]) -> None:
            error = None if future.cancelled() else future.exception()
            if isinstance(error, ChatError):
                # Refused at commit (the conversation was deleted meanwhile).
                frame = error_response_frame(request_id, error)
            elif future.cancelled() or error is not None:
                # The writer logged the cause; the client learns only that it failed.
                frame = error_response_frame(request_id, INTERNAL_ERROR)
            else:
                try:
                    frame = response_frame(request_id, data=pending.data(future.result()))
                except Exception:
                    log.exception("%r: answering request %s failed", conn, request_id)
                    frame = error_response_frame(request_id, INTERNAL_ERROR)
            conn.send(frame)

        conn.track(pending.future)
        pending.future.add_done_callback(answer)

    @staticmethod
    def _authenticate(conn: Connection, request: Request) -> Session:
        """No one acts as someone else: the token must be this connection's own
        live session's (docs/architecture.md, "The promises and their tests")."""
        session = conn.session
        if session is None:
            raise not_authenticated("log in first")
        if request.auth_token is None:
            raise not_authenticated("auth_token is missing")
        if not tokens_equal(request.auth_token, session.token):
            raise not_authenticated("auth_token does not match this connection's session")
        return session

    # -- lifecycle ------------------------------------------------------------

    def connection_closed(self, conn: Connection) -> None:
        session = self.connections.detach(conn)
        if session is not None:
            self._session_over(session)

    def _session_over(self, session: Session) -> None:
        """A session ended without a newer one replacing it: offline to friends, then DB."""
        self.users.schedule(self.friends.announce(session.user_id, session.username, False))
        self.users.schedule_session_end(session)

    # -- actions --------------------------------------------------------------

    async def ping(self, conn: Connection, session: Session | None, data: Empty) -> None:
        return None

    async def reg(self, conn: Connection, session: Session | None, data: Credentials) -> dict:
        user_id = await self.users.register(data.username, data.password, ip=conn.peer_ip)
        return {"user_id": user_id}

    async def login(self, conn: Connection, session: Session | None, data: Credentials) -> dict:
        was_online = False

        def attach(new: Session) -> None:
            nonlocal was_online
            if conn.closing:
                # The client went away while its password was being checked.
                raise ChatError("connection_closed", "connection closed during login")
            previous = self.connections.detach(conn)
            if previous is not None and previous.user_id != new.user_id:
                self._session_over(previous)
            was_online = self.connections.is_online(new.user_id)
            self.connections.attach(conn, new)  # refuses a user blocked meanwhile

        new = await self.users.login(data.username, data.password, ip=conn.peer_ip, attach=attach)
        if not was_online:
            self.users.schedule(self.friends.announce(new.user_id, new.username, True))
        data = {
            "auth_token": new.token,
            "user_id": new.user_id,
            "username": new.username,
            "is_admin": new.is_admin,
        }
        return Reply(data, lambda: self.replayer.replay(conn, new))

    async def logout(self, conn: Connection, session: Session, data: Empty) -> None:
        ended = self.connections.detach(conn)
        if ended is not None:
            await self.friends.announce(ended.user_id, ended.username, False)
            await self.users.end_session(ended)
        return None

    async def add(self, conn: Connection, session: Session, data: NamedUser) -> dict:
        return await self.friends.add(session, data.username)

    async def list_friends(self, conn: Connection, session: Session, data: Empty) -> dict:
        return await self.friends.list(session)

    async def send(self, conn: Connection, session: Session, data: SendDirect) -> Pending[Any]:
        return await self.messages.send_direct(
            session, data.to, data.text, data.client_msg_id, data.reply_to
        )

    async def ack(self, conn: Connection, session: Session, data: Ack) -> Pending[None]:
        return await self.messages.ack(session, data.acks, conn.delivered)
