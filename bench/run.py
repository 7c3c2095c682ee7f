"""``python -m bench``: start a server, drive it from K processes, report.

Every mode follows the same shape: start the server under test in a
temporary directory, do the setup that is not measured (register users,
create the group, load the backlog), step the workers through their
barriers while reading the server's CPU seconds and memory from /proc
between phases, stop the server with SIGTERM, merge what the workers
measured and print it (``--json FILE`` writes it too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import wait as mp_wait
from pathlib import Path
from time import monotonic_ns
from typing import Any

if __package__ in (None, ""):  # run as ``python bench/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.profile import PY_SPY_MISSING, Profiler, py_spy
from bench.servers import (
    HOST,
    NGIRCD_INSTALL,
    NgircdServer,
    P2spServer,
    ProcStats,
    ServerError,
    export_source,
    ngircd_binary,
    ngircd_version,
    raise_nofile,
)
from bench.stats import merged
from bench.wire import PASSWORD, P2Conn, RequestFailed, Sink
from bench.worker import child_main
from p2sp.client.client import ACK_INTERVAL

ROOT = Path(__file__).resolve().parent.parent
MODES = ("dm", "fanout", "login", "idle", "replay")
#: scrypt cost for setup when the mode does not measure logins (fast registration)
SETUP_SCRYPT_N = 16
DEFAULT_SCRYPT_N = 2**14  # the server's default (p2sp.server.config)

#: The project's speed targets; the benchmark reports against them, it does not enforce them.
TARGETS = {
    "dm": "dm >= 50,000 msgs/s sustained with 0 lost (N=1000, M=200)",
    "paced": "paced 4,000 msgs/s with p99 <= 10 ms",
    "fanout": "fanout to 1,000 online members >= 200,000 deliveries/s",
    "idle": "10,000 idle connections <= 150 MB server RSS",
    "replay": "replay of 10,000 pending <= 1 s to sync_done",
    "login": "login storm of 1,000 users with no failures",
}


class BenchError(RuntimeError):
    pass


# --- command line ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load benchmark of the p2sp server (and of ngircd, for comparison).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--mode", choices=MODES, default="dm", help="what to measure")
    p.add_argument(
        "--peer",
        choices=("p2sp", "ngircd"),
        default="p2sp",
        help="server under test (ngircd: dm mode only)",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="dm mode: run p2sp then ngircd with the same load and print the ratios",
    )
    p.add_argument(
        "-n",
        "--clients",
        type=int,
        help="clients (dm), members (fanout), users (login), connections (idle); "
        "default 200 / 200 / 1000 / 10000",
    )
    p.add_argument("-m", "--messages", type=int, default=50, help="messages per sender (burst)")
    p.add_argument(
        "--window", type=int, default=1, help="outstanding sends per client (1: wait for each ok)"
    )
    p.add_argument(
        "--rate", type=float, default=0.0, help="paced: total messages/s over all senders"
    )
    p.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="paced: seconds to send for (default 10); burst: stop sending after this",
    )
    p.add_argument("--senders", type=int, help="fanout: senders (default 10); replay: default 10")
    p.add_argument(
        "--peers",
        type=int,
        default=0,
        help="dm: each client sends to this many fixed partners (0: any other client)",
    )
    p.add_argument(
        "--warmup",
        action="store_true",
        help="dm with --peers: before the run, each client sends one unmeasured message to "
        "each partner, so no conversation is created during the measurement",
    )
    p.add_argument("--pending", type=int, default=10000, help="replay: messages waiting")
    p.add_argument("--procs", type=int, default=1, help="load-generator processes")
    p.add_argument(
        "--scrypt-n",
        type=int,
        help=f"server scrypt cost (default: {SETUP_SCRYPT_N} for setup speed; "
        f"login mode: the server's default {DEFAULT_SCRYPT_N})",
    )
    p.add_argument("--database-url", help="database for the server (default: temporary SQLite)")
    p.add_argument(
        "--server-rev",
        metavar="REV",
        help="run the server from this commit (git archive into the temp dir) instead of "
        "the working tree, e.g. HEAD while others edit p2sp/",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra server setting, e.g. P2SP_COMMIT_WINDOW=0.001 (repeatable)",
    )
    p.add_argument("--server-log-level", default="INFO", help="P2SP_LOG_LEVEL of the server")
    p.add_argument(
        "--ack-interval",
        type=float,
        default=ACK_INTERVAL,
        help="receivers flush acks this often (s); the default is the SDK's",
    )
    p.add_argument(
        "--no-ack",
        action="store_true",
        help="diagnostic: receivers never ack (the server's cursors stay put)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="seconds receivers wait for the last deliveries",
    )
    p.add_argument("--timeout", type=float, default=600.0, help="limit of each phase (s)")
    p.add_argument("--settle", type=float, default=2.0, help="idle: seconds before reading RSS")
    p.add_argument("--seed", type=int, default=1, help="random seed of destinations")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="record the server with py-spy during the measured window "
        "(.svg flame graph, .json speedscope, else raw stacks summarised in the report)",
    )
    p.add_argument(
        "--profile-gil", action="store_true", help="py-spy --gil: only the thread holding the GIL"
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    return p


def defaults(args: argparse.Namespace) -> None:
    if args.clients is None:
        args.clients = {"dm": 200, "fanout": 200, "login": 1000, "idle": 10000, "replay": 0}[
            args.mode
        ]
    if args.senders is None:
        args.senders = 10
    if args.rate and not args.duration:
        args.duration = 10.0
    args.procs = max(1, args.procs)


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = {
        "P2SP_LOG_LEVEL": args.server_log_level,
        # Every benchmark client comes from 127.0.0.1: lift the per-address
        # limits on registrations and on logins in flight (a login storm is
        # thousands of logins from one address at once).
        "P2SP_REG_MAX_PER_IP": "10000000",
        "P2SP_LOGIN_MAX_FAILURES_PER_IP": "10000000",
    }
    if args.mode in ("dm", "replay"):
        env["P2SP_DM_POLICY"] = "anyone"
    if args.scrypt_n:
        env["P2SP_SCRYPT_N"] = str(args.scrypt_n)
    elif args.mode != "login":
        env["P2SP_SCRYPT_N"] = str(SETUP_SCRYPT_N)
    if args.mode == "fanout" and args.clients > 5000:
        env["P2SP_GROUP_MEMBER_CAP"] = str(args.clients)
    for item in args.server_env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--server-env wants KEY=VALUE, got {item!r}")
        env[key.upper() if key.upper().startswith("P2SP_") else f"P2SP_{key.upper()}"] = value
    return env


# --- facts about the run --------------------------------------------------------------


def git(*cmd: str) -> str:
    try:
        out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "calibration_ms": calibrate(),
    }


def calibrate() -> float:
    """Milliseconds for a fixed pure-Python loop (best of 3): the machine's speed now.

    The machine is a VM whose speed drifts with its host's load (no steal time
    shows in the guest): the same loop varies by 30 % and more between idle
    moments. Compare runs taken at different times with this figure at hand.
    """
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        x = 0
        for i in range(1_000_000):
            x += i
        best = min(best, time.perf_counter() - t)
    return round(best * 1000, 1)


def command_line() -> str:
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    exe = argv[0]
    with contextlib.suppress(ValueError):
        exe = os.path.relpath(exe, Path.cwd()) if exe.startswith(str(ROOT)) else exe
    return shlex.join([exe, *argv[1:]])


# --- setup through the protocol (parent, not measured) --------------------------------


async def _open(port: int, name: str, sink: Sink) -> P2Conn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: P2Conn(sink, 0, name), HOST, port)
    return conn


async def register_users(port: int, names: list[str], concurrency: int = 32) -> None:
    sink = Sink()
    conns = [await _open(port, "", sink) for _ in range(min(concurrency, len(names)))]

    async def run(k: int) -> None:
        c = conns[k]
        for name in names[k :: len(conns)]:
            await c.call("reg", {"username": name, "password": PASSWORD})

    try:
        await asyncio.gather(*(run(k) for k in range(len(conns))))
    finally:
        for c in conns:
            c.close()
        await asyncio.sleep(0.05)


async def create_group(port: int, owner: str, name: str, size: int) -> int:
    conn = await _open(port, owner, Sink())
    try:
        await conn.login()
        p = await conn.call("newgroup", {"name": name, "public": True, "max_members": size})
        return int(json.loads(bytes(p.data))["group_id"])
    finally:
        conn.close()
        await asyncio.sleep(0.05)


# --- the worker processes --------------------------------------------------------------


class Fleet:
    """K worker processes and the barrier protocol over their pipes."""

    def __init__(self, specs: list[dict[str, Any]]) -> None:
        ctx = multiprocessing.get_context("fork")
        self.procs = []
        self.pipes = []
        for spec in specs:
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=child_main, args=(spec, child_end), daemon=True)
            proc.start()
            child_end.close()
            self.procs.append(proc)
            self.pipes.append(parent_end)

    def gather(self, name: str, timeout: float) -> list[Any]:
        """Wait until every worker reaches barrier ``name``; their data, in worker order."""
        out: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        index = {id(p): i for i, p in enumerate(self.pipes)}
        while len(out) < len(self.pipes):
            left = deadline - time.monotonic()
            waiting = [p for i, p in enumerate(self.pipes) if i not in out]
            ready = mp_wait(waiting, timeout=max(0.0, left))
            if not ready:
                raise BenchError(
                    f"workers {sorted(set(range(len(self.pipes))) - set(out))} "
                    f"did not reach '{name}' within {timeout:.0f} s"
                )
            for pipe in ready:
                i = index[id(pipe)]
                try:
                    msg = pipe.recv()  # type: ignore[union-attr]
                except EOFError:
                    raise BenchError(f"worker {i} died before '{name}'") from None
                if msg[0] == "error":
                    raise BenchError(f"worker {i} failed:\n{msg[1]}")
                if msg[0] != name:
                    raise BenchError(f"worker {i} reached '{msg[0]}', expected '{name}'")
                out[i] = msg[1]
        return [out[i] for i in range(len(self.pipes))]

    def tell(self, replies: list[Any]) -> None:
        for pipe, reply in zip(self.pipes, replies, strict=True):
            pipe.send(reply)

    def tell_all(self, reply: Any) -> None:
        self.tell([reply] * len(self.pipes))

    def close(self, timeout: float = 15.0) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, ValueError, BrokenPipeError):
                pipe.send("abort")
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(5)

    def stop(self, timeout: float = 30.0) -> None:
        """Let the workers close their connections and exit after the last barrier."""
        self.tell_all("close")
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
        self.close()


def slices(n: int, k: int) -> list[int]:
    k = max(1, min(k, n)) if n else 1
    return [n * p // k for p in range(k + 1)]


# --- one run ---------------------------------------------------------------------------------


def run_one(args: argparse.Namespace, peer: str) -> dict[str, Any]:
    raise_nofile()
    mode = args.mode
    if peer == "ngircd" and mode != "dm":
        raise BenchError("the ngircd comparison runs the dm mode only")
    runid = secrets.token_hex(2)
    tmp = Path(tempfile.mkdtemp(prefix=f"p2sp-bench-{mode}-"))
    report: dict[str, Any] = {
        "mode": mode,
        "variant": ("paced" if args.rate else "burst") if mode in ("dm", "fanout") else None,
        "peer": peer,
        "command": command_line(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_server_changes": bool(git("status", "--porcelain", "--", "p2sp")),
        "machine": machine(),
    }
    server: P2spServer | NgircdServer
    if peer == "ngircd":
        binary = ngircd_binary()
        if binary is None:
            raise BenchError(NGIRCD_INSTALL)
        server = NgircdServer(tmp, binary)
        report["server"] = {"name": "ngircd", "version": ngircd_version(binary)}
        report["database"] = None
    else:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        env = server_env(args)
        source = None
        if args.server_rev:
            rev = git("rev-parse", "--short", args.server_rev)
            if not rev:
                raise BenchError(f"--server-rev {args.server_rev}: no such commit")
            source = tmp / f"server-{rev}"
            export_source(ROOT, rev, source)
            report["commit"] = rev
            report["uncommitted_server_changes"] = False
            report["server_source"] = f"git archive {rev} (clean export)"
        else:
            report["server_source"] = "working tree"
        server = P2spServer(tmp, url, env, source)
        report["server"] = {"name": "p2sp", "env": env}
        report["database"] = url
    fleet: Fleet | None = None
    try:
        t = time.monotonic()
        server.start()
        report["server"]["command"] = shlex.join(server.command())
        report["server"]["start_s"] = round(time.monotonic() - t, 2)
        assert server.stats is not None
        report["server_at_start"] = _public(server.stats.snapshot())
        runner = {
            "dm": run_messaging,
            "fanout": run_messaging,
            "login": run_login,
            "idle": run_idle,
            "replay": run_replay,
        }[mode]
        fleet_box: list[Fleet] = []
        try:
            runner(args, peer, server, runid, report, fleet_box)
            w, g = report.get("server_window"), report.get("generator", {})
            if w and "cpu_s" in g:
                other = w["machine_busy_s"] - w["cpu_s"] - g["cpu_s"]
                w["other_processes_cpu_s"] = round(max(0.0, other), 2)
        finally:
            fleet = fleet_box[0] if fleet_box else None
            if fleet is not None:
                fleet.close()
        report["server_at_end"] = _public(server.stats.snapshot())
    except (BenchError, ServerError, RequestFailed, OSError) as exc:
        tail = server.log_tail() if server.proc is not None else ""
        raise BenchError(
            f"{type(exc).__name__}: {exc}\n--- server log (last lines) ---\n{tail}"
        ) from exc
    finally:
        code = server.stop()
        report["server_exit_code"] = code
        if isinstance(server, P2spServer) and server.proc is not None:
            report["server_log"] = server.log_findings()
            if report["server_log"]["tracebacks"]:
                report["server_traceback"] = server.first_traceback()
        if args.keep:
            report["workdir"] = str(tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return report


def _names(runid: str, n: int) -> list[str]:
    return [f"b{runid}_{i}" for i in range(n)]


def _spec(args: argparse.Namespace, peer: str, port: int, names: list[str]) -> dict[str, Any]:
    return {
        "peer": peer,
        "mode": args.mode,
        "host": HOST,
        "port": port,
        "names": names,
        "window": max(1, args.window),
        "messages": args.messages,
        "rate": args.rate,
        "duration": args.duration,
        "peers": args.peers,
        "warmup": args.warmup,
        "pending": args.pending,
        "ack_interval": 0 if args.no_ack else args.ack_interval,
        "drain_timeout": args.drain_timeout,
        "timeout": args.timeout,
        "group_id": None,
        "owner": -1,
        "senders": [],
    }


def _specs(base: dict[str, Any], bounds: list[int], seed: int) -> list[dict[str, Any]]:
    out = []
    for p in range(len(bounds) - 1):
        spec = dict(base)
        spec["mine"] = list(range(bounds[p], bounds[p + 1]))
        spec["bounds"] = bounds
        spec["seed"] = seed * 1000 + p
        out.append(spec)
    return out


def _profiler(args: argparse.Namespace, server: Any) -> Profiler | None:
    if not args.profile or not isinstance(server, P2spServer):
        return None
    prof = Profiler(args.profile, gil=args.profile_gil)
    prof.start(server.proc.pid)  # type: ignore[union-attr]
    return prof


def _stop_profiler(prof: Profiler | None, report: dict[str, Any]) -> None:
    if prof is not None:
        report["profile"] = prof.stop()


def _public(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items() if k not in ("thread_cpu", "machine_busy_s")}


def _cpu_window(stats: ProcStats, before: dict[str, Any], t0: int, t1: int) -> dict[str, Any]:
    after = stats.snapshot()
    wall = (t1 - t0) / 1e9
    cpu = after["cpu_s"] - before["cpu_s"]
    # Which threads burnt it: the event loop (the main thread) or the others
    # (aiosqlite's connection threads, the executor that runs scrypt).
    t_before, t_after = before["thread_cpu"], after["thread_cpu"]
    main = t_after.get(stats.pid, 0.0) - t_before.get(stats.pid, 0.0)
    others = sorted(
        (round(v - t_before.get(tid, 0.0), 2) for tid, v in t_after.items() if tid != stats.pid),
        reverse=True,
    )
    return {
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "cpu_util": round(cpu / wall, 3) if wall > 0 else None,
        "sys_s": round(after["sys_s"] - before["sys_s"], 3),
        "machine_busy_s": round(after["machine_busy_s"] - before["machine_busy_s"], 2),
        "main_thread_cpu_s": round(main, 3),
        "other_threads_cpu_s": [x for x in others if x > 0][:6],
        "rss_kb": after["rss_kb"],
        "hwm_kb": after["hwm_kb"],
        "threads": after["threads"],
    }


def run_messaging(
    args: argparse.Namespace,
    peer: str,
    server: Any,
    runid: str,
    report: dict[str, Any],
    fleet_box: list[Fleet],
) -> None:
    mode = args.mode
    n = args.clients
    if n < 2:
        raise BenchError("need at least 2 clients")
    if args.warmup and not args.peers:
        raise BenchError("--warmup needs --peers P (each client's fixed partners)")
    names = _names(runid, n)
    setup: dict[str, Any] = {}
    base = _spec(args, peer, server.port, names)
    if mode == "fanout":
        senders = sorted({i * n // args.senders for i in range(min(args.senders, n))})
    else:
        senders = list(range(n))
    base["senders"] = senders
    if peer == "p2sp":
        t = time.monotonic()
        asyncio.run(register_users(server.port, names))
        setup["register_s"] = round(time.monotonic() - t, 2)
        if mode == "fanout":
            t = time.monotonic()
            base["group_id"] = asyncio.run(create_group(server.port, names[0], f"bench-{runid}", n))
            base["owner"] = 0
            setup["group_id"] = base["group_id"]
            setup["create_group_s"] = round(time.monotonic() - t, 2)
        setup["dm_policy"] = "anyone (P2SP_DM_POLICY; no friendships)" if mode == "dm" else None
    else:
        setup["irc"] = "NICK/USER, OPER, MODE +F per client; PING after each PRIVMSG as its ack"
    bounds = slices(n, args.procs)
    specs = _specs(base, bounds, args.seed)
    fleet = Fleet(specs)
    fleet_box.append(fleet)
    k = len(specs)
    t = time.monotonic()
    ready = fleet.gather("ready", args.timeout)
    setup["connect_login_s"] = round(time.monotonic() - t, 2)
    report["setup"] = setup
    sender_counts = [r["senders"] for r in ready]
    if args.warmup and peer == "p2sp":
        setup["warmup_sends"] = sum(r["warmup"]["sent"] for r in ready)
        setup["warmup_s"] = max(r["warmup"]["s"] for r in ready)
        setup["connect_login_s"] = round(setup["connect_login_s"] - setup["warmup_s"], 2)
    total_senders = sum(sender_counts)
    before = server.stats.snapshot()
    report["server_before"] = _public(before)
    t_go = monotonic_ns() + 20_000_000  # a moment for the replies to reach every worker
    replies = []
    for p in range(k):
        share = args.rate * sender_counts[p] / total_senders if total_senders else 0
        replies.append({"t_go": t_go, "rate": share, "phase": p / k})
    prof = _profiler(args, server)
    fleet.tell(replies)
    sent = fleet.gather("sent", args.timeout + 30)
    ok_from: dict[int, int] = {}
    for s in sent:
        for idx, c in s["ok_from"].items():
            ok_from[idx] = ok_from.get(idx, 0) + c
    if mode == "fanout":
        members = [bounds[p + 1] - bounds[p] for p in range(k)]
        expect = [0] * k
        for idx, c in ok_from.items():
            own = next(p for p in range(k) if bounds[p] <= idx < bounds[p + 1])
            for p in range(k):
                expect[p] += c * (members[p] - (1 if p == own else 0))
        expected_from = {idx: c * (n - 1) for idx, c in ok_from.items()}
    else:
        expect = [sum(s["sent_to"][p] for s in sent) for p in range(k)]
        expected_from = dict(ok_from)
    fleet.tell([{"expect": e} for e in expect])
    done = fleet.gather("done", args.drain_timeout + args.timeout)
    t_end = monotonic_ns()
    window = _cpu_window(server.stats, before, t_go, t_end)
    _stop_profiler(prof, report)
    fleet.stop()

    uniq_from: dict[int, int] = {}
    for d in done:
        for idx, c in d["uniq_from"].items():
            uniq_from[idx] = uniq_from.get(idx, 0) + c
    lost = sum(max(0, e - uniq_from.get(idx, 0)) for idx, e in expected_from.items())
    extra = sum(max(0, c - expected_from.get(idx, 0)) for idx, c in uniq_from.items())
    delivered = sum(d["uniq"] for d in done)
    ok = sum(d["ok"] for d in done)
    t_last = max([d["t_last_delivery"] for d in done] + [t_go])
    t_last_ok = max([d["t_last_ok"] for d in done] + [t_go])
    span = (t_last - t_go) / 1e9
    send_span = (t_last_ok - t_go) / 1e9
    fails: dict[str, int] = {}
    for s in sent:
        for code, c in s["fail_codes"].items():
            fails[code] = fails.get(code, 0) + c
    lat = merged([d["hist"] for d in done])
    result = {
        "clients": n,
        "senders": total_senders,
        "procs": k,
        "window": max(1, args.window),
        "messages_per_sender": None if args.rate else args.messages,
        "rate_target": args.rate or None,
        "duration_s": args.duration or None,
        "peers": args.peers or "any",
        "warmed_up": bool(args.warmup and args.peers),
        "sent_ok": ok,
        "send_failures": fails,
        "expected_deliveries": sum(expected_from.values()),
        "delivered": delivered,
        "lost": lost,
        "duplicates": sum(d["dups"] for d in done),
        "unexpected": extra,
        "unanswered_sends": sum(s["inflight"] for s in sent),
        "other_messages": sum(d["foreign"] for d in done),
        "all_in_time": all(s["in_time"] for s in sent) and all(d["drained"] for d in done),
        "delivery_span_s": round(span, 3),
        "throughput_per_s": round(delivered / span, 1) if span > 0 else None,
        "send_rate_per_s": round(ok / send_span, 1) if send_span > 0 else None,
        "latency_ms": lat.summary_ms(),
        "send_ack_ms": merged([d["send_hist"] for d in done]).summary_ms(),
        "acks": "none (IRC has no delivery ack)"
        if peer == "ngircd"
        else "off (--no-ack)"
        if args.no_ack
        else f"every {args.ack_interval} s or 200",
        "ack_requests": sum(d["ack_requests"] for d in done),
        "ack_errors": _sum_counts(d["ack_errors"] for d in done),
        "kicked": _sum_counts(d["kicked"] for d in done),
        "error_events": _sum_counts(d["error_events"] for d in done),
        "lost_connections": sum(d["lost_conns"] for d in done),
        "protocol_errors": sum(d["protocol_errors"] for d in done),
    }
    if args.rate:
        lag = merged([d["lag_hist"] for d in done])
        result["schedule_lag_ms"] = lag.summary_ms()
        result["scheduled"] = sum(s["scheduled"] for s in sent)
        result["not_sent_in_window"] = sum(s["skipped"] for s in sent)
    report["result"] = result
    report["server_window"] = window
    report["generator"] = {
        "procs": k,
        "cpu_s": round(sum(d["cpu_s"] for d in done), 3),
        "cpu_total_s": round(sum(d["cpu_total_s"] for d in done), 3),
    }
    if delivered:
        report["server_window"]["cpu_us_per_delivery"] = round(window["cpu_s"] * 1e6 / delivered, 1)


def _sum_counts(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in items:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def run_login(
    args: argparse.Namespace,
    peer: str,
    server: Any,
    runid: str,
    report: dict[str, Any],
    fleet_box: list[Fleet],
) -> None:
    n = args.clients
    names = _names(runid, n)
    t = time.monotonic()
    asyncio.run(register_users(server.port, names))
    report["setup"] = {
        "register_s": round(time.monotonic() - t, 2),
        "scrypt_n": args.scrypt_n or DEFAULT_SCRYPT_N,
    }
    specs = _specs(_spec(args, peer, server.port, names), slices(n, args.procs), args.seed)
    fleet = Fleet(specs)
    fleet_box.append(fleet)
    fleet.gather("ready", args.timeout)
    before = server.stats.snapshot()
    report["server_before"] = _public(before)
    t_go = monotonic_ns() + 20_000_000
    prof = _profiler(args, server)
    fleet.tell_all({"t_go": t_go})
    done = fleet.gather("done", args.timeout + 30)
    window = _cpu_window(server.stats, before, t_go, monotonic_ns())
    _stop_profiler(prof, report)
    fleet.stop()
    fails = _sum_counts(d["fails"] for d in done)
    unanswered = sum(d["unanswered"] for d in done)
    t_ok = max(d["t_last_ok"] for d in done)
    t_sync = max(d["t_last_sync"] for d in done)
    report["result"] = {
        "users": n,
        "procs": len(specs),
        "scrypt_n": args.scrypt_n or DEFAULT_SCRYPT_N,
        "logged_in": n - sum(fails.values()) - unanswered,
        "failures": fails,
        "unanswered": unanswered,
        "time_to_all_logged_in_s": round((t_ok - t_go) / 1e9, 3) if t_ok else None,
        "time_to_all_synced_s": round((t_sync - t_go) / 1e9, 3) if t_sync else None,
        "login_latency_ms": merged([d["login_hist"] for d in done]).summary_ms(),
        "login_to_sync_done_ms": merged([d["sync_hist"] for d in done]).summary_ms(),
        "lost_connections": sum(d["lost_conns"] for d in done),
        "kicked": _sum_counts(d["kicked"] for d in done),
    }
    report["server_window"] = window
    report["generator"] = {
        "procs": len(specs),
        "cpu_s": round(sum(d["cpu_s"] for d in done), 3),
    }


def run_idle(
    args: argparse.Namespace,
    peer: str,
    server: Any,
    runid: str,
    report: dict[str, Any],
    fleet_box: list[Fleet],
) -> None:
    n = args.clients
    names = _names(runid, n)
    t = time.monotonic()
    asyncio.run(register_users(server.port, names))
    report["setup"] = {"register_s": round(time.monotonic() - t, 2)}
    time.sleep(1.0)  # the registration connections' session ends are written
    before = server.stats.snapshot()
    report["server_before"] = _public(before)
    specs = _specs(_spec(args, peer, server.port, names), slices(n, args.procs), args.seed)
    fleet = Fleet(specs)
    fleet_box.append(fleet)
    ready = fleet.gather("ready", args.timeout)
    connected = sum(r["connected"] for r in ready)
    time.sleep(args.settle)
    after = server.stats.snapshot()
    fleet.tell_all("ping")
    done = fleet.gather("done", args.timeout)
    end = server.stats.snapshot()
    fleet.stop()
    delta_kb = after["rss_kb"] - before["rss_kb"]
    report["result"] = {
        "connections": connected,
        "procs": len(specs),
        "connect_and_login_s": round(max(r["connect_login_s"] for r in ready), 2),
        "rss_before_mb": round(before["rss_kb"] / 1024, 1),
        "rss_after_mb": round(after["rss_kb"] / 1024, 1),
        "rss_after_ping_mb": round(end["rss_kb"] / 1024, 1),
        "hwm_mb": round(end["hwm_kb"] / 1024, 1),
        "bytes_per_connection": round(delta_kb * 1024 / connected) if connected else None,
        "answered_ping": sum(d["answered"] for d in done),
        "ping_ms": merged([d["ping_hist"] for d in done]).summary_ms(),
        "lost_connections": sum(d["lost_conns"] for d in done),
        "kicked": _sum_counts(d["kicked"] for d in done),
        "server_cpu_s_connect_and_idle": round(after["cpu_s"] - before["cpu_s"], 3),
    }
    report["generator"] = {
        "procs": len(specs),
        "cpu_total_s": round(sum(d["cpu_total_s"] for d in done), 3),
    }


def run_replay(
    args: argparse.Namespace,
    peer: str,
    server: Any,
    runid: str,
    report: dict[str, Any],
    fleet_box: list[Fleet],
) -> None:
    senders = max(1, args.senders)
    names = _names(runid, senders + 1)  # 0 is the user who logs in to the backlog
    t = time.monotonic()
    asyncio.run(register_users(server.port, names))
    report["setup"] = {"register_s": round(time.monotonic() - t, 2), "senders": senders}
    specs = _specs(_spec(args, peer, server.port, names), slices(len(names), 1), args.seed)
    fleet = Fleet(specs)
    fleet_box.append(fleet)
    (loaded,) = fleet.gather("loaded", args.timeout)
    report["setup"]["load_s"] = round(loaded["load_s"], 2)
    report["setup"]["sent_ok"] = loaded["ok"]
    report["setup"]["send_failures"] = loaded["fail_codes"]
    time.sleep(0.5)
    before = server.stats.snapshot()
    report["server_before"] = _public(before)
    prof = _profiler(args, server)
    t0 = monotonic_ns()
    fleet.tell_all("go")
    (done,) = fleet.gather("done", args.timeout)
    window = _cpu_window(server.stats, before, t0, monotonic_ns())
    _stop_profiler(prof, report)
    fleet.stop()
    sync_s = done["sync_done_ms"] / 1000
    report["result"] = {
        "pending": args.pending,
        "sent_ok": loaded["ok"],
        "login_ms": round(done["login_ms"], 2),
        "sync_done_ms": round(done["sync_done_ms"], 2),
        "sync_done_count": done["sync_done_count"],
        "received_by_sync_done": done["uniq_at_sync"],
        "received": done["uniq"],
        "replay_flagged": done["replayed"],
        "count_ok": done["sync_done_count"] == loaded["ok"] == done["uniq_at_sync"],
        "lost": max(0, loaded["ok"] - done["uniq"]),
        "duplicates": done["dups"],
        "messages_per_s": round(done["uniq_at_sync"] / sync_s, 1) if sync_s > 0 else None,
        "ack_requests": done["ack_requests"],
        "ack_errors": done["ack_errors"],
        "lost_connections": done["lost_conns"],
        "kicked": done["kicked"],
    }
    report["server_window"] = window
    report["generator"] = {"procs": 1, "cpu_s": round(done["cpu_s"], 3)}


# --- targets and output --------------------------------------------------------------------


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    mode = report["mode"]
    r = report.get("result", {})
    if report["peer"] != "p2sp" or not r:
        return []
    out: list[dict[str, Any]] = []

    def add(key: str, measured: Any, met: bool, at_size: bool) -> None:
        out.append(
            {
                "target": TARGETS[key],
                "measured": measured,
                "met": met,
                "at_target_size": at_size,
            }
        )

    if mode == "dm" and not r.get("rate_target"):
        tput = r.get("throughput_per_s") or 0
        add(
            "dm",
            f"{tput:,.0f} msgs/s, {r['lost']} lost",
            tput >= 50000 and r["lost"] == 0,
            r["clients"] >= 1000 and (r["messages_per_sender"] or 0) >= 200,
        )
    elif mode == "dm":
        p99 = r["latency_ms"].get("p99")
        add(
            "paced",
            f"p99 {p99} ms at {r['throughput_per_s']:,.0f} msgs/s delivered "
            f"(target rate {r['rate_target']:,.0f})",
            p99 is not None and p99 <= 10 and r["lost"] == 0,
            (r["rate_target"] or 0) >= 4000,
        )
    elif mode == "fanout":
        tput = r.get("throughput_per_s") or 0
        add("fanout", f"{tput:,.0f} deliveries/s", tput >= 200000, r["clients"] >= 1000)
    elif mode == "idle":
        add(
            "idle",
            f"{r['rss_after_mb']} MB RSS with {r['connections']:,} connections",
            r["rss_after_mb"] <= 150,
            r["connections"] >= 10000,
        )
    elif mode == "replay":
        add(
            "replay",
            f"{r['sync_done_ms']:.0f} ms to sync_done for {r['sent_ok']:,}",
            r["sync_done_ms"] <= 1000 and r["count_ok"],
            r["pending"] >= 10000,
        )
    elif mode == "login":
        bad = sum(r["failures"].values()) + r["unanswered"]
        add("login", f"{bad} failures of {r['users']:,}", bad == 0, r["users"] >= 1000)
    return out


def _ms(summary: dict[str, Any]) -> str:
    if not summary or not summary.get("count"):
        return "-"
    return (
        f"p50 {summary['p50']} ms, p95 {summary['p95']} ms, p99 {summary['p99']} ms, "
        f"max {summary['max']} ms (n={summary['count']:,})"
    )


def render(report: dict[str, Any]) -> str:
    r = report.get("result", {})
    lines = [
        f"== p2sp benchmark: mode {report['mode']}"
        + (f" ({report['variant']})" if report.get("variant") else "")
        + f", server {report['peer']} ==",
        f"command : {report['command']}",
        f"date    : {report['date']}   commit {report['commit']}"
        + (
            " (+ uncommitted changes under p2sp/)"
            if report.get("uncommitted_server_changes")
            else ""
        ),
        f"machine : {report['machine']['cpus']} CPUs ({report['machine']['cpu_model']}), "
        f"load before {report['machine']['loadavg_before']}, calibration "
        f"{report['machine']['calibration_ms']} ms (fixed Python loop; lower = faster)",
        f"server  : {report['server'].get('command', '')}"
        + (f"  [{report['server_source']}]" if report.get("server_source") else ""),
    ]
    if report["server"].get("env"):
        env = " ".join(f"{k}={v}" for k, v in report["server"]["env"].items())
        lines.append(f"settings: {env}")
    if report["server"].get("version"):
        lines.append(f"version : {report['server']['version']}")
    lines.append(f"database: {report.get('database') or '-'}")
    if report.get("setup"):
        setup = ", ".join(f"{k} {v}" for k, v in report["setup"].items() if v is not None)
        lines.append(f"setup   : {setup}")
    lines.append("")
    mode = report["mode"]
    if mode in ("dm", "fanout"):
        unit = "deliveries" if mode == "fanout" else "messages"
        lines += [
            f"load      : {r['clients']:,} clients, {r['senders']:,} senders, window "
            f"{r['window']}, "
            + (
                f"paced {r['rate_target']:,.0f} msgs/s for {r['duration_s']} s"
                if r.get("rate_target")
                else f"{r['messages_per_sender']} messages each"
            )
            + (f", peers {r['peers']}" if mode == "dm" else "")
            + (" (conversations warmed up)" if r.get("warmed_up") else "")
            + f", {r['procs']} generator process(es)",
            f"throughput: {r['throughput_per_s'] or 0:,.0f} {unit}/s delivered "
            f"({r['delivered']:,} in {r['delivery_span_s']} s); sends ok "
            f"{r['send_rate_per_s'] or 0:,.0f}/s",
            f"latency   : {_ms(r['latency_ms'])}  (send -> receiver)",
            f"send->ok  : {_ms(r['send_ack_ms'])}",
            f"integrity : {r['lost']} lost, {r['duplicates']} duplicate/out-of-order, "
            f"{r['unexpected']} unexpected, of {r['expected_deliveries']:,} expected; "
            f"send failures {r['send_failures'] or 0}"
            + (
                f"; {r['unanswered_sends']:,} sends never answered"
                if r.get("unanswered_sends")
                else ""
            ),
            f"session   : kicked {r['kicked'] or 0}, connections lost {r['lost_connections']}, "
            f"acks {r['acks']}: {r['ack_requests']:,} sent (errors {r['ack_errors'] or 0})"
            + ("" if r["all_in_time"] else "; NOT ALL IN TIME (timeout)"),
        ]
        if r.get("schedule_lag_ms"):
            lines.append(f"sched lag : {_ms(r['schedule_lag_ms'])}  (send written vs scheduled)")
            lines.append(
                f"offered   : {r['scheduled']:,} scheduled in the window, "
                f"{r['not_sent_in_window']:,} of them not sent by its end (their client was "
                "still waiting for an earlier ok) and dropped"
            )
    elif mode == "login":
        lines += [
            f"logins    : {r['logged_in']:,} of {r['users']:,} ok, failures {r['failures'] or 0}, "
            f"unanswered {r['unanswered']} (scrypt n={r['scrypt_n']})",
            f"all in    : {r['time_to_all_logged_in_s']} s to the last ok, "
            f"{r['time_to_all_synced_s']} s to the last sync_done",
            f"latency   : {_ms(r['login_latency_ms'])}  (login -> response)",
            f"to sync   : {_ms(r['login_to_sync_done_ms'])}  (login -> sync_done)",
        ]
    elif mode == "idle":
        lines += [
            f"idle      : {r['connections']:,} connections logged in "
            f"({r['connect_and_login_s']} s to connect and log in)",
            f"server RSS: {r['rss_before_mb']} MB before, {r['rss_after_mb']} MB after, "
            f"{r['rss_after_ping_mb']} MB after a ping round; peak {r['hwm_mb']} MB",
            f"per conn  : {r['bytes_per_connection']:,} bytes",
            f"ping      : {r['answered_ping']:,} answered (one each, spread over 5 s); "
            f"{_ms(r['ping_ms'])}",
            f"server CPU: {r['server_cpu_s_connect_and_idle']} s to accept, log in and hold them",
        ]
    elif mode == "replay":
        lines += [
            f"replay    : {r['sent_ok']:,} pending; login ok in {r['login_ms']} ms, sync_done in "
            f"{r['sync_done_ms']} ms ({r['messages_per_s'] or 0:,.0f} msgs/s)",
            f"count     : sync_done said {r['sync_done_count']}, received "
            f"{r['received_by_sync_done']} before it, {r['received']} in all; "
            f"{'OK' if r['count_ok'] else 'MISMATCH'}; {r['lost']} lost, "
            f"{r['duplicates']} duplicates",
        ]
    w = report.get("server_window")
    if w:
        per = (
            f", {w['cpu_us_per_delivery']} µs CPU per delivery"
            if w.get("cpu_us_per_delivery")
            else ""
        )
        lines.append(
            f"server    : {w['cpu_s']} CPU s in {w['wall_s']} s ({w['cpu_util']:.0%} of one core)"
            f"{per}; RSS {w['rss_kb'] / 1024:.1f} MB, peak {w['hwm_kb'] / 1024:.1f} MB"
        )
        lines.append(
            f"  split   : {w['sys_s']} s of it in the kernel; event loop thread "
            f"{w['main_thread_cpu_s']} CPU s, others "
            f"{w['other_threads_cpu_s']} (of {w['threads']} threads)"
        )
    g = report.get("generator")
    if g and "cpu_s" in g:
        lines.append(f"generator : {g['cpu_s']} CPU s over {g['procs']} process(es)")
    if w and "other_processes_cpu_s" in w:
        cpus = report["machine"]["cpus"] or 1
        lines.append(
            f"machine   : {w['machine_busy_s']} CPU s busy in the window, of which "
            f"{w['other_processes_cpu_s']} s by other processes "
            f"(capacity {cpus * w['wall_s']:.1f} CPU s on {cpus} cores)"
        )
    if report.get("server_log"):
        lines.append(f"server log: {report['server_log']}; exit code {report['server_exit_code']}")
        if report.get("server_traceback"):
            lines.append("  first traceback in the server log:")
            lines += [f"    {line}" for line in report["server_traceback"].splitlines()]
    else:
        lines.append(f"server exit code {report.get('server_exit_code')}")
    for t in report.get("targets", []):
        verdict = "met" if t["met"] else "NOT met"
        size = "" if t["at_target_size"] else " (smaller than the target's size)"
        lines.append(f"target    : {t['target']}: {verdict} - {t['measured']}{size}")
    prof = report.get("profile")
    if prof:
        lines.append(f"profile   : {prof['file']} ({prof.get('samples', '?')} samples)")
        mine = [(n, p) for n, p in prof.get("inclusive_pct") or [] if "p2sp/" in n]
        for name, pct in mine[:10]:
            lines.append(f"  {pct:5.1f}% of samples in {name}")
    if report.get("workdir"):
        lines.append(f"kept      : {report['workdir']}")
    return "\n".join(lines)


def compare(p2sp: dict[str, Any], irc: dict[str, Any]) -> dict[str, Any]:
    a, b = p2sp["result"], irc["result"]

    def ratio(x: float | None, y: float | None) -> float | None:
        return round(x / y, 3) if x and y else None

    return {
        "throughput_p2sp_over_ngircd": ratio(a["throughput_per_s"], b["throughput_per_s"]),
        "p50_p2sp_over_ngircd": ratio(a["latency_ms"].get("p50"), b["latency_ms"].get("p50")),
        "p99_p2sp_over_ngircd": ratio(a["latency_ms"].get("p99"), b["latency_ms"].get("p99")),
        "server_cpu_per_delivery_p2sp_over_ngircd": ratio(
            p2sp["server_window"].get("cpu_us_per_delivery"),
            irc["server_window"].get("cpu_us_per_delivery"),
        ),
    }


def render_compare(ratios: dict[str, Any], p2sp: dict[str, Any], irc: dict[str, Any]) -> str:
    a, b = p2sp["result"], irc["result"]
    wa, wb = p2sp["server_window"], irc["server_window"]
    rows = [
        (
            "throughput (msgs/s)",
            a["throughput_per_s"],
            b["throughput_per_s"],
            ratios["throughput_p2sp_over_ngircd"],
        ),
        (
            "latency p50 (ms)",
            a["latency_ms"].get("p50"),
            b["latency_ms"].get("p50"),
            ratios["p50_p2sp_over_ngircd"],
        ),
        (
            "latency p99 (ms)",
            a["latency_ms"].get("p99"),
            b["latency_ms"].get("p99"),
            ratios["p99_p2sp_over_ngircd"],
        ),
        (
            "server CPU µs/msg",
            wa.get("cpu_us_per_delivery"),
            wb.get("cpu_us_per_delivery"),
            ratios["server_cpu_per_delivery_p2sp_over_ngircd"],
        ),
        ("server RSS (MB)", round(wa["rss_kb"] / 1024, 1), round(wb["rss_kb"] / 1024, 1), None),
        ("lost", a["lost"], b["lost"], None),
    ]
    out = [
        "== p2sp vs ngircd, same dm load, back to back ==",
        f"{'':22} {'p2sp':>12} {'ngircd':>12} {'p2sp/ngircd':>12}",
    ]
    for label, x, y, q in rows:
        out.append(f"{label:22} {_fmt(x):>12} {_fmt(y):>12} {_fmt(q):>12}")
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    defaults(args)
    if args.compare and args.mode != "dm":
        print("--compare runs the dm mode only", file=sys.stderr)
        return 2
    peers = ["p2sp", "ngircd"] if args.compare else [args.peer]
    if args.profile and py_spy() is None:
        print(PY_SPY_MISSING, file=sys.stderr)
        return 2
    if "ngircd" in peers and ngircd_binary() is None:
        print(NGIRCD_INSTALL, file=sys.stderr)
        return 2
    reports = []
    try:
        for peer in peers:
            report = run_one(args, peer)
            report["targets"] = targets(report)
            reports.append(report)
            print(render(report), flush=True)
            print(flush=True)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    out: dict[str, Any] = reports[0] if len(reports) == 1 else {"runs": reports}
    if len(reports) == 2:
        out["ratios"] = compare(reports[0], reports[1])
        print(render_compare(out["ratios"], reports[0], reports[1]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    bad = any(r.get("result", {}).get("lost") for r in reports)
    return 3 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
