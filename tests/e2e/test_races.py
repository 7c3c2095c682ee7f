"""Every check-then-act rule of the server, raced against itself.

Each test runs both sides of a rule at once, round after round, each side
starting after a small random delay drawn from a seeded ``random.Random``,
and checks the rule's invariant after every round, whatever interleaving
that round produced:

- one live session per user (docs/protocol.md, "Sessions");
- one account per family of names that compare equal or look alike;
- a group never holds more than ``max_members``, nor a user twice;
- invite, kick and leave of one member end in one consistent state;
- a friendship is stored once, whoever adds whom first;
- a resend with the same ``client_msg_id`` is stored once;
- a blocked user is never online once ``blockuser`` has answered;
- the login limits count guesses still being checked.

The seed of each test is its name plus ``P2SP_RACE_SEED`` (default 0): a
failure names its round, and running again replays the same delays; another
seed explores other interleavings. The tests speak the protocol over plain
sockets (``Wire``) rather than the SDK, which reconnects, logs in again and
drops repeats: right for an application, and exactly what would hide a race.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from p2sp.common.message import decode_json, request_frame
from p2sp.common.protocol import FrameDecoder
from p2sp.common.usernames import check_new_username
from tests.e2e.conftest import PASSWORD, ServerFactory, ServerProcess, db_execute, table

pytestmark = pytest.mark.timeout(180)

T = TypeVar("T")
SEED = os.environ.get("P2SP_RACE_SEED", "0")
#: A password no test account has.
WRONG = "not the password"


def rng_for(test: str) -> random.Random:
    return random.Random(f"{SEED}:{test}")


# --- a connection that keeps everything -------------------------------------------------

_AUTO: Any = object()


class Wire:
    """One socket speaking the protocol: requests may be pipelined (``request``
    returns the answer's future at once), and every event the server sends is
    kept in ``events``, in order, as ``(type, payload)``. ``closed`` is set when
    the server closes the connection; answers still owed then fail with
    ``ConnectionError``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder(16 * 1024 * 1024)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.closed = asyncio.Event()
        #: The session token of this connection's last successful login.
        self.token: str | None = None
        self.user_id: int | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reading = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, server: ServerProcess) -> Wire:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        return cls(reader, writer)

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return
                for payload in self.decoder.feed(data):
                    frame = decode_json(payload)
                    if frame["type"] == "response":
                        future = self._pending.pop(frame["payload"]["id"], None)
                        if future is not None and not future.done():
                            future.set_result(frame["payload"])
                    else:
                        self.events.append((frame["type"], frame["payload"]))
        except (ConnectionError, OSError):
            return
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed before the answer"))
            self._pending.clear()

    def request(
        self, action: str, data: dict[str, Any] | None = None, token: str | None = _AUTO
    ) -> asyncio.Future[dict[str, Any]]:
        """Send one request now (under this connection's token unless told);
        the future resolves to its response payload."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        # A connection cut before the answer is a normal outcome here, not a warning.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        if self.closed.is_set():
            future.set_exception(ConnectionError("connection closed"))
            return future
        request_id = next(self._ids)
        self._pending[request_id] = future
        self.writer.write(
            request_frame(action, request_id, data, self.token if token is _AUTO else token)
        )
        return future

    async def call(
        self,
        action: str,
        data: dict[str, Any] | None = None,
        token: str | None = _AUTO,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return await self.request(action, data, token)

    async def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        answer = await self.call("login", {"username": username, "password": password}, None)
        if answer["code"] == "ok":
            self.token = answer["data"]["auth_token"]
            self.user_id = answer["data"]["user_id"]
        return answer

    def kicked(self) -> list[str]:
        return [p["reason"] for kind, p in self.events if kind == "kicked"]

    def messages(self) -> list[dict[str, Any]]:
        return [p for kind, p in self.events if kind == "message"]

    async def wait_closed(self, timeout: float = 10.0) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self.closed.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._reading


@pytest.fixture
async def wires() -> AsyncIterator[Callable[[ServerProcess], Awaitable[Wire]]]:
    """``await wires(server)`` -> a new ``Wire``; every one is closed after the test."""
    made: list[Wire] = []

    async def make(server: ServerProcess) -> Wire:
        wire = await Wire.open(server)
        made.append(wire)
        return wire

    yield make
    await asyncio.gather(*(w.close() for w in made))


Wires = Callable[[ServerProcess], Awaitable[Wire]]


# --- helpers ----------------------------------------------------------------------------


async def later(delay: float, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``func(*args)`` after ``delay`` seconds: one side of a race."""
    await asyncio.sleep(delay)
    return await func(*args)


