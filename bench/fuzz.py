"""``python -m bench fuzz``: a real server process under a million hostile frames.

Starts ``python -m p2sp.server`` on a free loopback port with a temporary
SQLite database (``bench.servers.P2spServer``), registers a few users, makes
them friends and puts them in a group, makes one of them a server admin,
then sends frames over several connections to 127.0.0.1 only:

- valid requests (ping, friends, groups, send, sendgroup, ack, add, ...),
  on connections that logged in first, and logins, registrations and pings
  on connections that did not;
- well-framed payloads of arbitrary JSON: envelopes with any value in any
  field, and real actions whose data fields hold anything (wrong types,
  2**70, NaN and Infinity tokens, unpaired surrogate escapes, NUL, long
  strings, unknown fields), and JSON nested far past the depth limit;
- broken frames: a flipped bit, a truncated payload, a wrong CRC, a wrong or
  huge length, random bytes, an HTTP request.

The server must answer every well-framed request and close the connection,
with an ``error`` event naming a framing code, on every broken frame; the
fuzzer reconnects (and logs in again) whenever it does. At the end the
server must still be running and answer a ping on a new connection; its log
must show no traceback. The report counts frames, responses by status and
code, closes by reason, anything unexpected, and the server's RSS before and
after (from /proc). See docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python bench/fuzz.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec

from bench.servers import HOST, P2spServer, ServerError
from p2sp.common.exceptions import ProtocolError
from p2sp.common.message import request_frame
from p2sp.common.protocol import HEADER, MAGIC, FrameDecoder, encode_frame
from p2sp.launcher import scan_tracebacks

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "fuzz-password-1"
#: The server's default frame limit (``P2SP_MAX_FRAME``): lengths are mutated around it.
MAX_FRAME = 1024 * 1024
#: Requests a connection may have unanswered before it waits.
WINDOW = 16
#: Codes of the ``error`` event that ends a connection on a broken frame.
FRAMING_CODES = frozenset({"bad_magic", "bad_checksum", "bad_length", "bad_payload"})
#: Server settings of the run: fast password hashing, and no limit on the
#: failed logins and registrations the fuzzer makes from 127.0.0.1.
SERVER_ENV = {
    "P2SP_LOG_LEVEL": "INFO",
    "P2SP_SCRYPT_N": "16",
    "P2SP_REG_MAX_PER_IP": "1000000000",
    "P2SP_LOGIN_MAX_FAILURES": "1000000000",
    "P2SP_LOGIN_MAX_FAILURES_PER_IP": "1000000000",
}

# --- frame kinds ---------------------------------------------------------------------
#
# What the fuzzer expects of each kind decides how it waits: a valid request
# is answered (several may be in flight), a "maybe" (arbitrary JSON in a
# sound frame) is answered or ends the connection with bad_payload, a broken
# frame ends the connection with a framing error.

VALID, MAYBE, BROKEN = "valid", "maybe", "broken"

#: kind -> (weight, expectation)
KINDS: dict[str, tuple[int, str]] = {
    "valid": (560, VALID),
    "json_envelope": (200, MAYBE),
    "json_data": (150, MAYBE),
    "deep": (20, MAYBE),
    "bit_flip": (15, BROKEN),
    "truncated": (8, BROKEN),
    "bad_crc": (8, BROKEN),
    "bad_length": (8, BROKEN),
    "huge_length": (8, BROKEN),
    "zero_length": (3, BROKEN),
    "random_bytes": (8, BROKEN),
    "http": (2, BROKEN),
}


# --- arbitrary JSON text -----------------------------------------------------------------

NUMBERS = [
    "0",
    "-0",
    "1",
    "-1",
    "2",
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
    '"\\\\"',
    '"張三"',
    '"Ä"',
    json.dumps("x" * 33),
    json.dumps("x" * 65),
    json.dumps("x" * 129),
    json.dumps("x" * 1001),
    json.dumps("x" * 4097),
    json.dumps("y" * 100_000),
]
#: Field names of the actions' data (docs/protocol.md, "Actions available now").
FIELDS = [
    "username",
    "password",
    "to",
    "text",
    "client_msg_id",
    "acks",
    "conversation_id",
    "seq",
    "name",
    "public",
    "description",
    "max_members",
    "group_id",
    "role",
    "online_only",
    "creator",
]
ACTIONS = [
    "ping",
    "reg",
    "login",
    "logout",
    "add",
    "friends",
    "send",
    "ack",
    "newgroup",
    "delgroup",
    "addgroupuser",
    "delgroupuser",
    "setgrouprole",
    "groups",
    "sendgroup",
    "publicgroups",
    "joingroup",
    "leavegroup",
    "allusers",
    "allgroup",
    "adminsend",
    "adminsendgroup",
    "broadcast",
    "blockuser",
    "unblockuser",
    "blockgroup",
    "unblockgroup",
]
#: Users no fuzzing connection logs in as: the admin's arbitrary requests may
#: block, kick or message them without taking a fuzzing session away.
TARGETS = ["target1", "target2", "target3"]
PLAUSIBLE: dict[str, list[str]] = {
    "username": [*TARGETS, "system", "nobody", "x" * 32, "a b"],
    "password": ["short", "wrong password", "p" * 129],
    "to": [*TARGETS, "system", "nobody"],
    "text": ["hi", "a" * 4096, "a" * 4097],
    "client_msg_id": ["c1", "c" * 64, "c" * 65],
    "name": ["club", "public", "x" * 65, "a\nb"],
    "creator": [*TARGETS, "system"],
    "role": ["admin", "member", "owner"],
}
PLAUSIBLE_RAW: dict[str, list[str]] = {
    "group_id": ["1", "2", "3", "999999", str(2**63 - 1)],
    "conversation_id": ["1", "2", "3", str(2**63)],
    "seq": ["1", "2", "1000000"],
    "public": ["true", "false"],
    "online_only": ["true", "false"],
    "max_members": ["2", "1", "50", "5000", "5001"],
}


class JsonMaker:
    """Random JSON text, including what Python's json module would not write."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def scalar(self) -> str:
        r = self.rng
        roll = r.random()
        if roll < 0.15:
            return r.choice(("null", "true", "false"))
        if roll < 0.35:
            return r.choice(NUMBERS)
        if roll < 0.45:
            return str(r.randint(-(2**40), 2**40))
        if roll < 0.5:
            return repr(r.uniform(-1e6, 1e6))
        if roll < 0.7:
            return r.choice(STRINGS)
        if roll < 0.985:
            n = r.randint(0, 12)
            text = "".join(
                chr(r.choice((r.randint(32, 126), r.randint(0, 0xD7FF)))) for _ in range(n)
            )
            return json.dumps(text, ensure_ascii=r.random() < 0.5)
        return r.choice(HOSTILE)  # 1.5 % of scalars: the connection will close

    def value(self, depth: int = 0) -> str:
        r = self.rng
        roll = r.random()
        if depth > 3 or roll < 0.6:
            return self.scalar()
        if roll < 0.8:
            return "[" + ",".join(self.value(depth + 1) for _ in range(r.randint(0, 4))) + "]"
        return self.obj(depth + 1)

    def key(self) -> str:
        r = self.rng
        if r.random() < 0.7:
            return json.dumps(r.choice([*FIELDS, "id", "type", "data", "payload", "auth_token"]))
        return self.scalar() if r.random() < 0.1 else json.dumps("k" + str(r.randint(0, 99)))

    def obj(self, depth: int = 0) -> str:
        members = [f"{self.key()}:{self.value(depth)}" for _ in range(self.rng.randint(0, 4))]
        return "{" + ",".join(members) + "}"

    def field_value(self, name: str) -> str:
        r = self.rng
        if r.random() < 0.5:
            if name in PLAUSIBLE:
                return json.dumps(r.choice(PLAUSIBLE[name]))
            if name in PLAUSIBLE_RAW:
                return r.choice(PLAUSIBLE_RAW[name])
        return self.value(1)

    def data(self) -> str:
        r = self.rng
        if r.random() < 0.1:
            return self.value()
        names = r.sample(FIELDS, r.randint(0, 4))
        members = [f"{json.dumps(n)}:{self.field_value(n)}" for n in names]
        if names and "acks" in names and r.random() < 0.5:
            members.append('"acks":[{"conversation_id":1,"seq":1}]')
        return "{" + ",".join(members) + "}"

    def deep(self) -> str:
        r = self.rng
        levels = r.choice((33, 64, 1000, 5000))
        opener, closer = ("[", "]") if r.random() < 0.5 else ('{"a":', "}")
        tail = closer * levels if r.random() < 0.9 else ""  # sometimes left open
        return opener * levels + self.scalar() + tail


