"""``python -m bench.summary bench/results/*.json``: the JSON reports as markdown tables.

One table per mode, one row per run, with the figures RESULTS.md quotes and
the command that produced them (``--compare`` files give one row per server
plus the ratios).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _n(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.0f}"


def _other(report: dict[str, Any]) -> str:
    w = report.get("server_window") or {}
    return _n(w.get("other_processes_cpu_s"), 1)


def _row_messaging(name: str, r: dict[str, Any]) -> str:
    x = r["result"]
    w = r["server_window"]
    lat = x["latency_ms"]
    load = (
        f"rate {x['rate_target']:,.0f}/s x {x['duration_s']:.0f} s"
        if x.get("rate_target")
        else f"M={x['messages_per_sender']}"
        + (
            f", cut at {r['command'].split('--duration ')[1].split()[0]} s"
            if "--duration" in r["command"]
            else ""
        )
    )
    peers = x.get("peers", "-")
    extra = []
    if x.get("warmed_up"):
        extra.append("warm")
    if str(x.get("acks", "")).startswith("off"):
        extra.append("no acks")
    return (
        f"| {name} | {r['peer']} | {x['clients']:,} | {x['senders']:,} | {load} | {peers}"
        f"{' (' + ', '.join(extra) + ')' if extra else ''} | {_n(x['throughput_per_s'])} | "
        f"{_n(lat.get('p50'), 1)} | {_n(lat.get('p95'), 1)} | {_n(lat.get('p99'), 1)} | "
        f"{x['lost']} | {x['duplicates']} | {_n(w['cpu_s'], 1)} / {_n(w['wall_s'], 1)} | "
        f"{_n(w.get('cpu_us_per_delivery'))} | {_n(w['sys_s'], 1)} | {_mb(w['rss_kb'])} | "
        f"{_n(r['generator']['cpu_s'], 1)} | {_other(r)} |"
    )


HEADERS = {
    "messaging": "| run | server | clients | senders | load | peers | delivered/s | p50 ms | "
    "p95 ms | p99 ms | lost | dup | server CPU s / wall s | server µs CPU per delivery | "
    "of it kernel s | server RSS MB | generator CPU s | other procs CPU s |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    "login": "| run | users | scrypt n | ok | failures | to last ok s | to last sync_done s | "
    "p50 ms | p95 ms | p99 ms | server CPU s / wall s | server RSS MB (peak) | other procs CPU s |"
    "\n|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    "replay": "| run | pending | login ok ms | sync_done ms | msgs/s | sync_done count | received "
    "before it | count ok | lost | dup | server CPU s / wall s | server RSS MB |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    "ratio": "| run | throughput p2sp/ngircd | p50 p2sp/ngircd | p99 p2sp/ngircd | "
    "server CPU per message p2sp/ngircd |\n|---|---|---|---|---|",
    "idle": "| run | connections | connect+login s | RSS before MB | RSS after MB | bytes per "
    "connection | peak MB | pings answered | ping p50 ms | ping p99 ms |\n"
    "|---|---|---|---|---|---|---|---|---|---|",
}


def rows(name: str, report: dict[str, Any]) -> list[tuple[str, str]]:
    if "runs" in report:
        out = [row for run in report["runs"] for row in rows(name, run)]
        ratios = report.get("ratios", {})
        out.append(
            (
                "ratio",
                f"| {name} | {_n(ratios.get('throughput_p2sp_over_ngircd'), 3)} | "
                f"{_n(ratios.get('p50_p2sp_over_ngircd'), 1)} | "
                f"{_n(ratios.get('p99_p2sp_over_ngircd'), 1)} | "
                f"{_n(ratios.get('server_cpu_per_delivery_p2sp_over_ngircd'), 0)} |",
            )
        )
        return out
    mode = report["mode"]
    x = report.get("result")
    if not x:
        return []
    if mode in ("dm", "fanout"):
        return [("messaging", _row_messaging(name, report))]
    w = report.get("server_window") or {}
    if mode == "login":
        lat = x["login_latency_ms"]
        return [
            (
                "login",
                f"| {name} | {x['users']:,} | {x['scrypt_n']} | {x['logged_in']:,} | "
                f"{sum(x['failures'].values()) + x['unanswered']} | "
                f"{x['time_to_all_logged_in_s']} | {x['time_to_all_synced_s']} | "
                f"{_n(lat.get('p50'))} | {_n(lat.get('p95'))} | {_n(lat.get('p99'))} | "
                f"{_n(w['cpu_s'], 1)} / {_n(w['wall_s'], 1)} | {_mb(w['rss_kb'])} "
                f"({_mb(w['hwm_kb'])}) | {_other(report)} |",
            )
        ]
    if mode == "replay":
        return [
            (
                "replay",
                f"| {name} | {x['sent_ok']:,} | {x['login_ms']} | {x['sync_done_ms']} | "
                f"{_n(x['messages_per_s'])} | {x['sync_done_count']:,} | "
                f"{x['received_by_sync_done']:,} | {'yes' if x['count_ok'] else 'NO'} | "
                f"{x['lost']} | {x['duplicates']} | {_n(w['cpu_s'], 2)} / {_n(w['wall_s'], 2)} | "
                f"{_mb(w['rss_kb'])} |",
            )
        ]
    if mode == "idle":
        ping = x["ping_ms"]
        return [
            (
                "idle",
                f"| {name} | {x['connections']:,} | {x['connect_and_login_s']} | "
                f"{x['rss_before_mb']} | {x['rss_after_mb']} | {_n(x['bytes_per_connection'])} | "
                f"{x['hwm_mb']} | {x['answered_ping']:,} | {ping.get('p50')} | {ping.get('p99')} |",
            )
        ]
    return []


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    tables: dict[str, list[str]] = {}
    commands: list[str] = []
    for path in paths:
        report = json.loads(path.read_text())
        runs = report.get("runs", [report])
        commands.append(
            f"- `{path.stem}`: `{runs[0]['command']}` ({runs[0]['date']}, "
            f"commit {runs[0]['commit']})"
        )
        for kind, row in rows(path.stem, report):
            tables.setdefault(kind, []).append(row)
    for kind in ("messaging", "login", "replay", "idle", "ratio"):
        if kind in tables:
            if kind in HEADERS:
                print(HEADERS[kind])
            print("\n".join(tables[kind]))
            print()
    print("\n".join(commands))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