def code(answer: dict[str, Any]) -> str:
    return answer["code"]


async def register(server: ServerProcess, wires: Wires, names: list[str]) -> None:
    """Register ``names`` (password ``PASSWORD``) over a few connections."""
    conns = [await wires(server) for _ in range(min(4, len(names)))]

    async def some(wire: Wire, mine: list[str]) -> None:
        for name in mine:
            answer = await wire.call("reg", {"username": name, "password": PASSWORD}, None)
            assert code(answer) == "ok", (name, answer)

    await asyncio.gather(*(some(w, names[i :: len(conns)]) for i, w in enumerate(conns)))


async def logged_in(server: ServerProcess, wires: Wires, name: str) -> Wire:
    wire = await wires(server)
    answer = await wire.login(name)
    assert code(answer) == "ok", (name, answer)
    return wire


async def make_admin(server: ServerProcess, name: str) -> None:
    users = table("users")
    await db_execute(
        server.database_url, update(users).where(users.c.username == name).values(is_admin=True)
    )


async def rows(server: ServerProcess, statement: Any) -> list[Any]:
    found = await db_execute(server.database_url, statement)
    assert found is not None
    return found


async def online_names(admin: Wire) -> list[str]:
    answer = await admin.call("allusers", {"online_only": True})
    assert code(answer) == "ok", answer
    return [u["username"] for u in answer["data"]["users"]]


async def members_of(server: ServerProcess, group_id: int) -> list[tuple[int, str]]:
    m = table("conversation_members")
    return [
        (r[0], r[1])
        for r in await rows(
            server, select(m.c.user_id, m.c.role).where(m.c.conversation_id == group_id)
        )
    ]


async def synced(*conns: Wire) -> None:
    """Every event the server wrote to ``conns`` before now has arrived: a
    connection's frames go out in order, so a ping's answer comes after them."""
    for wire in conns:
        assert code(await wire.call("ping", None, None)) == "ok"


