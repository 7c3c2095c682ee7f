"""``python -m bench fuzz`` keeps working: a short run against a real server process.

The full run (a million frames) is in bench/RESULTS.md, "Fuzzing"; this one
sends a couple of thousand frames of every kind and checks the verdicts the
long run relies on: the server survives, answers a ping at the end, exits 0,
closes the connection on every broken frame and never leaves one hanging.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import fuzz


def test_fuzz_command_short_run(tmp_path: Path) -> None:
    out = tmp_path / "fuzz.json"
    report = fuzz.fuzz(["--frames", "2500", "--seconds", "60", "--seed", "7", "--out", str(out)])
    assert report["stopped_by"] == "frames"
    assert report["frames_sent"] >= 2500
    # Every kind of frame was sent, valid and hostile.
    assert set(report["frames_by_kind"]) >= {"valid", "json_envelope", "json_data", "bit_flip"}
    assert report["responses"] > 1000
    assert report["logins"] >= 4
    # The server survived and still serves.
    assert report["server_crashes"] == 0
    assert report["server_alive"] and report["final_ping_ok"]
    assert report["server_exit_code"] == 0
    # Broken frames end their connection with a framing code, and only they (or
    # arbitrary JSON that is not JSON) do; nothing was left unanswered.
    closes = report["closes_by_reason"]
    assert set(closes) <= {"bad_magic", "bad_checksum", "bad_length", "bad_payload", "reset"}
    broken = sum(
        n for kind, n in report["frames_by_kind"].items() if fuzz.KINDS[kind][1] == "broken"
    )
    assert report["closed_by_server"] >= broken > 0
    assert report["tracebacks"] == 0, report["exceptions"]
    assert report["internal_errors"] == 0
    assert report["error_log_lines"] == 0
    assert report["anomalies"] == {}
    # The JSON report was written beside the text one.
    assert json.loads(out.read_text())["frames_sent"] == report["frames_sent"]
    assert out.with_suffix(".txt").read_text().startswith("p2sp fuzz at")
