"""The servers under test, started by the benchmark, and what /proc says about them.

``P2spServer`` is ``p2sp.launcher.ServerProcess`` (the one launcher the
tests use too: ``python -m p2sp.server`` on port 0, the bound port read from
its log) plus what the benchmark reads about it; ``NgircdServer`` runs
``ngircd -n -f CONF`` with a configuration written to the run's temporary
directory, on a loopback socket the benchmark opens and hands over (see
``NgircdServer``). Both raise the open-files limit of the child to its hard
limit (``preexec_fn``) and are stopped with SIGTERM.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

from p2sp.launcher import (
    HOST,
    LaunchError,
    ServerProcess,
    StopTimeout,
    raise_nofile,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")


class ProcStats:
    """CPU seconds and memory of one process, from /proc (Linux)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_times(self) -> tuple[float, float]:
        """(utime, stime) of the process (all its threads), in seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            stat = f.read()
        # The command name (field 2) may contain spaces: split after its ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK

    def cpu_seconds(self) -> float:
        return sum(self.cpu_times())

    def thread_cpu(self) -> dict[int, float]:
        """CPU seconds per thread (tid); the main thread's tid is the pid."""
        out: dict[int, float] = {}
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return out
        for tid in tids:
            try:
                with open(f"/proc/{self.pid}/task/{tid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
        return out

    def memory_kb(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak RSS) in KiB, plus the thread count."""
        out: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
        return out

    def snapshot(self) -> dict[str, Any]:
        mem = self.memory_kb()
        user, system = self.cpu_times()
        return {
            "cpu_s": round(user + system, 3),
            "sys_s": round(system, 3),
            "rss_kb": mem.get("VmRSS"),
            "hwm_kb": mem.get("VmHWM"),
            "threads": mem.get("Threads"),
            "thread_cpu": self.thread_cpu(),
            "machine_busy_s": machine_busy_seconds(),
        }


def machine_busy_seconds() -> float:
    """CPU seconds every process of the machine has used since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def export_source(repo: Path, rev: str, dest: Path) -> None:
    """``git archive REV p2sp`` into ``dest`` (reads the repository, changes nothing)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, "p2sp"], cwd=repo, capture_output=True, timeout=120
    )
    if archive.returncode != 0:
        raise ServerError(f"git archive {rev} failed: {archive.stderr.decode(errors='replace')}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


#: a server would not start (the launcher's error, so one ``except`` catches both)
ServerError = LaunchError


class _Managed:
    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = HOST
        self.port = 0
        self.stats: ProcStats | None = None

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text("utf-8", "replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, SIGKILL if it will not go; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class P2spServer(ServerProcess):
    """The p2sp server under test: the launcher's ``ServerProcess`` with its
    log in ``WORKDIR/p2sp-server.log``, ``stats`` from /proc once started, a
    ``stop()`` that never raises (the run's report wants the exit code) and
    what the report says about its log."""

    name = "p2sp-server"

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        env: dict[str, str],
        source: Path | None = None,
    ) -> None:
        super().__init__(database_url, workdir, env, name=self.name, source=source)
        self.stats: ProcStats | None = None

    def start(self, timeout: float = 60.0) -> P2spServer:
        super().start(timeout)
        assert self.proc is not None
        self.stats = ProcStats(self.proc.pid)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, SIGKILL if it will not go; returns the exit code."""
        try:
            return super().stop(sig, timeout)
        except StopTimeout as exc:
            return exc.returncode

    def first_traceback(self, lines: int = 12) -> str:
        """The end of the first traceback in the log (where it failed)."""
        found = self.tracebacks()
        return "\n".join(found[0].text.splitlines()[-lines:]) if found else ""

    def log_findings(self) -> dict[str, int]:
        """What the server complained about during the run (counts of log lines)."""
        text = self.log()
        found = {
            "warnings": len(re.findall(r" WARNING ", text)),
            "errors": len(re.findall(r" ERROR ", text)),
            "tracebacks": len(self.tracebacks()),
            "slow_consumer_kicks": text.count("kicking"),
        }
        # The writer's totals, logged at shutdown: how well group commit batched.
        m = re.search(r"message writer: (\d+) messages and (\d+) acks in (\d+) transactions", text)
        if m:
            found["writer_messages"], found["writer_acks"], found["writer_transactions"] = map(
                int, m.groups()
            )
        return found


NGIRCD_INSTALL = (
    "ngircd is not installed. It is the C IRC server the comparison runs against:\n"
    "    sudo apt-get update && sudo apt-get install -y ngircd\n"
    "(Debian/Ubuntu package 'ngircd'; the benchmark starts it itself with its own\n"
    "config in a temporary directory, so the packaged service need not run.)"
)

#: IRC operator the benchmark's clients become, to set user mode +F on themselves.
IRC_OPER = ("bench", "bench-oper-pass")


def ngircd_binary() -> str | None:
    return shutil.which("ngircd") or next(
        (p for p in ("/usr/sbin/ngircd", "/usr/local/sbin/ngircd") if os.path.exists(p)), None
    )


def ngircd_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"


class NgircdServer(_Managed):
    """ngircd in the foreground with flood protection turned off as far as it goes.

    ngircd has no global switch for its flood control. What the config can do:
    ``MaxPenaltyTime = 0`` turns every penalty (the per-command and
    bytes-per-second throttles) into zero seconds, and the connection limits
    are lifted. What it cannot: a plain user is still handled 3 commands per
    main-loop pass. Its user mode ``+F`` (settable by IRC operators only)
    raises that to 10 and skips throttling altogether, so every benchmark
    client OPERs itself (the ``[Operator]`` block below) and sets ``+F``.

    The listening socket is not ngircd's own: ngircd calls ``listen(sock, 10)``
    with no setting to change it, and a queue of 10 overflows when the workers
    open hundreds of connections at once. The kernel then drops the last ACK of
    the handshake: the client believes it is connected, ngircd never accepts
    the connection, the retried SYN-ACKs let in about 11 at a time, and after
    the last retry the rest are reset ("connection lost" during registration,
    no error in ngircd's log, ``TcpExtListenOverflows`` rising). So the
    benchmark binds and listens itself, with the backlog the p2sp server uses,
    and passes the socket the systemd way (``LISTEN_FDS``, fd 3), which ngircd
    takes instead of opening its ``Ports``.
    """

    #: the p2sp server's backlog (``p2sp/server/server.py``), so both see the same queue
    BACKLOG = 4096
    #: where systemd socket activation puts the first socket (``SD_LISTEN_FDS_START``)
    LISTEN_FD = 3

    name = "ngircd"

    def __init__(self, workdir: Path, binary: str) -> None:
        super().__init__(workdir)
        self.binary = binary
        self.conf_path = workdir / "ngircd.conf"

    def config(self) -> str:
        oper, password = IRC_OPER
        return f"""\
# Written by the p2sp benchmark; only ever listens on {HOST}.
[Global]
Name = bench.irc
Info = p2sp benchmark peer
Listen = {HOST}
Ports = {self.port}
MotdPhrase = benchmark
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
[Operator]
Name = {oper}
Password = {password}
"""

    def command(self) -> list[str]:
        return [self.binary, "-n", "-f", str(self.conf_path)]

    def start(self, timeout: float = 30.0) -> NgircdServer:
        listener = socket.socket()
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((HOST, 0))
            listener.listen(self.BACKLOG)
            self.port = int(listener.getsockname()[1])
            self.conf_path.write_text(self.config())
            fd = listener.fileno()

            def preexec() -> None:
                raise_nofile()
                # fd 3 is open here (the listener got it if it was free), so
                # pass_fds=(3,) is valid; put the listener there if it is not.
                if fd != self.LISTEN_FD:
                    os.dup2(fd, self.LISTEN_FD)
                os.putenv("LISTEN_PID", str(os.getpid()))
                os.putenv("LISTEN_FDS", "1")

            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    self.command(),
                    cwd=self.workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    pass_fds=(self.LISTEN_FD,),
                    preexec_fn=preexec,
                )
        finally:
            listener.close()  # ngircd has its own copy now
        self.stats = ProcStats(self.proc.pid)
        # The kernel accepts connections on the socket from the start: wait for
        # ngircd to say it took the socket and is serving.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"ngircd exited with {self.proc.returncode}:\n{self.log()}")
            log_text = self.log()
            if "ready." in log_text:
                if "from systemd" not in log_text:
                    self.stop()
                    raise ServerError(f"ngircd did not take the listening socket:\n{log_text}")
                return self
            time.sleep(0.05)
        self.proc.kill()
        raise ServerError(f"ngircd did not start in {timeout} s:\n{self.log_tail()}")
