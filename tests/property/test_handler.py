"""The request handler under arbitrary requests, through the real services.

One ``ChatServer`` per module, on a temporary SQLite database, built by its
own ``start()`` (the listener is opened on 127.0.0.1, port 0, and not used).
Requests are fed to real ``Connection`` objects attached to an in-memory
transport, so each answer can be read back as frames. The world the
requests meet: ``alice`` (a server admin, owner of a group ``bob`` is in),
``bob`` (her friend, with one message from her), ``carol`` and ``dave``
(strangers); alice and bob stay logged in, one more connection never logs
in. Whatever an example breaks (a logout, a kick, a deleted group) is
repaired before the next one.

Properties, for arbitrary JSON in every envelope field and in every data
field of every action in ``ServerMessageHandler.actions`` (wrong types,
2**70 and -2**70, floats, NaN and Infinity tokens, nesting 1000 deep, long
strings, unpaired surrogate escapes, NUL, empty strings, unknown fields):

- nothing is logged at ERROR and no answer is ``internal_error``;
- every request gets exactly one response, with a status in ok/fail/error
  and a code of docs/protocol.md, its id echoed when it could be read; the
  only other outcome is the documented framing error, ``bad_payload`` for
  a payload that is not a JSON object, which closes the connection;
- a refused request (``fail`` or ``error``) changes no row of ``users``,
  ``conversations``, ``conversation_members``, ``messages`` or
  ``user_friends``;
- field errors are sentences (no msgspec wording such as "of length <=" or
  "matching regex").

Each example runs to completion on a module-level event loop (the test
functions are synchronous), so Hypothesis and pytest-asyncio never share a loop.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
import sqlite3
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2sp.common.message import decode_json, request_frame
from p2sp.common.protocol import FrameDecoder, encode_frame
from p2sp.server.config import Settings
from p2sp.server.handler import HistoryActions, ServerMessageHandler
from p2sp.server.managers.connection import Connection
from p2sp.server.managers.connections import ConnectionManager
from p2sp.server.server import ChatServer

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse 1"

#: Every code docs/protocol.md gives a response (``internal_error`` is
#: documented too, and is what the properties forbid).
RESPONSE_CODES = frozenset(
    {
        "ok",
        "invalid_request",
        "unknown_action",
        "not_authenticated",
        "bad_payload",
        "internal_error",
        "user_exists",
        "weak_password",
        "no_such_user",
        "bad_password",
        "user_blocked",
        "rate_limited",
        "already_friends",
        "cannot_add_self",
        "not_friends",
        "cannot_send_to_self",
        "group_exists",
        "group_limit",
        "no_such_group",
        "not_permitted",
        "already_member",
        "group_full",
        "not_member",
        "cannot_kick_self",
        "group_blocked",
        "no_such_conversation",
        "no_such_message",
        "edit_window_passed",
        "retract_window_passed",
        "message_retracted",
    }
)
#: Codes of the ``error`` event that closes a connection (docs/protocol.md, "Framing errors
#: (connection closed)"); a well-framed request can only meet ``bad_payload``.
FRAMING_CODES = frozenset({"bad_magic", "bad_checksum", "bad_length", "bad_payload"})
TABLES = ("users", "conversations", "conversation_members", "messages", "user_friends")
#: Actions that only read: an ``ok`` from them leaves nothing to repair.
READ_ONLY = frozenset({"ping", "friends", "groups", "publicgroups", "allusers", "allgroup"})
#: msgspec's own wording, which the server rewrites as sentences.
RAW_VALIDATOR = re.compile(r"matching regex|of length [<>]=|Traceback|Error\(")


def _action_table() -> dict[str, type]:
    """``ServerMessageHandler.actions``: the table is built in its constructor
    and needs no service to be built."""
    none: Any = None
    handler = ServerMessageHandler(
        none,
        none,
        none,
        none,
        none,
        none,
        none,
        history=HistoryActions(none, none, none, none),
    )
    return {name: action.data_type for name, action in handler.actions.items()}


ACTIONS = _action_table()


def test_documented_codes_are_in_the_protocol_page() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text("utf-8")
    missing = sorted(c for c in RESPONSE_CODES | FRAMING_CODES if f"`{c}`" not in text)
    assert not missing


def test_every_registered_action_is_fuzzed() -> None:
    # The strategies below draw data from each action's Struct; a new action
    # is covered as soon as it is registered.
    assert {"ping", "login", "send", "ack", "newgroup", "blockgroup"} <= set(ACTIONS)
    assert {"history", "conversations", "edit", "retract", "read", "search"} <= set(ACTIONS)
    for kind in ACTIONS.values():
        assert issubclass(kind, msgspec.Struct)


# --- JSON text, written by hand ------------------------------------------------------
#
# The strategies write JSON text themselves, to send what no Python value
# stands for (1e400, -0, repeated keys, a lone surrogate escape, nesting far
# past the limit) and what json.dumps would not write unasked (NaN tokens).
# Values that depend on the world (tokens, ids) are markers resolved when the
# example runs: NUL never appears raw in generated JSON text.

TOKEN = "\x00TOKEN\x00"  # the token of the connection the request is sent on
OTHER_TOKEN = "\x00OTHER\x00"  # another live session's token
GROUP = "\x00GROUP\x00"  # the group alice owns and bob is in
CONV = "\x00CONV\x00"  # alice and bob's direct conversation
SEQ = "\x00SEQ\x00"  # the last seq of that conversation delivered to bob


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


NUMBERS = [
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "10",
    str(2**31),
    str(2**53),
    str(2**53 + 1),
    str(2**63 - 1),
    str(2**63),
    str(2**64),
    str(2**70),
    str(-(2**70)),
    "1.5",
    "-0.0",
    "1e400",
    "-1e400",
    "1e-400",
    "1E2",
]
#: Tokens the server refuses as "not JSON" (``bad_payload``, the connection closes).
HOSTILE = ["NaN", "Infinity", "-Infinity", '"\\ud800"', '"\\udfff"', '"x\\ud800y"']
STRINGS = [
    '""',
    '" "',
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud83d\\ude00"',
    '"\\n"',
    '"\\u007f"',
    '"\\\\"',
    '"Ä"',
    '"张三"',
    _dump("x" * 33),
    _dump("x" * 65),
    _dump("x" * 129),
    _dump("x" * 1001),
    _dump("x" * 4097),
    _dump("y" * 200_000),
]

T = TypeVar("T")


def weighted(*options: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """``one_of`` with weights (shrinks towards the first option)."""
    total = sum(w for w, _ in options)

    def pick(i: int) -> st.SearchStrategy[T]:
        for w, strategy in options:
            if i < w:
                return strategy
            i -= w
        raise AssertionError(i)

    return st.integers(0, total - 1).flatmap(pick)


scalars = weighted(
    (3, st.sampled_from(["null", "true", "false"])),
    (3, st.sampled_from(NUMBERS)),
    (2, st.integers().map(str)),
    (1, st.floats(allow_nan=False, allow_infinity=False).map(repr)),
    (3, st.sampled_from(STRINGS)),
    (3, st.text(max_size=40).map(_dump)),
    (1, st.text(max_size=20).map(json.dumps)),  # ASCII with \u escapes
    (1, st.sampled_from(HOSTILE)),
)
keys = st.one_of(
    st.sampled_from(
        sorted(
            {f.encode_name for kind in ACTIONS.values() for f in msgspec.structs.fields(kind)}
            | {"id", "type", "data", "payload", "auth_token", "timestamp", ""}
        )
    ),
    st.text(max_size=12),
).map(_dump)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(members: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in members) + "}"


@st.composite
def deep(draw: st.DrawFn) -> str:
    """Arrays and objects nested around the depth limit, and far past it."""
    levels = draw(st.sampled_from([2, 28, 29, 30, 31, 32, 33, 200, 1000]))
    inner = draw(scalars)
    opens, closes = [], []
    for _ in range(levels):
        if draw(st.booleans()):
            opens.append("[")
            closes.append("]")
        else:
            opens.append('{"a":')
            closes.append("}")
    return "".join(opens) + inner + "".join(reversed(closes))


json_values = weighted(
    (
        15,
        st.recursive(
            scalars,
            lambda children: st.one_of(
                st.lists(children, max_size=4).map(_array),
                st.lists(st.tuples(keys, children), max_size=4).map(_object),
            ),
            max_leaves=8,
        ),
    ),
    (1, deep()),
)


def _names(*names: str) -> list[str]:
    return [_dump(n) for n in names]


#: Values a field's name makes plausible (JSON text), so requests also get past validation.
PLAUSIBLE: dict[str, list[str]] = {
    "username": _names("alice", "bob", "carol", "dave", "system", "ALICE", "nobody", "x" * 32),
    "password": _names(PASSWORD, "short", "wrong password", "p" * 128, "p" * 129, "p" * 1025),
    "to": _names("alice", "bob", "carol", "dave", "system", "nobody"),
    "text": _names("hi", "a" * 4096, "a" * 4097),
    "client_msg_id": _names("c1", "c" * 64, "c" * 65),
    "group_id": [GROUP, "1", "2", "3", "999999", str(2**63 - 1)],
    "name": _names("club", "public", "newgroup", "a\nb", "n" * 64, "n" * 65),
    "creator": _names("alice", "system", "bob", "nobody"),
    "public": ["true", "false"],
    "description": _names("about", "d" * 1000, "d" * 1001),
    "max_members": ["2", "1", "50", "5000", "5001"],
    "role": _names("admin", "member", "owner", "ADMIN"),
    "online_only": ["true", "false"],
}


@st.composite
def ack_items(draw: st.DrawFn) -> str:
    items = draw(
        st.lists(
            st.one_of(
                st.builds(
                    lambda c, s: _object([('"conversation_id"', c), ('"seq"', s)]),
                    st.one_of(st.just(CONV), st.sampled_from(["1", "0", str(2**63)]), json_values),
                    st.one_of(st.just(SEQ), st.sampled_from(["1", "2", "999999"]), json_values),
                ),
                json_values,
            ),
            max_size=3,
        )
    )
    if draw(st.booleans()) and not items:
        return _array([_object([('"conversation_id"', CONV), ('"seq"', SEQ)])] * 1001)
    return _array(items)


def field_value(name: str) -> st.SearchStrategy[str]:
    if name == "acks":
        return weighted((2, ack_items()), (1, json_values))
    plausible = PLAUSIBLE.get(name)
    if plausible is None:
        return json_values
    return weighted((2, st.sampled_from(plausible)), (1, json_values))


@st.composite
def data_object(draw: st.DrawFn, kind: type) -> str:
    """``data`` for an action: its own fields, each present or not, plausible
    or arbitrary, plus unknown ones, in any order (a key may repeat)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # not an object at all
    members = []
    for f in msgspec.structs.fields(kind):
        if draw(st.integers(0, 4)):  # present 4 times in 5
            members.append((_dump(f.encode_name), draw(field_value(f.encode_name))))
    members += draw(st.lists(st.tuples(keys, json_values), max_size=2))
    return _object(draw(st.permutations(members)))