def on_postgresql(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "postgresql"


# --- 1. one live session per user ---------------------------------------------------------


async def test_concurrent_logins_leave_exactly_one_live_session(
    server: ServerProcess, wires: Wires
) -> None:
    """Eight connections log in as one user at once, plus the session the
    last round left: afterwards one holds the session, every other that was
    answered ``ok`` got ``kicked``/``logged_in_elsewhere`` and was closed, the
    user is online once, and every older token is refused. (The stored
    ``users.auth_token`` may still name a kicked session on PostgreSQL:
    ``tests/unit/test_races_unit.py`` forces that interleaving.)"""
    rng = rng_for("logins")
    await register(server, wires, ["root", "solo"])
    await make_admin(server, "root")
    root = await logged_in(server, wires, "root")
    live: Wire | None = None
    old_tokens: list[str] = []
    for rnd in range(20):
        racers = [await wires(server) for _ in range(8)]
        delays = [rng.uniform(0, 0.03) for _ in racers]
        answers = await asyncio.gather(
            *(later(d, w.login, "solo") for w, d in zip(racers, delays, strict=True))
        )
        # Logins still being checked hold places in the per-name limit, so
        # past ``login_max_failures`` at once the rest may be told to retry.
        assert {code(a) for a in answers} <= {"ok", "rate_limited"}, (rnd, answers)
        assert "ok" in [code(a) for a in answers], (rnd, answers)
        refused = [w for w, a in zip(racers, answers, strict=True) if code(a) != "ok"]
        holders = [w for w in racers if w not in refused] + ([live] if live else [])
        # A request under its own token: answered only on the live session;
        # a kicked connection is closed and answers nothing.
        probes = await asyncio.gather(*(w.call("friends") for w in holders), return_exceptions=True)
        alive = [w for w, p in zip(holders, probes, strict=True) if isinstance(p, dict)]
        assert len(alive) == 1, (rnd, probes)
        assert code(probes[holders.index(alive[0])]) == "ok", (rnd, probes)
        for wire in holders:
            if wire is alive[0]:
                continue
            assert await wire.wait_closed(), rnd
            assert wire.kicked() == ["logged_in_elsewhere"], (rnd, wire.events)
            assert wire.token is not None
            old_tokens.append(wire.token)
        for wire in refused:  # never had a session: still open, nothing to kick
            assert code(await wire.call("friends", None, None)) == "not_authenticated", rnd
            assert wire.kicked() == [], (rnd, wire.events)
        live = alive[0]
        assert live.kicked() == [], (rnd, live.events)
        assert (await online_names(root)).count("solo") == 1, rnd
        # Every older token is dead, on the live connection and on a fresh one.
        stranger = await wires(server)
        dead = await asyncio.gather(
            *(live.call("friends", None, t) for t in old_tokens),
            *(stranger.call("friends", None, t) for t in old_tokens[-6:]),
        )
        assert {code(a) for a in dead} == {"not_authenticated"}, rnd
        await stranger.close()
        assert code(await live.call("friends")) == "ok", rnd


# --- 2. one account per name family -------------------------------------------------------

#: Names that compare equal (case, width) or look alike (``I`` for ``l``,
#: Cyrillic for Latin); ``{}`` takes a round's tag.
FAMILIES = (
    ("zed{}", "Zed{}", "ZED{}", "zEd{}", "ｚｅｄ{}", "ＺＥＤ{}"),
    ("bill{}", "biII{}", "bilI{}", "Bill{}", "bi1l{}", "ｂｉｌｌ{}"),
    ("coco{}", "Coco{}", "сосо{}", "Сосо{}"),
)


async def test_concurrent_registrations_make_one_account_per_family(
    server: ServerProcess, wires: Wires
) -> None:
    """Every name of three families, each sent twice, from twenty connections
    at once: one registration per family wins, every other is ``user_exists``,
    and the users table holds one row per family."""
    rng = rng_for("registrations")
    users = table("users")
    conns = [await wires(server) for _ in range(20)]
    rounds = 20
    for rnd in range(rounds):
        tag = f"_{rnd}"
        families = [[name.format(tag) for name in family] for family in FAMILIES]
        skeletons = []
        for family in families:  # the families are what the test says they are
            forms = {check_new_username(name)[2] for name in family}
            assert len(forms) == 1, family
            skeletons.append(forms.pop())
        assert len(set(skeletons)) == len(families)
        attempts = [(f, name) for f, family in enumerate(families) for name in family * 2]
        rng.shuffle(attempts)
        delays = [rng.uniform(0, 0.02) for _ in attempts]
        answers = await asyncio.gather(
            *(
                later(d, conns[i % len(conns)].call, "reg", {"username": n, "password": PASSWORD})
                for i, ((_, n), d) in enumerate(zip(attempts, delays, strict=True))
            )
        )
        for f, family in enumerate(families):
            mine = [a for (g, _), a in zip(attempts, answers, strict=True) if g == f]
            won = [a for a in mine if code(a) == "ok"]
            assert len(won) == 1, (rnd, family, mine)
            assert {code(a) for a in mine if a is not won[0]} == {"user_exists"}, (rnd, mine)
            stored = await rows(
                server, select(users.c.id).where(users.c.username_skeleton == skeletons[f])
            )
            assert [r[0] for r in stored] == [won[0]["data"]["user_id"]], (rnd, family, stored)
    (count,) = await rows(server, select(func.count()).select_from(users))
    assert count[0] == 1 + rounds * len(FAMILIES)  # and the reserved ``system``


# --- 3. group membership ------------------------------------------------------------------


async def test_concurrent_joins_never_overfill_a_group(
    server: ServerProcess,
    server_factory: ServerFactory,
    wires: Wires,
    request: pytest.FixtureRequest,
) -> None:
    """Ten users join a public group of ``max_members`` 2..8 at once: exactly
    ``max_members - 1`` get in (the owner holds a place), the rest get
    ``group_full``; the member rows, the join answers and the ``groups``
    total all agree, and nobody is a member twice."""
    rng = rng_for("joins")
    names = [f"joiner{i}" for i in range(10)]
    await register(server, wires, ["owner", *names])
    owner = await logged_in(server, wires, "owner")
    joiners = await asyncio.gather(*(logged_in(server, wires, n) for n in names))
    for rnd in range(20):
        size = rng.randint(2, 8)
        made = await owner.call(
            "newgroup", {"name": f"room{rnd}", "public": True, "max_members": size}
        )
        assert code(made) == "ok", made
        gid = made["data"]["group_id"]
        delays = [rng.uniform(0, 0.03) for _ in joiners]
        answers = await asyncio.gather(
            *(
                later(d, w.call, "joingroup", {"group_id": gid})
                for w, d in zip(joiners, delays, strict=True)
            )
        )
        codes = [code(a) for a in answers]
        assert set(codes) <= {"ok", "group_full"}, (rnd, answers)
        assert codes.count("ok") == size - 1, (rnd, size, codes)
        assert all(a["data"]["total"] <= size for a in answers if code(a) == "ok"), (rnd, answers)
        members = [uid for uid, _ in await members_of(server, gid)]
        assert len(members) == len(set(members)) == size, (rnd, size, members)
        expected = {owner.user_id} | {
            w.user_id for w, a in zip(joiners, answers, strict=True) if code(a) == "ok"
        }
        assert set(members) == expected, rnd
        listed = await owner.call("groups")
        (row,) = [g for g in listed["data"]["groups"] if g["group_id"] == gid]
        assert row["total"] == size, (rnd, row)
        assert code(await owner.call("delgroup", {"group_id": gid})) == "ok"


async def test_join_and_invites_of_one_user_make_one_membership(
    server: ServerProcess,
    server_factory: ServerFactory,
    wires: Wires,
    request: pytest.FixtureRequest,
) -> None:
    """Each of six users joins a public group while the owner and a group
    admin invite them, all at once: one of the three gets each user in, the
    other two get ``already_member``, and each user has one member row."""
    rng = rng_for("join-invite")
    names = [f"guest{i}" for i in range(6)]
    await register(server, wires, ["owner", "deputy", *names])
    owner = await logged_in(server, wires, "owner")
    deputy = await logged_in(server, wires, "deputy")
    guests = await asyncio.gather(*(logged_in(server, wires, n) for n in names))
    for rnd in range(15):
        made = await owner.call("newgroup", {"name": f"hall{rnd}", "public": True})
        gid = made["data"]["group_id"]
        deputy_in = {"group_id": gid, "username": "deputy"}
        assert code(await owner.call("addgroupuser", deputy_in)) == "ok"
        role = {"group_id": gid, "username": "deputy", "role": "admin"}
        assert code(await owner.call("setgrouprole", role)) == "ok"
        sides = []
        for name, guest in zip(names, guests, strict=True):
            invite = {"group_id": gid, "username": name}
            sides += [
                (name, guest.call, "joingroup", {"group_id": gid}),
                (name, owner.call, "addgroupuser", invite),
                (name, deputy.call, "addgroupuser", invite),
            ]
        rng.shuffle(sides)
        delays = [rng.uniform(0, 0.03) for _ in sides]
        answers = await asyncio.gather(
            *(later(d, call, *args) for (_, call, *args), d in zip(sides, delays, strict=True))
        )
        for name in names:
            mine = sorted(code(a) for (n, *_), a in zip(sides, answers, strict=True) if n == name)
            assert mine == ["already_member", "already_member", "ok"], (rnd, name, mine)
        members = [uid for uid, _ in await members_of(server, gid)]
        assert len(members) == len(set(members)) == 2 + len(names), (rnd, members)
        assert code(await owner.call("delgroup", {"group_id": gid})) == "ok"


async def test_invite_kick_and_leave_of_one_member_end_consistent(
    server: ServerProcess, wires: Wires
) -> None:
    """The owner invites a user while a group admin removes them and they
    leave, while another member keeps talking: the user ends a member (one
    row) or not, as one of the answers explains; their ``groups``, their
    right to send and what they receive agree with the member rows; and once
    removed they get none of the messages sent after."""
    rng = rng_for("invite-kick-leave")
    await register(server, wires, ["owner", "deputy", "target", "talker"])
    owner, deputy, target, talker = await asyncio.gather(
        *(logged_in(server, wires, n) for n in ("owner", "deputy", "target", "talker"))
    )
    gid = (await owner.call("newgroup", {"name": "club"}))["data"]["group_id"]
    for name in ("deputy", "talker"):
        assert code(await owner.call("addgroupuser", {"group_id": gid, "username": name})) == "ok"
    role = {"group_id": gid, "username": "deputy", "role": "admin"}
    assert code(await owner.call("setgrouprole", role)) == "ok"
    who = {"group_id": gid, "username": "target"}
    was_member = False
    ends: set[bool] = set()
    for rnd in range(25):
        start = rng.random() < 0.5
        if start != was_member:
            action = "addgroupuser" if start else "delgroupuser"
            assert code(await owner.call(action, who)) == "ok", rnd
        sides = [
            (owner.call, "addgroupuser", who),
            (deputy.call, "delgroupuser", who),
            (target.call, "leavegroup", {"group_id": gid}),
            (talker.call, "sendgroup", {"group_id": gid, "text": f"during {rnd}"}),
        ]
        delays = [rng.uniform(0, 0.03) for _ in sides]
        invited, kicked, left, said = await asyncio.gather(
            *(later(d, call, *args) for (call, *args), d in zip(sides, delays, strict=True))
        )
        assert code(invited) in {"ok", "already_member"}, (rnd, invited)
        assert code(kicked) in {"ok", "not_member"}, (rnd, kicked)
        assert code(left) in {"ok", "not_member"}, (rnd, left)
        assert code(said) == "ok", (rnd, said)
        rows_of_target = [r for r in await members_of(server, gid) if r[0] == target.user_id]
        assert len(rows_of_target) <= 1, (rnd, rows_of_target)
        member = bool(rows_of_target)
        answers = (invited, kicked, left)
        if member:
            assert rows_of_target[0][1] == "member", (rnd, rows_of_target)
            assert start or code(invited) == "ok", (rnd, start, answers)
        else:
            assert not start or "ok" in (code(kicked), code(left)), (rnd, start, answers)
        mine = await target.call("groups")
        assert (gid in [g["group_id"] for g in mine["data"]["groups"]]) == member, rnd
        own = await target.call("sendgroup", {"group_id": gid, "text": f"mine {rnd}"})
        assert code(own) == ("ok" if member else "not_member"), (rnd, member, own)
        after = await talker.call("sendgroup", {"group_id": gid, "text": f"after {rnd}"})
        assert code(after) == "ok", (rnd, after)
        await synced(target, owner)
        message_id = after["data"]["message_id"]
        assert [m["message_id"] for m in owner.messages()].count(message_id) == 1, rnd
        got = [m["message_id"] for m in target.messages()].count(message_id)
        assert got == (1 if member else 0), (rnd, member, answers)
        was_member = member
        ends.add(member)
    assert ends == {True, False}  # both ends happened, or the rounds raced nothing


# --- 4. friends -----------------------------------------------------------------------------


async def test_mutual_adds_make_one_friendship(
    server: ServerProcess, server_factory: ServerFactory, wires: Wires
) -> None:
    """Four pairs per round, each side adding the other at once: one ``ok``
    and one ``already_friends`` per pair, both directions stored once, and
    only the side that was added gets a ``friend_added`` notice, once.
    (On PostgreSQL the two adds once crossed and deadlocked; the rows now go
    in one order whoever adds, and the next test forces that interleaving.)"""
    rng = rng_for("friends")
    friends = table("user_friends")
    rounds, pairs = 10, 4
    names = [f"f{r}_{p}{side}" for r in range(rounds) for p in range(pairs) for side in "ab"]
    await register(server, wires, names)
    for rnd in range(rounds):
        conns = {
            n: w
            for n, w in zip(
                names[rnd * pairs * 2 : (rnd + 1) * pairs * 2],
                await asyncio.gather(
                    *(
                        logged_in(server, wires, n)
                        for n in names[rnd * pairs * 2 : (rnd + 1) * pairs * 2]
                    )
                ),
                strict=True,
            )
        }
        couples = [(f"f{rnd}_{p}a", f"f{rnd}_{p}b") for p in range(pairs)]
        sides = [(x, y) for a, b in couples for x, y in ((a, b), (b, a))]
        delays = [rng.uniform(0, 0.03) for _ in sides]
        answers = await asyncio.gather(
            *(
                later(d, conns[x].call, "add", {"username": y})
                for (x, y), d in zip(sides, delays, strict=True)
            )
        )
        outcome = {side: code(a) for side, a in zip(sides, answers, strict=True)}
        await synced(*conns.values())
        for a, b in couples:
            codes = sorted((outcome[a, b], outcome[b, a]))
            assert codes == ["already_friends", "ok"], (rnd, a, b, codes)
            ida, idb = conns[a].user_id, conns[b].user_id
            stored = await rows(
                server,
                select(friends.c.user_id_a, friends.c.user_id_b).where(
                    friends.c.user_id_a.in_([ida, idb])
                ),
            )
            assert sorted(stored) == sorted([(ida, idb), (idb, ida)]), (rnd, a, b, stored)
            for me, other in ((a, b), (b, a)):
                notices = [
                    m["notice"]["username"]
                    for m in conns[me].messages()
                    if (m.get("notice") or {}).get("kind") == "friend_added"
                ]
                expected = [other] if outcome[other, me] == "ok" else []
                assert notices == expected, (rnd, me, notices, outcome)


async def waiting_for_locks(database_url: str, count: int, timeout: float = 10.0) -> None:
    """Until ``count`` sessions of this database wait for a lock (PostgreSQL)."""
    engine = create_async_engine(database_url)
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    try:
        async with asyncio.timeout(timeout):
            while True:
                async with engine.connect() as conn:  # a new snapshot of the view each time
                    if (await conn.execute(query)).scalar_one() >= count:
                        return
                await asyncio.sleep(0.01)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_mutual_adds_held_after_their_first_row_make_one_friendship(
    server: ServerProcess,
    server_factory: ServerFactory,
    wires: Wires,
    request: pytest.FixtureRequest,
) -> None:
    """The interleaving the race above reaches only now and then, forced: a
    transaction of the test holds the two users' rows (``FOR UPDATE``), so
    both adds stop at the foreign-key check of their first inserted row;
    once both wait it commits. Still one ``ok``, one ``already_friends``,
    and both directions stored once."""
    # Forced with PostgreSQL row locks only: SQLite runs one write at a time.
    users, friends = table("users"), table("user_friends")
    await register(server, wires, ["ann", "ben"])
    ann, ben = await logged_in(server, wires, "ann"), await logged_in(server, wires, "ben")
    ids = [ann.user_id, ben.user_id]
    holder = create_async_engine(server.database_url)
    try:
        async with holder.begin() as hold:
            await hold.execute(select(users.c.id).where(users.c.id.in_(ids)).with_for_update())
            adds = [
                ann.request("add", {"username": "ben"}),
                ben.request("add", {"username": "ann"}),
            ]
            await waiting_for_locks(server.database_url, 2)
    finally:
        await holder.dispose()
    answers = await asyncio.gather(*adds)
    assert sorted(code(a) for a in answers) == ["already_friends", "ok"], answers
    stored = await rows(
        server, select(friends.c.user_id_a, friends.c.user_id_b).where(friends.c.user_id_a.in_(ids))
    )
    assert sorted(stored) == sorted([(ids[0], ids[1]), (ids[1], ids[0])]), stored


# --- 5. idempotent resends ------------------------------------------------------------------


async def test_resends_with_one_client_msg_id_are_stored_once(
    server: ServerProcess, wires: Wires
) -> None:
    """The same ``send`` / ``sendgroup`` pipelined six times, then the sender's
    connection cut (closed, or replaced by a new login while still sending,
    or after its answers) and six more resends on the new session: one
    message row, every answer carries the same conversation, seq and
    message id, and the recipient gets it once."""
    rng = rng_for("resends")
    messages = table("messages")
    await register(server, wires, ["alice", "bob"])
    alice = await logged_in(server, wires, "alice")
    bob = await logged_in(server, wires, "bob")
    assert code(await alice.call("add", {"username": "bob"})) == "ok"
    gid = (await alice.call("newgroup", {"name": "pair"}))["data"]["group_id"]
    assert code(await alice.call("addgroupuser", {"group_id": gid, "username": "bob"})) == "ok"
    cuts = itertools.cycle(("close", "relogin", "answered"))
    for rnd in range(18):
        cmid = f"resend-{rnd}"
        if rnd % 2:
            action, data = "sendgroup", {"group_id": gid, "text": f"g{rnd}", "client_msg_id": cmid}
        else:
            action, data = "send", {"to": "bob", "text": f"d{rnd}", "client_msg_id": cmid}
        cut = next(cuts)
        first = []
        for _ in range(6):
            first.append(alice.request(action, data))
            await asyncio.sleep(rng.uniform(0, 0.004))
        if cut == "answered":
            await asyncio.gather(*first)
        elif cut == "close":
            await asyncio.sleep(rng.uniform(0, 0.01))
            await alice.close()
        old, alice = alice, await wires(server)
        assert code(await alice.login("alice")) == "ok", rnd
        if cut == "relogin":
            assert await old.wait_closed(), rnd
        second = []
        for _ in range(6):
            second.append(alice.request(action, data))
            await asyncio.sleep(rng.uniform(0, 0.004))
        answers = [
            a
            for a in await asyncio.gather(*first, *second, return_exceptions=True)
            if isinstance(a, dict)
        ]
        assert len(answers) >= len(second), rnd
        assert {code(a) for a in answers} == {"ok"}, (rnd, cut, answers)
        places = {(a["data"]["conversation_id"], a["data"]["seq"]) for a in answers}
        ids = {a["data"]["message_id"] for a in answers}
        assert len(places) == len(ids) == 1, (rnd, cut, answers)
        stored = await rows(
            server,
            select(messages.c.id, messages.c.conversation_id, messages.c.seq).where(
                messages.c.sender_id == alice.user_id, messages.c.client_msg_id == cmid
            ),
        )
        assert [(r[0], (r[1], r[2])) for r in stored] == [(ids.pop(), places.pop())], (rnd, stored)
        await synced(bob)
        got = [m for m in bob.messages() if m.get("text") == data["text"]]
        assert len(got) == 1, (rnd, cut, got)
    # Each conversation's seqs stayed gap-free: no resend took a number.
    for cid, seqs in itertools.groupby(
        await rows(
            server,
            select(messages.c.conversation_id, messages.c.seq)
            .where(messages.c.sender_id == alice.user_id)
            .order_by(messages.c.conversation_id, messages.c.seq),
        ),
        key=lambda r: r[0],
    ):
        numbers = [r[1] for r in seqs]
        assert numbers == list(range(1, len(numbers) + 1)), (cid, numbers)


# --- 6. blockuser against a login in progress ------------------------------------------------


async def test_blockuser_racing_a_login_leaves_the_user_offline(
    server_factory: Callable[..., ServerProcess], wires: Wires
) -> None:
    """With production-cost hashing (tens of ms), a user logs in while an
    admin blocks them after a random delay spanning the whole login: once
    ``blockuser`` has answered the user is not online, and a login that
    was answered ``ok`` gets ``kicked``/``blocked`` and its connection closed;
    one answered otherwise is ``user_blocked``."""
    rng = rng_for("block-login")
    server = server_factory(scrypt_n=16384)
    await register(server, wires, ["root", "victim"])
    await make_admin(server, "root")
    root = await logged_in(server, wires, "root")
    began = time.monotonic()
    probe = await logged_in(server, wires, "victim")
    login_time = time.monotonic() - began
    await probe.close()
    outcomes: dict[str, int] = {"ok": 0, "user_blocked": 0}
    for rnd in range(25):
        victim = await wires(server)
        login = asyncio.ensure_future(victim.login("victim"))
        await asyncio.sleep(rng.uniform(0, 2.5 * login_time))
        blocked = await root.call("blockuser", {"username": "victim"})
        assert code(blocked) == "ok", (rnd, blocked)
        assert "victim" not in await online_names(root), (rnd, login.done())
        answer = await login
        assert code(answer) in outcomes, (rnd, answer)
        outcomes[code(answer)] += 1
        if code(answer) == "ok":
            assert await victim.wait_closed(), rnd
            assert victim.kicked() == ["blocked"], (rnd, victim.events)
        assert "victim" not in await online_names(root), rnd
        assert code(await root.call("unblockuser", {"username": "victim"})) == "ok"
        await victim.close()
    # Both orders happened, or the test raced nothing.
    assert all(outcomes.values()), outcomes


# --- 7. the login limits under parallel guesses ---------------------------------------------


async def test_parallel_wrong_logins_are_limited(
    server_factory: Callable[..., ServerProcess], wires: Wires
) -> None:
    """200 wrong passwords for one name on 200 connections at once: at most
    ``login_max_failures`` (5) are checked (``bad_password``), the rest are
    ``rate_limited`` with ``retry_after``; then, on a fresh server, 100 wrong
    logins for 100 names from one address: at most
    ``login_max_failures_per_ip`` (20) are checked."""
    rng = rng_for("limits")
    server = server_factory()
    known = [f"known{i}" for i in range(50)]
    await register(server, wires, ["target", *known])

    async def storm(srv: ServerProcess, names: list[str]) -> list[dict[str, Any]]:
        conns = await asyncio.gather(*(wires(srv) for _ in names))
        delays = [rng.uniform(0, 0.02) for _ in names]
        return await asyncio.gather(
            *(later(d, w.login, n, WRONG) for w, n, d in zip(conns, names, delays, strict=True))
        )

    def limited(answers: list[dict[str, Any]], checked: set[str], most: int) -> None:
        codes = [code(a) for a in answers]
        assert set(codes) <= checked | {"rate_limited"}, codes
        assert 1 <= len(answers) - codes.count("rate_limited") <= most, codes
        for a in answers:
            if code(a) == "rate_limited":
                assert a["data"]["retry_after"] > 0, a

    limited(await storm(server, ["target"] * 200), {"bad_password"}, 5)
    right = await (await wires(server)).login("target")
    assert code(right) == "rate_limited", right  # even the right password, while limited

    fresh = server_factory()  # the limits live in the process: a new one starts clean
    names = known + [f"nobody{i}" for i in range(50)]
    rng.shuffle(names)
    limited(await storm(fresh, names), {"bad_password", "no_such_user"}, 20)
