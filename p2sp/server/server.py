"""ChatServer: the composition root, the listener and the shutdown sequence.

Every service is a plain object built here with its collaborators passed in,
so tests can build the same graph around a temporary database. Start-up
checks the database and migrates it before the port opens: a server that
accepts connections can serve them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl

from p2sp.server.auth import AttemptLimiter, PasswordHasher, ScryptCost
from p2sp.server.config import Settings
from p2sp.server.db.engine import Database
from p2sp.server.handler import HistoryActions, ServerMessageHandler
from p2sp.server.managers.connection import CLOSE_GRACE, Connection
from p2sp.server.managers.connections import ConnectionManager
from p2sp.server.managers.replay import Replayer
from p2sp.server.managers.roles import RoleWatcher
from p2sp.server.managers.router import LocalRouter
from p2sp.server.repository.friends import FriendRepository
from p2sp.server.repository.groups import GroupRepository
from p2sp.server.repository.history import HistoryRepository
from p2sp.server.repository.messages import MessageStore
from p2sp.server.repository.retention import RetentionRepository
from p2sp.server.repository.search import SearchRepository
from p2sp.server.repository.users import UserRepository
from p2sp.server.services.admin import AdminService
from p2sp.server.services.directory import Directory
from p2sp.server.services.edits import EditService
from p2sp.server.services.friends import FriendService
from p2sp.server.services.groups import GroupService
from p2sp.server.services.history import HistoryService
from p2sp.server.services.messages import MessageService
from p2sp.server.services.receipts import ReceiptService
from p2sp.server.services.retention import RetentionService
from p2sp.server.services.search import SearchService
from p2sp.server.services.users import UserService
from p2sp.server.services.writer import MessageWriter

log = logging.getLogger(__name__)


def build_database(settings: Settings) -> Database:
    return Database.from_url(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)


def build_user_service(settings: Settings, db: Database) -> UserService:
    return UserService(
        UserRepository(db),
        PasswordHasher(
            ScryptCost(settings.scrypt_n, settings.scrypt_r, settings.scrypt_p),
            workers=settings.hash_workers,
            queue_limit=settings.hash_queue_limit,
        ),
        name_limiter=AttemptLimiter(settings.login_max_failures, settings.login_failure_window),
        ip_limiter=AttemptLimiter(
            settings.login_max_failures_per_ip, settings.login_failure_window
        ),
        reg_limiter=AttemptLimiter(settings.reg_max_per_ip, settings.reg_window),
    )


class ChatServer:
    """One p2sp server process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db: Database | None = None
        self.connections = ConnectionManager(settings.idle_timeout)
        self.router = LocalRouter(self.connections)
        self.users: UserService | None = None
        self.writer: MessageWriter | None = None
        self.handler: ServerMessageHandler | None = None
        self.roles: RoleWatcher | None = None
        self.receipts: ReceiptService | None = None
        self.retention: RetentionService | None = None
        self._server: asyncio.Server | None = None
        self._stop = asyncio.Event()

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        settings = self.settings
        self.db = build_database(settings)
        await self.db.check()
        await self.db.upgrade()
        db = self.db
        self.users = build_user_service(settings, db)
        store = MessageStore(db)
        friend_repo = FriendRepository(db)
        directory = Directory(self.users.repo, friend_repo)
        self.writer = MessageWriter(
            store,
            commit_window=settings.commit_window,
            max_batch=settings.commit_max_batch,
            learn=directory.learn,
        )
        messages = MessageService(
            directory=directory,
            store=store,
            writer=self.writer,
            router=self.router,
            dm_policy=settings.dm_policy,
            max_text=settings.max_text,
        )
        friends = FriendService(
            repo=friend_repo, directory=directory, messages=messages, router=self.router
        )
        groups = GroupService(
            repo=GroupRepository(db),
            directory=directory,
            messages=messages,
            writer=self.writer,
            router=self.router,
            default_max_members=settings.group_max_members,
            max_members_cap=settings.group_member_cap,
        )
        admin = AdminService(
            users=self.users.repo,
            directory=directory,
            messages=messages,
            groups=groups,
            router=self.router,
        )
        history_actions = self._history_services(db, directory, messages, groups, admin)
        self.handler = ServerMessageHandler(
            self.connections,
            self.users,
            friends,
            messages,
            Replayer(store),
            groups,
            admin,
            max_json_depth=settings.max_json_depth,
            history=history_actions,
        )
        self.roles = RoleWatcher(self.users.repo, self.connections, settings.admin_poll)
        self.writer.start()
        await groups.ensure_public_room(await self.users.repo.ensure_system_user())
        handler = self.handler
        connections = self.connections

        def factory() -> Connection:
            return Connection(
                connections,
                handler,
                max_frame=settings.max_frame,
                send_buffer_limit=settings.send_buffer_limit,
            )

        self._server = await asyncio.get_running_loop().create_server(
            factory,
            settings.host,
            settings.port,
            ssl=self._tls_context(),
            reuse_address=True,
            backlog=4096,
        )
        self.connections.start()
        self.roles.start()
        if self.retention is not None:
            self.retention.start()
        log.info(
            "p2sp server listening on %s:%d (database %s)",
            settings.host,
            self.port,
            self.db.safe_url,
        )

    def _history_services(
        self,
        db: Database,
        directory: Directory,
        messages: MessageService,
        groups: GroupService,
        admin: AdminService,
    ) -> HistoryActions:
        """Conversations, history, edits, receipts, search and retention."""
        settings = self.settings
        assert self.writer is not None
        repo = HistoryRepository(db)
        history = HistoryService(repo=repo, directory=directory)
        edits = EditService(
            repo=repo,
            history=history,
            writer=self.writer,
            router=self.router,
            group_members=groups.member_set,
            check_text=messages.check_text,
            is_admin=admin.is_admin,
            edit_window=settings.edit_window,
            retract_window=settings.retract_window,
        )
        receipts = ReceiptService(
            repo=repo,
            history=history,
            writer=self.writer,
            router=self.router,
            group_members=groups.member_set,
            group_limit=settings.receipt_group_limit,
        )
        messages.replies = edits
        messages.on_acked = receipts.acked
        self.receipts = receipts
        self.retention = RetentionService(
            RetentionRepository(db),
            days=settings.retention_days,
            keep=settings.max_messages_per_conversation,
            interval=settings.retention_interval,
            batch=settings.retention_batch,
        )
        search = SearchService(
            repo=SearchRepository(db), history_repo=repo, history=history, directory=directory
        )
        return HistoryActions(history, edits, receipts, search)

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.settings.tls_cert is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        return ctx

    def request_stop(self) -> None:
        self._stop.set()

    async def serve(self) -> None:
        """Start, serve until SIGTERM/SIGINT or ``request_stop()``, then shut down."""
        loop = asyncio.get_running_loop()
        # Before start: a SIGTERM while the database is checked and migrated
        # stops the server as soon as it stands, with its shutdown sequence.
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Stop accepting, kick everyone, finish and commit, close.

        The sequence docs/operations.md describes under "Stopping".
        """
        log.info("shutting down")
        if self._server is not None:
            self._server.close()
        await self.connections.stop()
        if self.roles is not None:
            await self.roles.stop()
        if self.retention is not None:
            await self.retention.stop()
        conns = list(self.connections)
        # Requests already received are answered: their effects are committed.
        if conns:
            await asyncio.wait(
                [asyncio.ensure_future(c.drained()) for c in conns],
                timeout=self.settings.shutdown_grace,
            )
        for conn in conns:
            conn.kick("shutdown")
        # Let the sockets close so each session's end is recorded before commit.
        deadline = asyncio.get_running_loop().time() + CLOSE_GRACE + 0.5
        while len(self.connections) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        if self.users is not None:
            await self.users.flush()
        if self.receipts is not None:
            await self.receipts.stop()
        if self.writer is not None:
            await self.writer.stop()
            w = self.writer
            log.info(
                "message writer: %d messages and %d acks in %d transactions",
                w.committed,
                w.acks,
                w.batches,
            )
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), self.settings.shutdown_grace)
        if self.users is not None:
            self.users.hasher.close()
        if self.db is not None:
            await self.db.dispose()
        log.info("stopped")