@dataclass
class Spec:
    """One request as sent: the JSON text (with markers) and who sends it."""

    who: str
    text: str
    request_id: int | None  # the id written, when it is a valid one
    action: str | None


senders = st.sampled_from(["alice", "alice", "bob", "bob", "anon"])
request_ids = st.one_of(st.integers(0, 2**53), st.sampled_from([0, 2**53]))


@st.composite
def action_requests(draw: st.DrawFn, action: str) -> Spec:
    """A well-formed envelope around arbitrary data for ``action``."""
    who = draw(senders)
    rid = draw(request_ids)
    body = [('"id"', str(rid)), ('"data"', draw(data_object(ACTIONS[action])))]
    token = draw(st.sampled_from([TOKEN] * 6 + [OTHER_TOKEN, None]))
    if token is not None:
        body.append(('"auth_token"', token))
    envelope = [
        ('"type"', _dump(action)),
        ('"timestamp"', draw(st.sampled_from(["0", "1700000000000"]))),
        ('"payload"', _object(draw(st.permutations(body)))),
    ]
    return Spec(who, _object(draw(st.permutations(envelope))), rid, action)


@st.composite
def envelopes(draw: st.DrawFn) -> Spec:
    """Arbitrary JSON in every envelope field, fields missing or unknown."""
    who = draw(senders)
    action = draw(st.sampled_from(sorted(ACTIONS)))
    rid = draw(request_ids)

    def maybe(plausible: str) -> str | None:
        choice = draw(st.integers(0, 5))
        if choice == 0:
            return None
        if choice == 1:
            return draw(json_values)
        return plausible

    body: list[tuple[str, str]] = []
    for key, plausible in (
        ('"id"', str(rid)),
        ('"auth_token"', TOKEN),
        ('"data"', draw(data_object(ACTIONS[action]))),
    ):
        value = maybe(plausible)
        if value is not None:
            body.append((key, value))
    body += draw(st.lists(st.tuples(keys, json_values), max_size=2))
    members: list[tuple[str, str]] = []
    for key, plausible in (
        ('"type"', _dump(action)),
        ('"timestamp"', "1700000000000"),
        ('"payload"', _object(draw(st.permutations(body)))),
    ):
        value = maybe(plausible)
        if value is not None:
            members.append((key, value))
    members += draw(st.lists(st.tuples(keys, json_values), max_size=2))
    return Spec(who, _object(draw(st.permutations(members))), None, None)