# --- the connection ----------------------------------------------------------------------


class Incoming(msgspec.Struct):
    id: int | None = None
    status: str | None = None
    code: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"null")
    conversation_id: int | None = None
    seq: int | None = None
    reason: str | None = None


class InFrame(msgspec.Struct):
    type: str
    payload: Incoming = msgspec.field(default_factory=Incoming)


_decode = msgspec.json.Decoder(InFrame).decode


@dataclass
class Tally:
    """Everything counted over the run (all connections)."""

    frames: Counter[str] = field(default_factory=Counter)  # by kind
    bytes_sent: int = 0
    filler_bytes: int = 0
    responses: Counter[str] = field(default_factory=Counter)  # "status/code"
    events: Counter[str] = field(default_factory=Counter)  # by type
    closes: Counter[str] = field(default_factory=Counter)  # by reason
    connections: int = 0
    logins: int = 0
    login_failures: Counter[str] = field(default_factory=Counter)
    internal_errors: int = 0
    #: requests sent after one that ended the connection, never answered
    dropped: int = 0
    undecodable: int = 0
    #: what must never happen, with a few examples of each
    anomalies: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def anomaly(self, what: str, example: str) -> None:
        self.anomalies[what] += 1
        seen = self.examples.setdefault(what, [])
        if len(seen) < 5:
            seen.append(example[:300])

    @property
    def total_frames(self) -> int:
        return sum(self.frames.values())


