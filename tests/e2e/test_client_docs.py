"""The client examples of README.md and docs/client.md, run against the real server.

Each example is read from the document itself, pointed at the test's server
(its port for 18888) and run the way a reader would: the SDK examples twice
in a row (the second run meets the account the first one made), the piped
script once, its output compared with what the document says it prints.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_terminal_client import client_env

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


def blocks(document: str, lang: str) -> list[tuple[int, str]]:
    """``(offset, code)`` of every fenced block of ``lang`` in the document."""
    text = (REPO / document).read_text("utf-8")
    return [(m.start(), m.group(1)) for m in re.finditer(rf"```{lang}\n(.*?)```", text, re.S)]


def block_after(document: str, lang: str, heading: str) -> str:
    """The first ``lang`` block after ``heading`` in the document."""
    start = (REPO / document).read_text("utf-8").index(heading)
    return next(code for offset, code in blocks(document, lang) if offset > start)


def run_python(code: str, server: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code.replace("18888", str(server.port))],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=client_env(),
        timeout=60,
    )


@pytest.mark.parametrize(
    ("document", "heading"),
    [
        ("README.md", "From Python, with the SDK"),
        ("docs/client.md", "## Python SDK"),
        ("docs/client.md", "### History, edits, receipts and search"),
    ],
)
def test_sdk_example_runs_twice_in_a_row(server: Any, document: str, heading: str) -> None:
    code = block_after(document, "python", heading)
    assert "18888" in code
    first = run_python(code, server)
    assert first.returncode == 0, first.stderr
    second = run_python(code, server)
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout  # the same user, logged in both times


def test_piped_script_prints_what_the_docs_say(server: Any) -> None:
    text = (REPO / "docs" / "client.md").read_text("utf-8")
    script = block_after("docs/client.md", "sh", "### Scripts (piped stdin)")
    words = shlex.split(script.replace("\\\n", " ").split("|")[0])
    assert words[:2] == ["printf", "%s\\n"]
    lines = words[2:]
    printed = text.index("prints", text.index(script))
    expected = re.search(r"```\n(.*?)```", text[printed:], re.S)
    assert expected is not None
    done = subprocess.run(
        [sys.executable, "-m", "p2sp.terminal", "--port", str(server.port), "--lang", "en"],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=client_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected.group(1)  # user id 2: id 1 is the reserved system account
