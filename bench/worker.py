"""One load-generator process: a slice of the clients, measured, reported to the parent.

The parent starts K workers (``multiprocessing``, fork) and steps them
through named barriers over a pipe: a worker sends ``(name, data)`` when it
reaches a barrier and waits for the parent's reply before going on. So every
worker starts sending at the same instant (``go``), the parent can read the
server's CPU and memory between phases, and a worker learns how many
messages to wait for only once every sender has finished (the senders are in
other processes).

What a message carries: its text is ``<sender index>:<n>:<monotonic ns>``,
``n`` counting up per sender. CLOCK_MONOTONIC is one clock for every
process of the machine, so a receiver in another process computes the
latency as ``now - ns``. In paced mode a message that had to wait behind its
client's previous send (window full) carries the time it was *scheduled*
for, so that wait counts against latency (no coordinated omission).

A receiver keeps the highest ``n`` seen per sender: a higher one is new,
anything else is a duplicate (or out of order, which the server promises
never to do per conversation); what a sender got ``ok`` for and no receiver
saw is lost.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import random
import resource
import traceback
from collections import Counter
from multiprocessing.connection import Connection
from time import monotonic_ns
from typing import Any

from bench.servers import IRC_OPER, raise_nofile
from bench.stats import Histogram
from bench.wire import PASSWORD, Incoming, IrcConn, IrcSink, P2Conn, Sink

#: pending acks that trigger a flush at once (as the SDK's ACK_BATCH)
ACK_BATCH = 200
MAX_ACKS_PER_REQUEST = 1000
#: idle mode: seconds over which each worker spreads its one ping per connection
PING_SPREAD = 5.0


class Abort(Exception):
    """The parent gave up on the run."""


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def child_main(spec: dict[str, Any], ctl: Connection) -> None:
    """Entry point of a worker process."""
    raise_nofile()
    try:
        try:
            import uvloop

            run = uvloop.run
        except ImportError:  # pragma: no cover - uvloop is a p2sp dependency
            run = asyncio.run
        worker = IrcWorker(spec, ctl) if spec["peer"] == "ngircd" else Worker(spec, ctl)
        run(worker.main())
    except Abort:
        pass
    except BaseException:
        with contextlib.suppress(OSError, ValueError):
            ctl.send(("error", traceback.format_exc()))
    finally:
        ctl.close()


class Worker(Sink):
    """The p2sp side: dm, fanout, login, idle and replay."""

    def __init__(self, spec: dict[str, Any], ctl: Connection) -> None:
        self.spec = spec
        self.ctl = ctl
        self.host: str = spec["host"]
        self.port: int = spec["port"]
        self.mode: str = spec["mode"]
        self.names: list[str] = spec["names"]
        self.mine: list[int] = spec["mine"]
        self.bounds: list[int] = spec["bounds"]
        self.window: int = spec["window"]
        self.timeout: float = spec["timeout"]
        self.rng = random.Random(spec["seed"])
        self.acking = spec["ack_interval"] > 0
        self.conns: list[Any] = []
        # receiving
        self.hist = Histogram()
        self.measure_latency = True
        self.uniq = 0
        self.dups = 0
        self.foreign = 0
        self.uniq_from: dict[int, int] = {}
        self.t_last_delivery = 0
        self.replayed = 0
        self.dirty: set[P2Conn] = set()
        self.ack_requests = 0
        self.ack_errors: Counter[str] = Counter()
        self.kicked: Counter[str] = Counter()
        self.error_events: Counter[str] = Counter()
        self.lost_conns = 0
        self.stopping_conns = False
        # sending
        self.send_hist = Histogram()
        self.lag_hist = Histogram()
        self.ok = 0
        self.ok_from: dict[int, int] = {}
        self.sent_to = [0] * (len(self.bounds) - 1)
        self.fail_codes: Counter[str] = Counter()
        self.t_last_ok = 0
        self.inflight_total = 0
        self.remaining_total = 0
        self.stopping = False
        self.scheduler_finished = False
        self.scheduled = 0
        self.skipped = 0
        self.all_sent: asyncio.Event | None = None
        self.progress: asyncio.Event | None = None
        self.t_go = 0

    # -- barriers -------------------------------------------------------------------

    async def sync(self, name: str, data: Any = None) -> Any:
        self.ctl.send((name, data))
        reply = await asyncio.get_running_loop().run_in_executor(None, self.ctl.recv)
        if reply == "abort":
            raise Abort
        return reply

    # -- connections ----------------------------------------------------------------

    def make_conn(self, idx: int) -> Any:
        return P2Conn(self, idx, self.names[idx])

    async def connect_all(self, indices: list[int], concurrency: int = 200) -> list[Any]:
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(concurrency)

        async def one(idx: int) -> Any:
            async with sem:
                delay = 0.05
                for attempt in range(8):
                    try:
                        _, conn = await asyncio.wait_for(
                            loop.create_connection(
                                lambda: self.make_conn(idx), self.host, self.port
                            ),
                            30,
                        )
                        return conn
                    except (OSError, TimeoutError):
                        if attempt == 7:
                            raise
                        await asyncio.sleep(delay)
                        delay *= 2
                raise AssertionError("unreachable")

        conns = await asyncio.gather(*(one(i) for i in indices))
        self.conns.extend(conns)
        return conns

    async def login_all(self, conns: list[P2Conn], concurrency: int = 200) -> None:
        sem = asyncio.Semaphore(concurrency)

        async def one(c: P2Conn) -> None:
            async with sem:
                await c.login(timeout=self.timeout)

        await asyncio.gather(*(one(c) for c in conns))

    def owner(self, idx: int) -> int:
        return bisect.bisect_right(self.bounds, idx) - 1

    # -- Sink: receiving ----------------------------------------------------------------

    def on_message(self, conn: P2Conn, p: Incoming, now: int) -> None:
        try:
            s_txt, n_txt, ts_txt = p.text.split(":")  # type: ignore[union-attr]
            sender = int(s_txt)
            n = int(n_txt)
            ts = int(ts_txt)
        except (AttributeError, ValueError):
            self.foreign += 1  # a notice or anything not sent by the benchmark
        else:
            if self.measure_latency:
                self.hist.add((now - ts) // 1000)
            if n > conn.last.get(sender, -1):
                conn.last[sender] = n
                self.uniq += 1
                self.uniq_from[sender] = self.uniq_from.get(sender, 0) + 1
                self.t_last_delivery = now
            else:
                self.dups += 1
            if p.replay:
                self.replayed += 1
        conv = p.conversation_id
        seq = p.seq
        if conv is not None and seq is not None:
            pending = conn.ack_pending
            if seq > pending.get(conv, 0):
                pending[conv] = seq
            conn.ack_count += 1
            self.dirty.add(conn)

    def after_batch(self, conn: P2Conn) -> None:
        if conn.ack_count >= ACK_BATCH:
            self.flush_acks(conn)
        progress = self.progress
        if progress is not None and not progress.is_set():
            progress.set()

    def on_sync_done(self, conn: P2Conn, p: Incoming, now: int) -> None:
        conn.t_mark = now
        super().on_sync_done(conn, p, now)

    def on_kicked(self, conn: Any, reason: str | None) -> None:
        self.kicked[reason or "?"] += 1

    def on_error_event(self, conn: Any, p: Incoming) -> None:
        self.error_events[p.code or "?"] += 1

    def on_lost(self, conn: Any, exc: Exception | None) -> None:
        if not self.stopping_conns:
            self.lost_conns += 1

    # -- acks (batched and cumulative, as the SDK does) --------------------------------

    def flush_acks(self, conn: P2Conn) -> None:
        if not self.acking or conn.ack_inflight or not conn.ack_pending or conn.closed:
            return
        pending = conn.ack_pending
        if len(pending) <= MAX_ACKS_PER_REQUEST:
            items = pending
            conn.ack_pending = {}
        else:
            keys = list(pending)[:MAX_ACKS_PER_REQUEST]
            items = {k: pending.pop(k) for k in keys}
        conn.ack_count = 0
        conn.ack_inflight = True
        self.ack_requests += 1
        conn.request(
            "ack",
            {"acks": [{"conversation_id": c, "seq": s} for c, s in items.items()]},
            self._on_ack,
        )

    def _on_ack(self, conn: P2Conn, p: Incoming, now: int) -> None:
        conn.ack_inflight = False
        if p.status != "ok":
            self.ack_errors[p.code or "?"] += 1
        if conn.ack_count >= ACK_BATCH or (self.stopping_acks and conn.ack_pending):
            self.flush_acks(conn)

    stopping_acks = False

    async def ack_loop(self, interval: float) -> None:
        while self.acking:
            await asyncio.sleep(interval)
            dirty, self.dirty = self.dirty, set()
            for conn in dirty:
                if conn.ack_inflight:
                    self.dirty.add(conn)  # try again next round
                else:
                    self.flush_acks(conn)

    async def final_acks(self, timeout: float = 30.0) -> bool:
        """Flush every pending ack and wait for the responses."""
        if not self.acking:
            return True
        self.stopping_acks = True
        deadline = monotonic_ns() + int(timeout * 1e9)
        while monotonic_ns() < deadline:
            busy = False
            for conn in self.conns:
                if conn.ack_pending and not conn.ack_inflight:
                    self.flush_acks(conn)
                if conn.ack_inflight or conn.ack_pending:
                    busy = busy or not conn.closed
            if not busy:
                return True
            await asyncio.sleep(0.01)
        return False

    # -- sending ----------------------------------------------------------------------------

    def choose(self, conn: Any) -> int:
        if conn.peers is not None:
            return conn.peers[self.rng.randrange(len(conn.peers))]
        n = len(self.names)
        dest = self.rng.randrange(n - 1)
        return dest + 1 if dest >= conn.idx else dest

    def send_next(self, conn: Any, ts: int = 0, scheduled: int = 0) -> None:
        """Send one message; ``ts`` is the time it carries (default: now)."""
        n = conn.sent_n
        conn.sent_n = n + 1
        conn.inflight += 1
        self.inflight_total += 1
        now = monotonic_ns()
        if scheduled:
            self.lag_hist.add((now - scheduled) // 1000)
        if not ts:
            ts = now
        text = f"{conn.idx}:{n}:{ts}"
        if self.mode == "fanout":
            conn.request(
                "sendgroup",
                {"group_id": self.spec["group_id"], "text": text},
                self.on_sent,
                now,
                -1,
            )
        else:
            dest = self.choose(conn)
            conn.request("send", {"to": self.names[dest], "text": text}, self.on_sent, now, dest)

    def on_sent(self, conn: Any, p: Incoming, now: int, t0: int, dest: int) -> None:
        conn.inflight -= 1
        self.inflight_total -= 1
        if p.status == "ok":
            self.ok += 1
            self.ok_from[conn.idx] = self.ok_from.get(conn.idx, 0) + 1
            if dest >= 0:
                self.sent_to[self.owner(dest)] += 1
            self.send_hist.add((now - t0) // 1000)
            self.t_last_ok = now
        else:
            self.fail_codes[p.code or "?"] += 1
        self.next_after_ack(conn)

    def next_after_ack(self, conn: Any) -> None:
        if conn.backlog:
            scheduled = conn.backlog.popleft()
            self.send_next(conn, scheduled, scheduled)
        elif conn.remaining > 0 and not self.stopping:
            conn.remaining -= 1
            self.remaining_total -= 1
            self.send_next(conn)
        if (
            self.inflight_total == 0
            and self.all_sent is not None
            and self.scheduler_finished
            and (self.stopping or self.remaining_total == 0)
        ):
            self.all_sent.set()

    def start_burst(self, senders: list[Any], per_sender: int) -> None:
        for conn in senders:
            conn.remaining = per_sender
            self.remaining_total += per_sender
        self.scheduler_finished = True
        for conn in senders:
            for _ in range(min(self.window, conn.remaining)):
                conn.remaining -= 1
                self.remaining_total -= 1
                self.send_next(conn)
        if self.inflight_total == 0:
            self.all_sent.set()  # type: ignore[union-attr]

    async def pace(self, senders: list[Any], rate: float, duration: float, phase: float) -> None:
        """Send ``rate`` messages/s round-robin over ``senders`` for ``duration`` s."""
        if not senders or rate <= 0:
            self.scheduler_finished = True
            return
        interval = 1e9 / rate
        total = int(rate * duration)
        t0 = self.t_go + int(phase * interval)
        i = 0
        count = len(senders)
        window = self.window
        while i < total and not self.stopping:
            due = min(total, int((monotonic_ns() - t0) / interval) + 1)
            while i < due:
                conn = senders[i % count]
                scheduled = t0 + int(i * interval)
                if conn.inflight < window:
                    # Leaves now: it carries the time it left, so the timer's
                    # granularity (the generator's, ~1 ms) is not the server's latency.
                    self.send_next(conn, 0, scheduled)
                else:
                    # Waits behind its client's earlier send: it carries the time it
                    # was due, so that wait counts (no coordinated omission).
                    conn.backlog.append(scheduled)
                i += 1
            wait = (t0 + i * interval - monotonic_ns()) / 1e9
            await asyncio.sleep(max(wait, 0.001))  # ticks of >= 1 ms: no busy loop
        # The window is over: what could not leave yet (each client waits for its
        # previous ok) is dropped and counted, so an overloaded run stays bounded.
        self.scheduled = i
        self.stopping = True
        for conn in senders:
            self.skipped += len(conn.backlog)
            conn.backlog.clear()
        self.scheduler_finished = True
        if self.inflight_total == 0:
            self.all_sent.set()  # type: ignore[union-attr]

    async def stop_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.stopping = True
        if self.inflight_total == 0:
            self.all_sent.set()  # type: ignore[union-attr]

    async def wait_received(self, expect: int, timeout: float) -> bool:
        deadline = monotonic_ns() + int(timeout * 1e9)
        self.progress = asyncio.Event()
        while self.uniq < expect:
            left = (deadline - monotonic_ns()) / 1e9
            if left <= 0:
                return False
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), min(left, 0.5))
        return True

    # -- modes ------------------------------------------------------------------------------

    async def main(self) -> None:
        runner = {
            "dm": self.run_messaging,
            "fanout": self.run_messaging,
            "login": self.run_login,
            "idle": self.run_idle,
            "replay": self.run_replay,
        }[self.mode]
        try:
            await runner()
        finally:
            self.stopping_conns = True
            for conn in self.conns:
                conn.close()
            await asyncio.sleep(0.2)

    async def prepare_messaging(self, conns: list[Any]) -> None:
        await self.login_all(conns)
        if self.mode == "fanout":
            sem = asyncio.Semaphore(100)
            gid = self.spec["group_id"]

            async def join(c: P2Conn) -> None:
                async with sem:
                    await c.call("joingroup", {"group_id": gid}, self.timeout)

            await asyncio.gather(*(join(c) for c in conns if c.idx != self.spec["owner"]))

    async def run_messaging(self) -> None:
        spec = self.spec
        conns = await self.connect_all(self.mine)
        await self.prepare_messaging(conns)
        peers = spec.get("peers") or 0
        if self.mode == "dm" and peers:
            n = len(self.names)
            for c in conns:
                c.peers = [d for d in self.rng.sample(range(n), min(n, peers + 1)) if d != c.idx]
                c.peers = c.peers[:peers]
        senders_set = set(spec["senders"])
        senders = [c for c in conns if c.idx in senders_set]
        self.all_sent = asyncio.Event()
        acker = asyncio.create_task(self.ack_loop(spec["ack_interval"]))
        warm = {"sent": 0, "s": 0.0}
        if spec.get("warmup") and self.mode == "dm":
            warm = await self.warm_up(senders)
        go = await self.sync(
            "ready", {"connected": len(conns), "senders": len(senders), "warmup": warm}
        )
        self.t_go = go["t_go"]
        self.foreign = 0  # the warm-up's messages are not the run's
        self.ack_requests = 0
        cpu0 = cpu_seconds()
        timers = []
        if spec["rate"]:
            pacer = self.pace(senders, go["rate"], spec["duration"], go["phase"])
            timers.append(asyncio.create_task(pacer))
        else:
            if spec["duration"]:
                timers.append(asyncio.create_task(self.stop_after(spec["duration"])))
            self.start_burst(senders, spec["messages"])
        sent_in_time = True
        try:
            await asyncio.wait_for(self.all_sent.wait(), self.timeout)
        except TimeoutError:
            sent_in_time = False
            self.stopping = True
        t_sent = monotonic_ns()
        reply = await self.sync(
            "sent",
            {
                "ok_from": self.ok_from,
                "sent_to": self.sent_to,
                "fail_codes": dict(self.fail_codes),
                "in_time": sent_in_time,
                "inflight": self.inflight_total,
                "scheduled": self.scheduled,
                "skipped": self.skipped,
            },
        )
        drained = await self.wait_received(reply["expect"], spec["drain_timeout"])
        t_drained = monotonic_ns()
        acked = await self.final_acks()
        acker.cancel()
        for t in timers:
            t.cancel()
        cpu1 = cpu_seconds()
        await self.sync(
            "done",
            {
                "hist": self.hist,
                "send_hist": self.send_hist,
                "lag_hist": self.lag_hist,
                "uniq": self.uniq,
                "uniq_from": self.uniq_from,
                "dups": self.dups,
                "foreign": self.foreign,
                "expect": reply["expect"],
                "drained": drained,
                "acked": acked,
                "ack_requests": self.ack_requests,
                "ack_errors": dict(self.ack_errors),
                "kicked": dict(self.kicked),
                "error_events": dict(self.error_events),
                "lost_conns": self.lost_conns,
                "protocol_errors": self.protocol_errors + self.decode_errors,
                "ok": self.ok,
                "t_last_delivery": self.t_last_delivery,
                "t_last_ok": self.t_last_ok,
                "t_sent": t_sent,
                "t_drained": t_drained,
                "cpu_s": cpu1 - cpu0,
                "cpu_total_s": cpu1,
            },
        )

    async def warm_up(self, senders: list[Any]) -> dict[str, Any]:
        """One unmeasured message from each sender to each of its peers, so every
        conversation the run uses exists before it starts (steady-state chat)."""
        t0 = monotonic_ns()
        sem = asyncio.Semaphore(200)
        sent = 0

        async def one(c: Any) -> None:
            nonlocal sent
            async with sem:
                for dest in c.peers or []:
                    await c.call("send", {"to": self.names[dest], "text": "warm-up"}, self.timeout)
                    sent += 1

        await asyncio.gather(*(one(c) for c in senders))
        await asyncio.sleep(1.0)  # their deliveries and acks settle before the run
        return {"sent": sent, "s": round((monotonic_ns() - t0) / 1e9, 2)}

    async def run_login(self) -> None:
        conns = await self.connect_all(self.mine)
        go = await self.sync("ready", {"connected": len(conns)})
        self.t_go = go["t_go"]
        cpu0 = cpu_seconds()
        login_hist = Histogram()
        sync_hist = Histogram()
        fails: Counter[str] = Counter()
        last = {"ok": 0, "sync": 0}
        waiting = {"n": len(conns)}
        done = asyncio.Event()

        finished: set[P2Conn] = set()

        def finished_one(conn: P2Conn) -> None:
            if conn not in finished:
                finished.add(conn)
                waiting["n"] -= 1
                if waiting["n"] == 0:
                    done.set()

        def on_login(conn: P2Conn, p: Incoming, now: int, t0: int) -> None:
            login_hist.add((now - t0) // 1000)
            if p.status == "ok":
                last["ok"] = max(last["ok"], now)
            else:
                fails[p.code or "?"] += 1
                finished_one(conn)

        def on_sync(conn: P2Conn, p: Incoming, now: int) -> None:
            sync_hist.add((now - conn.t_mark) // 1000)
            last["sync"] = max(last["sync"], now)
            finished_one(conn)

        def on_lost(conn: P2Conn, exc: Exception | None) -> None:
            if not self.stopping_conns:
                self.lost_conns += 1
                if conn not in finished:
                    fails["connection_lost"] += 1
                finished_one(conn)

        # the connections report to these for this mode
        self.on_sync_done = on_sync  # type: ignore[method-assign]
        self.on_lost = on_lost  # type: ignore[method-assign]
        for conn in conns:
            conn.t_mark = monotonic_ns()
            conn.request(
                "login",
                {"username": conn.name, "password": PASSWORD},
                on_login,
                conn.t_mark,
            )
        in_time = True
        try:
            await asyncio.wait_for(done.wait(), self.timeout)
        except TimeoutError:
            in_time = False
        cpu1 = cpu_seconds()
        await self.sync(
            "done",
            {
                "login_hist": login_hist,
                "sync_hist": sync_hist,
                "fails": dict(fails),
                "unanswered": waiting["n"],
                "in_time": in_time,
                "t_last_ok": last["ok"],
                "t_last_sync": last["sync"],
                "lost_conns": self.lost_conns,
                "kicked": dict(self.kicked),
                "cpu_s": cpu1 - cpu0,
                "cpu_total_s": cpu1,
            },
        )

    async def run_idle(self) -> None:
        t0 = monotonic_ns()
        conns = await self.connect_all(self.mine)
        await self.login_all(conns)
        t1 = monotonic_ns()
        await self.sync("ready", {"connected": len(conns), "connect_login_s": (t1 - t0) / 1e9})
        ping_hist = Histogram()
        answered = {"n": 0}
        done = asyncio.Event()

        def on_pong(conn: P2Conn, p: Incoming, now: int, t: int) -> None:
            ping_hist.add((now - t) // 1000)
            if p.status == "ok":
                answered["n"] += 1
            if answered["n"] == len(conns):
                done.set()

        # One ping per connection, spread evenly over PING_SPREAD seconds: every
        # socket is alive, and the round trip is that of a server at rest.
        t0 = monotonic_ns()
        gap = PING_SPREAD * 1e9 / max(1, len(conns))
        for i, conn in enumerate(conns):
            wait = (t0 + i * gap - monotonic_ns()) / 1e9
            if wait > 0:
                await asyncio.sleep(wait)
            if not conn.closed:
                conn.request("ping", None, on_pong, monotonic_ns())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 30)
        await self.sync(
            "done",
            {
                "ping_hist": ping_hist,
                "answered": answered["n"],
                "lost_conns": self.lost_conns,
                "kicked": dict(self.kicked),
                "cpu_total_s": cpu_seconds(),
            },
        )

    async def run_replay(self) -> None:
        spec = self.spec
        pending: int = spec["pending"]
        target = 0
        senders = await self.connect_all([i for i in self.mine if i != target])
        await self.login_all(senders)
        per = [
            pending // len(senders) + (1 if k < pending % len(senders) else 0)
            for k in range(len(senders))
        ]
        self.all_sent = asyncio.Event()
        for conn in senders:
            conn.peers = [target]
        t0 = monotonic_ns()
        self.window = max(self.window, 16)
        for conn, count in zip(senders, per, strict=True):
            conn.remaining = count
            self.remaining_total += count
        self.scheduler_finished = True
        for conn in senders:
            for _ in range(min(self.window, conn.remaining)):
                conn.remaining -= 1
                self.remaining_total -= 1
                self.send_next(conn)
        await asyncio.wait_for(self.all_sent.wait(), self.timeout)
        load_s = (monotonic_ns() - t0) / 1e9
        self.stopping_conns = True
        for conn in senders:
            conn.close()
        await asyncio.sleep(0.5)
        self.stopping_conns = False
        (conn,) = await self.connect_all([target])
        self.measure_latency = False
        await self.sync(
            "loaded",
            {"ok": self.ok, "fail_codes": dict(self.fail_codes), "load_s": load_s},
        )
        cpu0 = cpu_seconds()
        conn.synced = asyncio.get_running_loop().create_future()
        t_login = monotonic_ns()
        login = await conn.call("login", {"username": conn.name, "password": PASSWORD})
        t_ok = monotonic_ns()
        count = await asyncio.wait_for(conn.synced, self.timeout)
        t_sync = conn.t_mark
        uniq_at_sync = self.uniq
        # Anything after sync_done would be a message the replay missed.
        await asyncio.sleep(0.2)
        acked = await self.final_acks()
        cpu1 = cpu_seconds()
        await self.sync(
            "done",
            {
                "login_status": login.status,
                "login_ms": (t_ok - t_login) / 1e6,
                "sync_done_ms": (t_sync - t_login) / 1e6,
                "sync_done_count": count,
                "uniq_at_sync": uniq_at_sync,
                "uniq": self.uniq,
                "replayed": self.replayed,
                "dups": self.dups,
                "foreign": self.foreign,
                "ok": self.ok,
                "acked": acked,
                "ack_requests": self.ack_requests,
                "ack_errors": dict(self.ack_errors),
                "lost_conns": self.lost_conns,
                "kicked": dict(self.kicked),
                "cpu_s": cpu1 - cpu0,
                "cpu_total_s": cpu1,
            },
        )


class IrcWorker(Worker, IrcSink):  # type: ignore[misc]
    """The same dm load against ngircd: PRIVMSG, with a PING after each as its ack."""

    def make_conn(self, idx: int) -> Any:
        return IrcConn(self, idx, self.names[idx])

    async def prepare_messaging(self, conns: list[Any]) -> None:
        sem = asyncio.Semaphore(200)

        async def one(c: IrcConn) -> None:
            async with sem:
                await c.register(IRC_OPER, self.timeout)

        await asyncio.gather(*(one(c) for c in conns))

    async def main(self) -> None:
        if self.mode != "dm":
            raise ValueError("the ngircd peer runs the dm mode only")
        try:
            await self.run_messaging()
        finally:
            self.stopping_conns = True
            for conn in self.conns:
                conn.close()
            await asyncio.sleep(0.2)

    async def ack_loop(self, interval: float) -> None:
        return None  # IRC has no delivery acknowledgement

    async def warm_up(self, senders: list[Any]) -> dict[str, Any]:
        return {"sent": 0, "s": 0.0}  # IRC has no conversations to create

    async def final_acks(self, timeout: float = 30.0) -> bool:
        return True

    def send_next(self, conn: Any, ts: int = 0, scheduled: int = 0) -> None:
        n = conn.sent_n
        conn.sent_n = n + 1
        conn.inflight += 1
        self.inflight_total += 1
        now = monotonic_ns()
        if scheduled:
            self.lag_hist.add((now - scheduled) // 1000)
        if not ts:
            ts = now
        dest = self.choose(conn)
        conn.pongs.append((now, dest))
        conn.write(
            b"PRIVMSG %s :%d:%d:%d\r\nPING :%d\r\n"
            % (self.names[dest].encode(), conn.idx, n, ts, n)
        )

    def on_pong(self, conn: IrcConn, now: int) -> None:
        if not conn.pongs:
            return
        t0, dest = conn.pongs.popleft()
        if conn.fail_next:
            conn.fail_next -= 1
            self.on_sent(conn, Incoming(status="fail", code="no_such_nick"), now, t0, dest)
        else:
            self.on_sent(conn, _OK, now, t0, dest)

    def on_irc_message(self, conn: IrcConn, text: bytes, now: int) -> None:
        try:
            s_txt, n_txt, ts_txt = text.split(b":")
            sender = int(s_txt)
            n = int(n_txt)
            ts = int(ts_txt)
        except ValueError:
            self.foreign += 1
            return
        self.hist.add((now - ts) // 1000)
        if n > conn.last.get(sender, -1):
            conn.last[sender] = n
            self.uniq += 1
            self.uniq_from[sender] = self.uniq_from.get(sender, 0) + 1
            self.t_last_delivery = now
        else:
            self.dups += 1
        progress = self.progress
        if progress is not None and not progress.is_set():
            progress.set()


_OK = Incoming(status="ok")
