"""Optional: py-spy attached to the server for the measured window (``--profile FILE``).

py-spy is not a dependency of the project; install it into the venv with
``.venv/bin/pip install py-spy``. ``FILE`` ending in ``.svg`` gets a flame
graph, ``.json`` a speedscope profile, anything else py-spy's raw collapsed
stacks, which the benchmark also summarises in its report (the functions with
the largest share of samples, inclusive and self).
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

PY_SPY_MISSING = (
    "--profile needs py-spy: .venv/bin/pip install py-spy (it is not a project dependency)"
)


def py_spy() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


class Profiler:
    def __init__(self, path: str, gil: bool = False) -> None:
        self.path = Path(path)
        self.gil = gil
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = b""

    def start(self, pid: int) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError(PY_SPY_MISSING)
        fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(self.path.suffix, "raw")
        cmd = [binary, "record", "--pid", str(pid), "-o", str(self.path), "--format", fmt]
        cmd += ["--rate", "200", "--nonblocking"]
        if self.gil:
            cmd.append("--gil")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def stop(self) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.log, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.log, _ = self.proc.communicate()
        if self.path.suffix in (".svg", ".json") or not self.path.exists():
            return {"file": str(self.path)}
        return {"file": str(self.path), **summarise(self.path)}


_LINE = re.compile(r":\d+\)")


def summarise(path: Path, top: int = 60) -> dict[str, Any]:
    """Share of samples per function (inclusive and self) from py-spy's raw output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text("utf-8", "replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_LINE.sub(")", f) for f in stack.split(";") if f]
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    if not total:
        return {"samples": 0}

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100 * n / total, 1)) for f, n in counter.most_common(top)]

    return {"samples": total, "inclusive_pct": share(inclusive), "self_pct": share(own)}