class FuzzConn(asyncio.Protocol):
    """One client socket: counts what comes back, wakes whoever waits for it."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.decoder = FrameDecoder(64 * 1024 * 1024)
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.outstanding = 0
        self.wait_below = -1
        self.waiter: asyncio.Future[None] | None = None
        self.error_code: str | None = None
        self.kicked: str | None = None
        self.calls: dict[int, asyncio.Future[Incoming]] = {}
        self.next_id = 1000
        self.token: str | None = None
        self.unauthenticated = False
        #: a frame of arbitrary JSON is unanswered (it may end the connection)
        self.risky = False
        self.reset = False
        #: conversation -> highest seq received and not yet acknowledged
        self.unacked: dict[int, int] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            payloads = self.decoder.feed(data)
        except ProtocolError as exc:  # the server never sends a broken frame
            self.tally.anomaly("broken frame from the server", str(exc))
            self.transport.abort()  # type: ignore[union-attr]
            return
        for payload in payloads:
            try:
                frame = _decode(payload)
            except msgspec.DecodeError as exc:
                self.tally.undecodable += 1
                self.tally.anomaly("undecodable frame from the server", f"{exc}: {payload[:200]!r}")
                continue
            self._frame(frame, payload)
        if self.waiter is not None and self.outstanding <= self.wait_below:
            self._wake()

    def _frame(self, frame: InFrame, raw: bytes) -> None:
        p = frame.payload
        tally = self.tally
        tally.events[frame.type] += 1
        if frame.type == "response":
            tally.responses[f"{p.status}/{p.code}"] += 1
            if p.code == "internal_error":
                tally.internal_errors += 1
                tally.anomaly("internal_error response", raw.decode("utf-8", "replace"))
            if p.code == "not_authenticated" and self.token is not None:
                self.unauthenticated = True  # an arbitrary logout ended the session
            call = self.calls.pop(p.id, None) if p.id is not None else None
            if call is not None:
                if not call.done():
                    call.set_result(p)
                return
            self.outstanding -= 1
            if self.outstanding <= 0:
                self.risky = False
        elif frame.type == "message":
            conv, seq = p.conversation_id, p.seq
            if conv is not None and seq is not None and seq > self.unacked.get(conv, 0):
                self.unacked[conv] = seq
        elif frame.type == "error":
            self.error_code = p.code
            if p.code == "internal_error":
                tally.internal_errors += 1
                tally.anomaly("internal_error event", raw.decode("utf-8", "replace"))
        elif frame.type == "kicked":
            self.kicked = p.reason

    def connection_lost(self, exc: Exception | None) -> None:
        # A reset rather than an orderly close: the server closed its socket
        # with requests of ours still unread, and the kernel then discards
        # what it had not yet handed to us (the error event among it).
        self.reset = exc is not None
        if not self.closed.done():
            self.closed.set_result(None)
        for call in self.calls.values():
            if not call.done():
                call.set_exception(ConnectionResetError("the server closed the connection"))
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def is_closed(self) -> bool:
        return self.closed.done()

    def write(self, frame: bytes) -> None:
        assert self.transport is not None
        self.transport.write(frame)
        self.tally.bytes_sent += len(frame)

    async def wait_outstanding(self, at_most: int, timeout: float) -> bool:
        """Wait until at most ``at_most`` requests are unanswered; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.outstanding > at_most and not self.is_closed:
            self.wait_below = at_most
            self.waiter = asyncio.get_running_loop().create_future()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.waiter), left)
        return True

    async def call(self, action: str, data: dict[str, Any], timeout: float = 30.0) -> Incoming:
        self.next_id += 1
        rid = self.next_id
        future = asyncio.get_running_loop().create_future()
        self.calls[rid] = future
        self.write(request_frame(action, rid, data, auth_token=self.token))
        return await asyncio.wait_for(future, timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# --- frames -----------------------------------------------------------------------------


def _frame_text(text: str) -> bytes:
    return encode_frame(text.encode("utf-8", "surrogatepass"))


class Fuzzer:
    """Sends the frames and checks what comes back; ``run()`` returns the ``Tally``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        frames: int,
        seconds: float,
        connections: int,
        seed: int,
        users: list[str],
        admin: str | None,
        group_id: int | None,
        timeout: float = 20.0,
        alive: Any = None,
    ) -> None:
        self.host = host
        self.port = port
        self.target = frames
        self.deadline = time.monotonic() + seconds
        self.connections = connections
        self.seed = seed
        self.users = users
        self.admin = admin
        self.group_id = group_id
        self.timeout = timeout
        self.alive = alive or (lambda: True)
        self.tally = Tally()
        self.sent = 0
        self.stopped = ""
        self.weights = [w for w, _ in KINDS.values()]
        self.kinds = list(KINDS)

    def done(self) -> bool:
        if self.stopped:
            return True
        if self.sent >= self.target:
            self.stopped = "frames"
        elif time.monotonic() >= self.deadline:
            self.stopped = "seconds"
        return bool(self.stopped)

    async def run(self) -> Tally:
        started = time.monotonic()
        # Slot i logs in as users[i] (the admin first); the others stay anonymous.
        logins = [self.admin, *self.users] if self.admin else list(self.users)
        names = [logins[i] if i < len(logins) else None for i in range(self.connections)]
        await asyncio.gather(*(self.slot(i, name) for i, name in enumerate(names)))
        self.elapsed = time.monotonic() - started
        return self.tally

    async def open(self) -> FuzzConn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: FuzzConn(self.tally), self.host, self.port)
        self.tally.connections += 1
        return conn

    async def login(self, conn: FuzzConn, name: str) -> bool:
        answer = await conn.call("login", {"username": name, "password": PASSWORD}, self.timeout)
        if answer.status != "ok":
            self.tally.login_failures[f"{answer.status}/{answer.code}"] += 1
            return False
        conn.token = msgspec.json.decode(answer.data)["auth_token"]
        self.tally.logins += 1
        return True

    async def slot(self, index: int, name: str | None) -> None:
        rng = random.Random(self.seed * 1000 + index)
        maker = JsonMaker(rng)
        while not self.done():
            if not self.alive():
                self.stopped = "server died"
                return
            try:
                conn = await self.open()
            except OSError as exc:
                self.tally.anomaly("connection refused", repr(exc))
                self.stopped = "server unreachable"
                return
            try:
                if name is not None and not await self.login(conn, name):
                    self.tally.anomaly("login refused", name)
                    await asyncio.sleep(0.1)
                    continue
                await self.session(conn, rng, maker, name)
            except TimeoutError:
                self.tally.anomaly("no answer in time", f"slot {index} ({name})")
            except ConnectionResetError:
                # Closed during a login (after an arbitrary request ended the session).
                self.closed(conn, "")
            finally:
                conn.close()

    async def session(
        self, conn: FuzzConn, rng: random.Random, maker: JsonMaker, name: str | None
    ) -> None:
        """Send frames on one connection until the server closes it (or the run ends)."""
        last = ""
        while not self.done():
            if conn.is_closed:
                self.closed(conn, last)
                return
            if conn.unauthenticated and name is not None:
                await conn.wait_outstanding(0, self.timeout)
                conn.unauthenticated = False
                if not conn.is_closed and not await self.login(conn, name):
                    return
                continue
            kind = rng.choices(self.kinds, self.weights)[0]
            expect = KINDS[kind][1]
            frame = self.build(kind, conn, rng, maker)
            if expect == BROKEN:
                # Alone on the wire: it ends the connection after every
                # earlier request was answered.
                if not await conn.wait_outstanding(0, self.timeout):
                    self.tally.anomaly("no answer in time", f"before {kind}")
                    return
                if conn.is_closed:
                    continue
            conn.write(frame)
            self.sent += 1
            self.tally.frames[kind] += 1
            last = kind
            if expect == BROKEN:
                await self.until_closed(conn, kind, frame)
                continue
            # Pipelined, up to WINDOW unanswered. A "maybe" may end the
            # connection (bad_payload): the frames after it are then dropped.
            conn.outstanding += 1
            if expect == MAYBE:
                conn.risky = True
            if conn.outstanding >= WINDOW and not await conn.wait_outstanding(
                WINDOW // 2, self.timeout
            ):
                self.tally.anomaly("no answer in time", f"{kind}: {frame[12:200]!r}")
                return
        await conn.wait_outstanding(0, self.timeout)

    async def until_closed(self, conn: FuzzConn, kind: str, frame: bytes) -> None:
        """A broken frame must end the connection; bytes are added until it does
        (a frame cut short or announced longer waits for them)."""
        filler = b"\x00" * 65536
        sent = 0
        deadline = time.monotonic() + self.timeout
        while not conn.is_closed and time.monotonic() < deadline:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(conn.closed), 0.05 if sent else 0.02)
            if conn.is_closed:
                return
            if sent <= MAX_FRAME + 2 * len(filler) and conn.transport is not None:
                conn.transport.write(filler)
                sent += len(filler)
                self.tally.filler_bytes += len(filler)
        if not conn.is_closed:
            self.tally.anomaly("broken frame left the connection open", f"{kind}: {frame[:64]!r}")

    def closed(self, conn: FuzzConn, last: str) -> None:
        """Record why the server closed the connection; flag what it must not do."""
        reason = conn.error_code or (f"kicked/{conn.kicked}" if conn.kicked else "")
        reason = reason or ("reset" if conn.reset else "no reason")
        self.tally.closes[reason] += 1
        self.tally.dropped += max(0, conn.outstanding)
        if last and KINDS[last][1] == BROKEN and reason in FRAMING_CODES:
            return
        if conn.risky and reason in ("bad_payload", "reset"):
            return  # a frame of arbitrary JSON was still unanswered
        self.tally.anomaly("closed by the server after a well-framed request", f"{last}: {reason}")

    # -- the frames of each kind ------------------------------------------------------------

    def build(self, kind: str, conn: FuzzConn, rng: random.Random, maker: JsonMaker) -> bytes:
        rid = rng.randint(0, 2**53)
        if kind == "valid":
            return self.valid(conn, rng, rid)
        if kind == "json_envelope":
            return _frame_text(self.envelope(conn, rng, maker, rid))
        if kind == "json_data":
            action = rng.choice(ACTIONS)
            token = json.dumps(conn.token) if conn.token and rng.random() < 0.9 else maker.scalar()
            body = f'{{"id":{rid},"auth_token":{token},"data":{maker.data()}}}'
            return _frame_text(f'{{"type":{json.dumps(action)},"timestamp":0,"payload":{body}}}')
        if kind == "deep":
            where = rng.random()
            deep = maker.deep()
            if where < 0.4:
                body = f'{{"id":{rid},"data":{deep}}}'
            elif where < 0.8:
                body = f'{{"id":{rid},"data":{{"username":{deep}}}}}'
            else:
                return _frame_text(f'{{"type":"ping","x":{deep},"payload":{{"id":{rid}}}}}')
            return _frame_text(f'{{"type":"ping","payload":{body}}}')
        good = self.valid(conn, rng, rid)
        payload = good[HEADER.size :]
        if kind == "bit_flip":
            out = bytearray(good)
            bit = rng.randrange(len(out) * 8)
            out[bit // 8] ^= 1 << (bit % 8)
            return bytes(out)
        if kind == "truncated":
            return good[: rng.randrange(HEADER.size + 1, len(good))]
        if kind == "bad_crc":
            crc = (zlib.crc32(payload) + rng.randint(1, 2**32 - 1)) % 2**32
            return HEADER.pack(MAGIC, crc, len(payload)) + payload
        if kind == "bad_length":
            length = len(payload) + rng.choice((-3, -2, -1, 1, 2, 3, 100, 4096))
            return HEADER.pack(MAGIC, zlib.crc32(payload), max(1, length)) + payload
        if kind == "huge_length":
            length = rng.choice(
                (MAX_FRAME + 1, 2**31, 2**32 - 1, rng.randint(MAX_FRAME + 1, 2**32 - 1))
            )
            return HEADER.pack(MAGIC, zlib.crc32(payload), length) + payload
        if kind == "zero_length":
            return HEADER.pack(MAGIC, 0, 0)
        if kind == "http":
            return b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        # random bytes, never a valid start (a stream that begins with the
        # magic is a frame, not garbage)
        blob = bytearray(rng.randbytes(rng.randint(1, 256)))
        if blob[0] == MAGIC[0]:
            blob[0] ^= 0xFF
        return bytes(blob)

    def envelope(self, conn: FuzzConn, rng: random.Random, maker: JsonMaker, rid: int) -> str:
        """Any value in any field of the envelope and of the request body."""

        def pick(plausible: str) -> str | None:
            roll = rng.random()
            if roll < 0.15:
                return None
            return maker.value(1) if roll < 0.45 else plausible

        token = json.dumps(conn.token) if conn.token else '"none"'
        body = []
        for key, plausible in (("id", str(rid)), ("auth_token", token), ("data", maker.data())):
            value = pick(plausible)
            if value is not None:
                body.append(f'"{key}":{value}')
        if rng.random() < 0.2:
            body.append(f"{maker.key()}:{maker.value(1)}")
        members = []
        action = json.dumps(rng.choice(ACTIONS))
        for key, plausible in (
            ("type", action),
            ("timestamp", "1700000000000"),
            ("payload", "{" + ",".join(body) + "}"),
        ):
            value = pick(plausible)
            if value is not None:
                members.append(f'"{key}":{value}')
        if rng.random() < 0.2:
            members.append(f"{maker.key()}:{maker.value(1)}")
        rng.shuffle(members)
        return "{" + ",".join(members) + "}"

    def valid(self, conn: FuzzConn, rng: random.Random, rid: int) -> bytes:
        """A well-formed request the connection may make (it is answered, whatever the answer)."""
        token = conn.token
        if token is None:
            roll = rng.random()
            if roll < 0.6:
                return request_frame("ping", rid)
            if roll < 0.8:
                name = rng.choice([*self.users, *TARGETS, "nobody"])
                return request_frame("login", rid, {"username": name, "password": "wrong password"})
            if roll < 0.9:
                return request_frame("reg", rid, {"username": "a b", "password": PASSWORD})
            return request_frame("friends", rid)  # not_authenticated
        if conn.unacked and rng.random() < 0.5:
            acks = [{"conversation_id": c, "seq": s} for c, s in conn.unacked.items()]
            conn.unacked.clear()
            return request_frame("ack", rid, {"acks": acks}, token)
        roll = rng.random()
        if roll < 0.35:
            return request_frame("ping", rid, auth_token=token)
        if roll < 0.45:
            return request_frame("friends", rid, auth_token=token)
        if roll < 0.55:
            return request_frame("groups", rid, auth_token=token)
        if roll < 0.6:
            return request_frame("publicgroups", rid, auth_token=token)
        if roll < 0.7:
            to = rng.choice([*self.users, *TARGETS])
            text = f"fuzz {rid}"
            return request_frame("send", rid, {"to": to, "text": text}, token)
        if roll < 0.8 and self.group_id is not None:
            data = {"group_id": self.group_id, "text": f"fuzz {rid}"}
            return request_frame("sendgroup", rid, data, token)
        if roll < 0.85:
            return request_frame("add", rid, {"username": rng.choice(self.users)}, token)
        if roll < 0.9:
            return request_frame("allusers", rid, {"online_only": True}, token)
        if roll < 0.95:
            return request_frame("newgroup", rid, {"name": "x" * 65}, token)  # invalid_request
        return request_frame("joingroup", rid, {"group_id": 1}, token)


# --- the run -------------------------------------------------------------------------------


async def setup(host: str, port: int, users: list[str], admin: str | None) -> int | None:
    """Register the users, make them friends in a ring, put them all in one group."""
    loop = asyncio.get_running_loop()
    tally = Tally()
    _, conn = await loop.create_connection(lambda: FuzzConn(tally), host, port)
    try:
        for name in [*([admin] if admin else []), *users, *TARGETS]:
            answer = await conn.call("reg", {"username": name, "password": PASSWORD})
            if answer.status != "ok":
                raise ServerError(f"registering {name}: {answer.status}/{answer.code}")
        group_id = None
        for i, name in enumerate(users):
            c: FuzzConn
            _, c = await loop.create_connection(lambda: FuzzConn(tally), host, port)
            try:
                answer = await c.call("login", {"username": name, "password": PASSWORD})
                c.token = msgspec.json.decode(answer.data)["auth_token"]
                if len(users) > 1:
                    await c.call("add", {"username": users[(i + 1) % len(users)]})
                if i == 0:
                    made = await c.call("newgroup", {"name": "fuzz", "max_members": 100})
                    group_id = msgspec.json.decode(made.data)["group_id"]
                    for other in users[1:]:
                        await c.call("addgroupuser", {"group_id": group_id, "username": other})
            finally:
                c.close()
        return group_id
    finally:
        conn.close()


async def ping(host: str, port: int, timeout: float = 10.0) -> bool:
    """A new connection, one ping: does the server still serve?"""
    loop = asyncio.get_running_loop()
    try:
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: FuzzConn(Tally()), host, port), timeout
        )
    except (TimeoutError, OSError):
        return False
    try:
        answer = await conn.call("ping", {}, timeout)
        return answer.status == "ok"
    except (TimeoutError, ConnectionResetError):
        return False
    finally:
        conn.close()


def promote(database_url: str, name: str, workdir: Path) -> None:
    """``p2sp-server promote NAME`` against the run's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2SP_")}
    done = subprocess.run(
        [sys.executable, "-m", "p2sp.server", "promote", name, "--database-url", database_url],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise ServerError(f"promote {name} failed: {done.stdout}{done.stderr}")


def arun(coro: Any) -> Any:
    """Run on uvloop when it is installed (as the server does), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a p2sp dependency on Linux
        return asyncio.run(coro)
    return uvloop.run(coro)


TRACEBACK = re.compile(r"^Traceback \(most recent call last\):", re.MULTILINE)


def git(*cmd: str) -> str:
    try:
        out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, fuzz it, check it, stop it; the report."""
    tmp = Path(tempfile.mkdtemp(prefix="p2sp-fuzz-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'fuzz.db'}"
    env = dict(SERVER_ENV)
    for item in args.server_env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--server-env wants KEY=VALUE, got {item!r}")
        env[key.upper() if key.upper().startswith("P2SP_") else f"P2SP_{key.upper()}"] = value
    users = [f"fuzz{i}" for i in range(max(0, min(args.logged_in, args.connections) - 1))]
    admin = "fuzzadmin" if args.logged_in > 0 else None
    server = P2spServer(tmp, database_url, env)
    report: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench", "fuzz", *args.argv]),
        "commit": git("rev-parse", "--short", "HEAD"),
        "tree_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "frames_asked": args.frames,
        "seconds_limit": args.seconds,
        "connections": args.connections,
        "logged_in_connections": min(args.logged_in, args.connections),
        "seed": args.seed,
        "workdir": str(tmp),
    }
    try:
        server.start()
        assert server.stats is not None
        group_id = arun(setup(HOST, server.port, users, admin))
        if admin:
            promote(database_url, admin, tmp)
        report["rss_before_kb"] = server.stats.memory_kb().get("VmRSS")
        fuzzer = Fuzzer(
            HOST,
            server.port,
            frames=args.frames,
            seconds=args.seconds,
            connections=args.connections,
            seed=args.seed,
            users=users,
            admin=admin,
            group_id=group_id,
            timeout=args.timeout,
            alive=server.alive,
        )
        tally = arun(fuzzer.run())
        alive = server.alive()
        answered = alive and arun(ping(HOST, server.port))
        mem = server.stats.memory_kb() if alive else {}
        report.update(
            {
                "stopped_by": fuzzer.stopped,
                "seconds": round(fuzzer.elapsed, 1),
                "frames_sent": tally.total_frames,
                "frames_per_s": round(tally.total_frames / max(fuzzer.elapsed, 1e-9)),
                "frames_by_kind": dict(tally.frames.most_common()),
                "bytes_sent": tally.bytes_sent,
                "filler_bytes": tally.filler_bytes,
                "responses": sum(tally.responses.values()),
                "responses_by_code": dict(tally.responses.most_common()),
                "events": dict(tally.events.most_common()),
                "connections_opened": tally.connections,
                "closed_by_server": sum(tally.closes.values()),
                "closes_by_reason": dict(tally.closes.most_common()),
                "dropped_after_close": tally.dropped,
                "logins": tally.logins,
                "login_failures": dict(tally.login_failures),
                "internal_errors": tally.internal_errors,
                "anomalies": dict(tally.anomalies),
                "anomaly_examples": tally.examples,
                "server_alive": alive,
                "final_ping_ok": answered,
                "rss_after_kb": mem.get("VmRSS"),
                "rss_peak_kb": mem.get("VmHWM"),
            }
        )
    finally:
        was_alive = server.alive()
        code = server.stop()
        log = server.log()
        report["server_crashes"] = 0 if was_alive else 1
        report["server_exit_code"] = code
        report["server_log_bytes"] = len(log)
        report["tracebacks"] = len(TRACEBACK.findall(log))
        report["exceptions"] = dict(Counter(tb.exception for tb in scan_tracebacks(log)))
        report["error_log_lines"] = len(re.findall(r" ERROR ", log))
        report["framing_errors_logged"] = log.count(": protocol error ")
        if report["tracebacks"]:
            start = log.find("Traceback")
            report["first_traceback"] = log[max(0, log.rfind("\n", 0, start - 300)) : start + 3000]
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report["ok"] = ok(report)
    return report


def ok(report: dict[str, Any]) -> bool:
    """The run's verdict: the server survived everything and complained of nothing."""
    return (
        report.get("server_crashes") == 0
        and report.get("final_ping_ok") is True
        and report.get("tracebacks") == 0
        and report.get("error_log_lines") == 0
        and report.get("internal_errors") == 0
        and not report.get("anomalies")
        and report.get("server_exit_code") == 0
    )


def render(report: dict[str, Any]) -> str:
    def kb(value: int | None) -> str:
        return f"{value / 1024:.1f} MiB" if value else "?"

    r = report
    dirty = " (uncommitted changes)" if r.get("tree_dirty") else ""
    ping_ok = "ok" if r.get("final_ping_ok") else "FAILED"
    lines = [
        f"p2sp fuzz at {r.get('commit')}{dirty}: {'OK' if r['ok'] else 'FAILED'}",
        f"  command           {r['command']}",
        f"  frames sent       {r.get('frames_sent', 0):,} in {r.get('seconds', 0)} s "
        f"({r.get('frames_per_s', 0):,}/s; stopped by {r.get('stopped_by')}), "
        f"{r.get('connections')} connections, {r.get('logged_in_connections')} logged in",
        f"  by kind           {_counts(r.get('frames_by_kind', {}))}",
        f"  responses         {r.get('responses', 0):,}: "
        f"{_counts(r.get('responses_by_code', {}), 8)}",
        f"  closed by server  {r.get('closed_by_server', 0):,}: "
        f"{_counts(r.get('closes_by_reason', {}))} "
        f"({r.get('dropped_after_close', 0):,} requests behind a closing one went unanswered)",
        f"  connections       {r.get('connections_opened', 0):,} opened, "
        f"{r.get('logins', 0):,} logins",
        f"  internal_error    {r.get('internal_errors', 0)}",
        f"  anomalies         {_counts(r.get('anomalies', {})) or 0}",
        f"  server            crashes {r.get('server_crashes')}, alive at the end "
        f"{r.get('server_alive')}, final ping {ping_ok}, exit code {r.get('server_exit_code')}",
        f"  server log        {r.get('tracebacks')} tracebacks, "
        f"{r.get('error_log_lines')} ERROR lines, "
        f"{r.get('framing_errors_logged', 0):,} framing errors logged",
        f"  server RSS        {kb(r.get('rss_before_kb'))} before, "
        f"{kb(r.get('rss_after_kb'))} after (peak {kb(r.get('rss_peak_kb'))})",
    ]
    if report.get("anomaly_examples"):
        for what, examples in report["anomaly_examples"].items():
            lines.append(f"  ! {what}: {examples[0]}")
    for exception, count in report.get("exceptions", {}).items():
        lines.append(f"  ! {count} x {exception}")
    if report.get("first_traceback"):
        lines.append("  first traceback:\n" + report["first_traceback"])
    return "\n".join(lines)


def _counts(counts: dict[str, int], limit: int = 12) -> str:
    items = list(counts.items())
    text = ", ".join(f"{k} {v:,}" for k, v in items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench fuzz",
        description="Send a real p2sp server valid, mutated and hostile frames; "
        "report how it held.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--frames", type=int, default=1_000_000, help="frames to send in all")
    p.add_argument("--seconds", type=float, default=1800.0, help="stop sending after this")
    p.add_argument("--connections", type=int, default=8, help="connections at a time")
    p.add_argument(
        "--logged-in",
        type=int,
        default=4,
        help="of which this many log in first (the first one as a server admin)",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for an answer")
    p.add_argument("--out", metavar="FILE", help="also write the report as JSON (and FILE.txt)")
    p.add_argument("--database-url", help="database for the server (default: temporary SQLite)")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra server setting, e.g. P2SP_MAX_FRAME=65536 (repeatable)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (server log)")
    return p


def fuzz(argv: list[str], echo: bool = False) -> dict[str, Any]:
    """The whole command: run, render, write ``--out`` (and print if ``echo``); the report."""
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    report = run(args)
    text = render(report)
    if echo:
        print(text, flush=True)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        out.with_suffix(".txt").write_text(text + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    try:
        report = fuzz(list(sys.argv[1:] if argv is None else argv), echo=True)
    except ServerError as exc:
        print(f"fuzz: the server would not start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