# --- the world ----------------------------------------------------------------------


class MemoryTransport(asyncio.Transport):
    """What a ``Connection`` writes, kept; ``close`` ends the connection as a socket would."""

    def __init__(self, protocol: Connection) -> None:
        super().__init__()
        self.protocol: Connection | None = protocol
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self._lost)

    def _lost(self) -> None:
        protocol, self.protocol = self.protocol, None  # as a socket, let go of it
        if protocol is not None:
            protocol.connection_lost(None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@dataclass
class Outcome:
    responses: list[dict[str, Any]]
    errors: list[dict[str, Any]]  # ``error`` events (the connection was closed)
    closed: bool


class Peer:
    """One client connection of the world, read frame by frame."""

    def __init__(self, world: World) -> None:
        settings = world.server.settings
        self.conn = Connection(
            world.server.connections,
            world.server.handler,  # type: ignore[arg-type]
            max_frame=settings.max_frame,
            send_buffer_limit=settings.send_buffer_limit,
        )
        self.transport = MemoryTransport(self.conn)
        self.conn.connection_made(self.transport)
        self.decoder = FrameDecoder(64 * 1024 * 1024)
        self.read = 0

    @property
    def alive(self) -> bool:
        return not self.conn.closing and not self.transport.closed

    def frames(self) -> list[dict[str, Any]]:
        new = bytes(self.transport.written[self.read :])
        self.read = len(self.transport.written)
        return [decode_json(p) for p in self.decoder.feed(new)]

    async def send(self, frame: bytes) -> Outcome:
        self.frames()  # forget what came before (events)
        self.conn.data_received(frame)
        await self.conn.drained()
        self.conn.flush()
        frames = self.frames()
        responses = [f["payload"] for f in frames if f["type"] == "response"]
        for _ in range(200):  # an answer that waits for a commit (never seen: drained covers it)
            if responses or not self.alive:
                break
            await asyncio.sleep(0.01)
            self.conn.flush()
            frames += self.frames()
            responses = [f["payload"] for f in frames if f["type"] == "response"]
        errors = [f["payload"] for f in frames if f["type"] == "error"]
        await asyncio.sleep(0)  # let a close reach connection_lost
        return Outcome(responses, errors, not self.alive)

    async def call(self, action: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        token = self.conn.session.token if self.conn.session else None
        out = await self.send(request_frame(action, 1, data or {}, auth_token=token))
        assert len(out.responses) == 1, out
        return out.responses[0]


class ErrorLog(logging.Handler):
    """Every record at ERROR or above, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class World:
    server: ChatServer
    db_path: Path
    peers: dict[str, Peer] = field(default_factory=dict)
    group_id: int = 0
    conversation_id: int = 0
    dirty: bool = False
    made: int = 0

    @classmethod
    async def create(cls, workdir: Path) -> World:
        db_path = workdir / "property.db"
        settings = Settings(
            host="127.0.0.1",
            port=0,
            database_url=f"sqlite+aiosqlite:///{db_path}",
            scrypt_n=2,
            login_max_failures=10**9,
            login_max_failures_per_ip=10**9,
            reg_max_per_ip=10**9,
            hash_workers=1,
            admin_poll=60,
        )
        server = ChatServer(settings)
        await server.start()
        world = cls(server, db_path)
        assert server.users is not None
        setup = Peer(world)
        for name in ("alice", "bob", "carol", "dave"):
            answer = await setup.call("reg", {"username": name, "password": PASSWORD})
            assert answer["status"] == "ok", answer
        await server.users.set_admin("alice", True)
        await world.heal(force=True)
        alice, bob = world.peers["alice"], world.peers["bob"]
        assert (await alice.call("add", {"username": "bob"}))["status"] == "ok"
        sent = await alice.call("send", {"to": "bob", "text": "hello"})
        assert sent["status"] == "ok", sent
        world.conversation_id = sent["data"]["conversation_id"]
        await world.quiesce()
        assert bob.conn.delivered.get(world.conversation_id) == sent["data"]["seq"]
        return world

    # -- keeping the world as the strategies expect it ----------------------------

    async def login(self, name: str) -> Peer:
        peer = Peer(self)
        answer = await peer.call("login", {"username": name, "password": PASSWORD})
        if answer["code"] == "user_blocked":
            admin = self.peers["alice"]
            assert (await admin.call("unblockuser", {"username": name}))["status"] == "ok"
            answer = await peer.call("login", {"username": name, "password": PASSWORD})
        assert answer["status"] == "ok", answer
        return peer

    def _replace(self, name: str, peer: Peer) -> None:
        old = self.peers.get(name)
        if old is not None and old.alive:
            old.transport.close()  # it may be logged in as someone else now
        self.peers[name] = peer

    def _logged_in(self, name: str) -> bool:
        peer = self.peers.get(name)
        return (
            peer is not None
            and peer.alive
            and peer.conn.session is not None
            and peer.conn.session.username == name
        )

    async def heal(self, force: bool = False) -> None:
        """Undo what the last example did to the fixture: sessions, blocks, the group."""
        anon = self.peers.get("anon")
        if anon is None or not anon.alive or anon.conn.session is not None:
            self._replace("anon", Peer(self))
        for name in ("alice", "bob"):
            if not self._logged_in(name):
                self._replace(name, await self.login(name))
        if self.dirty or force:
            alice = self.peers["alice"]
            for name in ("bob", "carol", "dave"):
                await alice.call("unblockuser", {"username": name})
            await self._heal_group(alice)
            for name in ("alice", "bob"):
                if not self._logged_in(name):  # a login in an example replaced the session
                    self._replace(name, await self.login(name))
            self.dirty = False
        await self.quiesce()

    async def _heal_group(self, alice: Peer) -> None:
        mine = (await alice.call("groups"))["data"]["groups"]
        for g in mine:
            if g["creator"] == "alice" and g["group_id"] != self.group_id:
                await alice.call("delgroup", {"group_id": g["group_id"]})  # group_limit
        ours = [g for g in mine if g["group_id"] == self.group_id]
        if not ours:
            self.made += 1
            made = await alice.call("newgroup", {"name": f"club{self.made}"})
            assert made["status"] == "ok", made
            self.group_id = made["data"]["group_id"]
        elif ours[0]["blocked"]:
            await alice.call("unblockgroup", {"group_id": self.group_id})
        await alice.call("addgroupuser", {"group_id": self.group_id, "username": "bob"})

    async def quiesce(self) -> None:
        """Wait for background bookkeeping (session ends, presence) to commit."""
        assert self.server.users is not None
        for _ in range(3):
            await asyncio.sleep(0)
            await self.server.users.flush()

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as db:
            return {
                t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES
            }

    # -- one example --------------------------------------------------------------

    def resolve(self, spec: Spec) -> bytes:
        peer = self.peers[spec.who]
        other = self.peers["bob" if spec.who == "alice" else "alice"]
        own = peer.conn.session.token if peer.conn.session else "no-session"
        assert other.conn.session is not None
        bob = self.peers["bob"].conn
        values = {
            TOKEN: _dump(own),
            OTHER_TOKEN: _dump(other.conn.session.token),
            GROUP: str(self.group_id),
            CONV: str(self.conversation_id),
            SEQ: str(bob.delivered.get(self.conversation_id, 1)),
        }
        text = spec.text
        for marker, value in values.items():
            text = text.replace(marker, value)
        return text.encode("utf-8")

    async def run(
        self,
        spec: Spec,
        payload: bytes | None = None,
        mutate: Callable[[bytes], bytes] | None = None,
    ) -> Outcome:
        await self.heal()
        peer = self.peers[spec.who]
        payload = self.resolve(spec) if payload is None else payload
        if mutate is not None:
            payload = mutate(payload)
        before = self.snapshot()
        out = await peer.send(encode_frame(payload))
        await self.quiesce()
        if out.responses and out.responses[0]["status"] != "ok":
            after = self.snapshot()
            changed = {t: (before[t], after[t]) for t in TABLES if before[t] != after[t]}
            assert not changed, f"a refused request changed the database: {out} {changed}"
        if out.responses and out.responses[0]["status"] == "ok" and spec.action not in READ_ONLY:
            self.dirty = True
        return out


def check(out: Outcome, spec: Spec, errors: ErrorLog) -> None:
    """The properties every request must keep, whatever it holds."""
    logged = [r.getMessage() for r in errors.records]
    errors.records.clear()
    assert not logged, f"the server logged at ERROR: {logged}"
    if out.closed:
        # The only way a well-framed request ends its connection: a payload
        # that is not UTF-8 JSON of an object (docs/protocol.md, "Framing errors").
        assert out.responses == [], out
        assert [e["code"] for e in out.errors] == ["bad_payload"], out
        return
    assert len(out.responses) == 1, out
    answer = out.responses[0]
    assert answer["status"] in {"ok", "fail", "error"}, answer
    assert answer["code"] in RESPONSE_CODES, answer
    assert answer["code"] != "internal_error", answer
    assert (answer["status"] == "ok") == (answer["code"] == "ok"), answer
    assert answer["id"] is None or isinstance(answer["id"], int), answer
    if spec.request_id is not None and answer["code"] != "bad_payload":
        # The envelope and the id were valid: the answer goes to that request.
        assert answer["id"] == spec.request_id, answer
    if answer["status"] != "ok":
        message = answer["message"]
        assert isinstance(message, str) and message.strip(), answer
        assert not RAW_VALIDATOR.search(message), answer


# --- fixtures -------------------------------------------------------------------------


@dataclass
class Harness:
    loop: asyncio.AbstractEventLoop
    world: World
    errors: ErrorLog

    def run(
        self,
        spec: Spec,
        payload: bytes | None = None,
        mutate: Callable[[bytes], bytes] | None = None,
    ) -> Outcome:
        return self.loop.run_until_complete(self.world.run(spec, payload, mutate))

    def check(self, spec: Spec, payload: bytes | None = None) -> Outcome:
        out = self.run(spec, payload)
        check(out, spec, self.errors)
        return out


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    errors = ErrorLog()
    root = logging.getLogger()
    root.addHandler(errors)
    try:
        world = loop.run_until_complete(World.create(tmp_path_factory.mktemp("property")))
        try:
            yield Harness(loop, world, errors)
        finally:
            loop.run_until_complete(world.server.shutdown())
    finally:
        root.removeHandler(errors)
        loop.close()
    assert not errors.records, [r.getMessage() for r in errors.records]


HYPOTHESIS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


# --- properties ---------------------------------------------------------------------


@pytest.mark.parametrize("action", sorted(ACTIONS))
@settings(HYPOTHESIS, max_examples=45)
@given(data=st.data())
def test_any_data_for_every_action(harness: Harness, action: str, data: st.DataObject) -> None:
    spec = data.draw(action_requests(action))
    harness.check(spec)


@settings(HYPOTHESIS, max_examples=500)
@given(spec=envelopes())
def test_any_envelope(harness: Harness, spec: Spec) -> None:
    harness.check(spec)


@settings(HYPOTHESIS, max_examples=300)
@given(st.binary(min_size=1, max_size=300), st.sampled_from(["alice", "bob", "anon"]))
def test_any_payload_bytes(harness: Harness, payload: bytes, who: str) -> None:
    spec = Spec(who, "", None, None)
    out = harness.run(spec, payload)
    check(out, spec, harness.errors)


@settings(HYPOTHESIS, max_examples=300)
@given(st.data(), st.sampled_from(["alice", "bob", "anon"]))
def test_mutated_valid_payloads(harness: Harness, data: st.DataObject, who: str) -> None:
    """Valid requests with bytes changed, cut, inserted: JSON that is nearly right."""
    action = data.draw(st.sampled_from(sorted(ACTIONS)))
    spec = data.draw(action_requests(action))
    spec = Spec(who, spec.text, None, action)
    # Drawn before the world is known (the draws must not depend on it);
    # positions are taken modulo the request's length.
    edits = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(["flip", "cut", "insert", "delete"]),
                st.integers(0, 2**20),
                st.integers(0, 7),
                st.sampled_from([b"{", b"}", b"[", b'"', b",", b"\\", b"\xff", b"\x00"]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    seen: list[bytes] = []

    def mutate(payload: bytes) -> bytes:
        good = bytearray(payload)
        for how, where, bit, insert in edits:
            at = where % (len(good) + 1)
            if how == "flip" and at < len(good):
                good[at] ^= 1 << bit
            elif how == "cut":
                del good[at:]
            elif how == "insert":
                good[at:at] = insert
            elif at < len(good):
                del good[at]
        seen.append(bytes(good) or b" ")
        return seen[-1]

    out = harness.run(spec, mutate=mutate)
    check(out, spec, harness.errors)


# --- the nesting rule and the known faults, one by one ----------------------------------


def _raw(action: str, body: str) -> bytes:
    return b'{"type":"' + action.encode() + b'","timestamp":0,"payload":' + body.encode() + b"}"


def _request(who: str, action: str, rid: int, data: str) -> Spec:
    """A request whose ``data`` is the JSON text given (markers allowed)."""
    text = _object(
        [
            ('"type"', _dump(action)),
            ('"payload"', _object([('"id"', str(rid)), ('"auth_token"', TOKEN), ('"data"', data)])),
        ]
    )
    return Spec(who, text, rid, action)


@pytest.mark.parametrize("opener", ["[", '{"a":'])
@pytest.mark.parametrize("where", ["data", "field", "envelope"])
def test_payload_nested_1000_deep_is_bad_payload_and_the_connection_lives(
    harness: Harness, opener: str, where: str
) -> None:
    closer = "]" if opener == "[" else "}"
    deep_value = opener * 1000 + "1" + closer * 1000
    if where == "data":
        spec = _request("alice", "add", 7, deep_value)
    elif where == "field":
        spec = _request("alice", "add", 7, '{"username":' + deep_value + "}")
    else:
        spec = Spec("alice", _raw("add", '{"id":7,"deep":' + deep_value + "}").decode(), 7, "add")
    out = harness.check(spec)
    assert not out.closed
    assert out.responses[0]["status"] == "error"
    assert out.responses[0]["code"] == "bad_payload"
    assert out.responses[0]["id"] is None
    ping = harness.check(Spec("alice", _raw("ping", '{"id":8}').decode(), 8, "ping"))
    assert ping.responses[0]["status"] == "ok" and ping.responses[0]["id"] == 8


@pytest.mark.parametrize(
    ("data", "wanted"),
    [
        ('{"name":"' + "n" * 65 + '"}', "at most 64 characters - at `data.name`"),
        ('{"name":""}', "at least 1 characters - at `data.name`"),
        ('{"name":"a\\nb"}', "control characters"),
    ],
)
def test_validator_messages_are_sentences(harness: Harness, data: str, wanted: str) -> None:
    out = harness.check(_request("alice", "newgroup", 3, data))
    answer = out.responses[0]
    assert answer["code"] == "invalid_request"
    assert wanted in answer["message"]


def test_username_rule_is_a_sentence(harness: Harness) -> None:
    data = '{"username":"a b","password":' + _dump(PASSWORD) + "}"
    out = harness.check(_request("anon", "reg", 4, data))
    assert out.responses[0]["code"] == "invalid_request"
    assert "a username has only letters, digits" in out.responses[0]["message"]


def test_refused_requests_of_every_kind_change_nothing(harness: Harness) -> None:
    """A few refusals that get past validation, checked one by one (the
    properties above check every refusal the same way)."""
    password = _dump(PASSWORD)
    # A stranger nobody befriended (the examples above may have made friends).
    harness.world.made += 1
    stranger = f"stranger{harness.world.made}"
    made = harness.check(
        _request("anon", "reg", 1, f'{{"username":"{stranger}","password":{password}}}')
    )
    assert made.responses[0]["status"] == "ok", made
    cases = [
        ("alice", "add", '{"username":"bob"}', "already_friends"),
        ("alice", "add", '{"username":"alice"}', "cannot_add_self"),
        ("bob", "send", f'{{"to":"{stranger}","text":"hi"}}', "not_friends"),
        ("bob", "addgroupuser", '{"group_id":' + GROUP + f',"username":"{stranger}"}}', None),
        ("bob", "send", '{"to":"bob","text":"hi"}', "cannot_send_to_self"),
        ("bob", "delgroup", '{"group_id":' + GROUP + "}", "not_permitted"),
        ("bob", "blockuser", '{"username":"carol"}', "not_permitted"),
        ("alice", "addgroupuser", '{"group_id":' + GROUP + ',"username":"bob"}', "already_member"),
        ("alice", "newgroup", '{"name":"x","max_members":1000000000}', "invalid_request"),
        ("anon", "reg", '{"username":"alice","password":' + password + "}", "user_exists"),
        ("anon", "login", '{"username":"bob","password":"wrong password"}', "bad_password"),
        ("bob", "ack", '{"acks":[{"conversation_id":' + CONV + ',"seq":1000000}]}', None),
    ]
    for who, action, data, code in cases:
        out = harness.check(_request(who, action, 9, data))
        assert out.responses[0]["status"] in {"fail", "error"}, (action, out)
        if code is not None:
            assert out.responses[0]["code"] == code, (action, out)


def test_invalid_utf8_in_a_data_field_is_refused_cleanly(harness: Harness) -> None:
    payload = b'{"type":"reg","payload":{"id":5,"data":{"username":"\xff","password":"x"}}}'
    harness.check(Spec("anon", "", 5, "reg"), payload)


def test_invalid_utf8_in_the_token_is_refused_cleanly(harness: Harness) -> None:
    payload = b'{"type":"ping","payload":{"id":6,"auth_token":"\xff"}}'
    harness.check(Spec("anon", "", 6, "ping"), payload)


def test_sendgroup_racing_delgroup_is_answered_without_a_fault(harness: Harness) -> None:
    world = harness.world

    async def race() -> list[dict[str, Any]]:
        await world.heal()
        alice, bob = world.peers["alice"], world.peers["bob"]
        world.made += 1
        made = await alice.call("newgroup", {"name": f"race{world.made}"})
        gid = made["data"]["group_id"]
        added = await alice.call("addgroupuser", {"group_id": gid, "username": "bob"})
        assert added["status"] == "ok", added
        assert alice.conn.session is not None and bob.conn.session is not None
        bob.frames()
        alice.frames()
        # Both in the same pass of the loop: the send is checked and queued for
        # the writer's next batch, the delete commits before that batch.
        data = {"group_id": gid, "text": "hi"}
        bob.conn.data_received(request_frame("sendgroup", 21, data, bob.conn.session.token))
        alice.conn.data_received(
            request_frame("delgroup", 22, {"group_id": gid}, alice.conn.session.token)
        )
        for peer in (bob, alice):
            await peer.conn.drained()
            peer.conn.flush()
        await world.quiesce()
        return [f["payload"] for f in bob.frames() + alice.frames() if f["type"] == "response"]

    answers = {a["id"]: a for a in harness.loop.run_until_complete(race())}
    logged = [r.getMessage() for r in harness.errors.records]
    harness.errors.records.clear()
    assert answers[22]["status"] == "ok", answers
    assert answers[21]["code"] in {"ok", "no_such_group"}, answers
    assert not logged


def _freed_by_reference_counting(close: Callable[[Connection, MemoryTransport], None]) -> bool:
    """Open a connection, end it with ``close``, let the loop go: is the
    ``Connection`` gone without the cyclic garbage collector's help?"""
    loop = asyncio.new_event_loop()
    manager = ConnectionManager(idle_timeout=300)

    async def scenario() -> weakref.ref[Connection]:
        conn = Connection(manager, _NullHandler(), max_frame=4096, send_buffer_limit=1 << 20)
        transport = MemoryTransport(conn)
        conn.connection_made(transport)
        close(conn, transport)
        for _ in range(3):
            await asyncio.sleep(0)
        return weakref.ref(conn)

    enabled = gc.isenabled()
    gc.disable()
    try:
        ref = loop.run_until_complete(scenario())
        loop.close()  # drops the timers (the close grace period) that hold it
        return ref() is None
    finally:
        if enabled:
            gc.enable()
        gc.collect()


class _NullHandler:
    async def handle_frame(self, conn: Connection, payload: bytes) -> None: ...

    def connection_closed(self, conn: Connection) -> None: ...


def test_a_connection_the_client_closes_is_freed_at_once() -> None:
    assert _freed_by_reference_counting(lambda conn, transport: transport.close())


def test_a_connection_closed_for_a_framing_error_is_freed_at_once() -> None:
    assert _freed_by_reference_counting(lambda conn, transport: conn.data_received(b"GET / "))
