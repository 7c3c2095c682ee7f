"""The launcher's log scan and its bookkeeping, without starting a server
(``tests/e2e/test_log_scan.py`` runs it against real ones)."""

from __future__ import annotations

import io
import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from p2sp import launcher
from p2sp.launcher import (
    ExpectedTraceback,
    ServerProcess,
    check_tracebacks,
    scan_tracebacks,
    traceback_problems,
)

#: the server's log format (``p2sp/server/cli.py``)
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@pytest.fixture
def server_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing the server's format into a string."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(FORMAT))
    log = logging.getLogger("p2sp.test_launcher")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield log, out
    finally:
        log.removeHandler(handler)


def logged(log: logging.Logger, message: str, fault: Callable[[], object]) -> None:
    try:
        fault()
    except BaseException:
        log.exception(message)


def boom() -> None:
    raise ValueError("boom")


def chained() -> None:
    try:
        {}["key"]
    except KeyError as exc:
        raise RuntimeError("while looking up") from exc


def during() -> None:
    try:
        boom()
    except ValueError:
        raise OSError("disk gone")  # noqa: B904 - "During handling of the above exception"


def group() -> None:
    def inner() -> None:
        raise ExceptionGroup("inner", [KeyError("k")])

    try:
        inner()
    except ExceptionGroup as sub:
        raise ExceptionGroup("outer", [TypeError("t"), sub]) from None


def multi_line() -> None:
    raise LookupError("relation missing\n[SQL: INSERT INTO messages]\n(Background on this error)")


def test_a_clean_log_has_none(server_log) -> None:
    log, out = server_log
    log.info("p2sp server listening on 127.0.0.1:5000 (database sqlite)")
    log.warning("a warning, no traceback")
    log.info("the word Traceback (most recent call last): in a message is not one")
    assert scan_tracebacks(out.getvalue()) == []
    assert scan_tracebacks("") == []


def test_each_traceback_with_its_record(server_log) -> None:
    log, out = server_log
    log.info("listening on 127.0.0.1:5000")
    logged(log, "the first fault", boom)
    log.info("serving on")
    logged(log, "the second fault\nover two lines", multi_line)
    log.info("stopped")
    text = out.getvalue()
    found = scan_tracebacks(text)
    assert len(found) == 2
    first, second = found
    assert first.record.endswith("ERROR   p2sp.test_launcher: the first fault")
    assert first.exceptions == ("ValueError: boom",)
    assert first.exception == "ValueError: boom"
    assert text.splitlines()[first.line - 1] == "Traceback (most recent call last):"
    assert first.text.startswith("Traceback (most recent call last):")
    assert "serving on" not in first.text  # it ends at the next record
    assert second.record.endswith("the second fault\nover two lines")
    assert second.exception == "LookupError: relation missing"  # the message's first line
    assert "[SQL: INSERT INTO messages]" in second.text
    assert str(second) == f"{second.record}\n{second.text}"


@pytest.mark.parametrize(
    ("fault", "exceptions", "escaped"),
    [
        (
            chained,
            ("KeyError: 'key'", "RuntimeError: while looking up"),
            "RuntimeError: while looking up",
        ),
        (during, ("ValueError: boom", "OSError: disk gone"), "OSError: disk gone"),
        (
            group,
            (
                "ExceptionGroup: outer (2 sub-exceptions)",
                "TypeError: t",
                "ExceptionGroup: inner (1 sub-exception)",
                "KeyError: 'k'",
            ),
            "ExceptionGroup: outer (2 sub-exceptions)",
        ),
    ],
)
def test_a_chain_or_group_is_one_traceback(
    server_log, fault: Callable[[], None], exceptions: tuple[str, ...], escaped: str
) -> None:
    log, out = server_log
    logged(log, "fault", fault)
    log.info("after")
    [found] = scan_tracebacks(out.getvalue())
    assert found.exceptions == exceptions
    assert found.exception == escaped
    assert found.record.endswith("fault")


def test_an_uncaught_exception_has_no_record(server_log) -> None:
    log, out = server_log
    logged(log, "logged", boom)
    try:
        chained()
    except RuntimeError as exc:  # what the interpreter prints for an uncaught one
        out.write("".join(traceback.format_exception(exc)))
    found = scan_tracebacks(out.getvalue())
    assert [t.exception for t in found] == ["ValueError: boom", "RuntimeError: while looking up"]
    assert found[0].record.endswith("logged")
    assert found[1].record == ""
    try:
        boom()
    except ValueError as exc:
        [alone] = scan_tracebacks("".join(traceback.format_exception(exc)))
    assert (alone.record, alone.line, alone.exception) == ("", 1, "ValueError: boom")


def sample(*exceptions: str) -> list[launcher.LoggedTraceback]:
    return [
        launcher.LoggedTraceback(
            record=f"2026-01-01 00:00:00,000 ERROR   p2sp: fault {i}",
            text=f"Traceback (most recent call last):\n  File ...\n{exc}",
            exceptions=(exc,),
            line=i,
            exception=exc,
        )
        for i, exc in enumerate(exceptions, 1)
    ]


def test_undeclared_tracebacks_are_problems() -> None:
    assert check_tracebacks([]) == []
    [problem] = check_tracebacks(sample("ValueError: boom"))
    assert "nobody declared" in problem and "ValueError: boom" in problem and "fault 1" in problem
    assert check_tracebacks(sample("ValueError: boom"), [ExpectedTraceback("ValueError")]) == []
    # The pattern is a regular expression searched in the exception lines.
    assert check_tracebacks(sample("x.DiskError: full"), [ExpectedTraceback(r"Disk\w+: f")]) == []
    assert len(check_tracebacks(sample("KeyError: 'a'"), [ExpectedTraceback("ValueError")])) == 1


def test_once_means_exactly_once() -> None:
    once = [ExpectedTraceback("ValueError", once=True)]
    assert check_tracebacks(sample("ValueError: a"), once) == []
    [twice] = check_tracebacks(sample("ValueError: a", "ValueError: b"), once)
    assert "once" in twice and "2 times" in twice
    [never] = check_tracebacks([], once)
    assert "0 times" in never
    any_number = [ExpectedTraceback("ValueError")]
    assert check_tracebacks(sample("ValueError: a", "ValueError: b"), any_number) == []
    assert check_tracebacks([], any_number) == []


def _server_with_log(tmp_path: Path, name: str, text: str) -> ServerProcess:
    server = ServerProcess("sqlite+aiosqlite:///unused.db", tmp_path, name=name)
    server.log_path.write_text(text)
    return server


def test_traceback_problems_over_several_servers(tmp_path: Path, server_log) -> None:
    log, out = server_log
    logged(log, "fault", boom)
    faulty = _server_with_log(tmp_path, "one", out.getvalue())
    clean = _server_with_log(tmp_path, "two", "2026-01-01 00:00:00,000 INFO    p2sp: stopped\n")
    assert clean.tracebacks() == []
    assert [t.exception for t in faulty.tracebacks()] == ["ValueError: boom"]

    [problem] = traceback_problems([faulty, clean])
    assert problem.startswith(f"one ({faulty.log_path}): a traceback nobody declared")
    # Declared for the whole test: once over all servers together.
    assert traceback_problems([faulty, clean], [ExpectedTraceback("boom", once=True)]) == []
    # Declared for one server: counted in its own log.
    faulty.expect_traceback("ValueError", once=True)
    assert traceback_problems([faulty, clean]) == []
    clean.expect_traceback("ValueError", once=True)
    [missing] = traceback_problems([faulty, clean])
    assert missing.startswith("two (") and "0 times" in missing


def test_log_since_start_and_all_runs(tmp_path: Path) -> None:
    server = ServerProcess("sqlite+aiosqlite:///unused.db", tmp_path)
    assert server.log() == "" and server.tracebacks() == []
    server.log_path.write_text("first run\n")
    server._log_offset = server.log_path.stat().st_size  # as start() does
    with server.log_path.open("a") as f:
        f.write("second run\n")
    assert server.log() == "second run\n"
    assert server.log(all_runs=True) == "first run\nsecond run\n"
    assert server.log_tail(1) == "second run"


def test_command_environment_and_settings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("P2SP_DM_POLICY", "anyone")  # a developer's shell does not leak in
    monkeypatch.setenv("SOME_OTHER", "kept")
    source = tmp_path / "tree"
    server = ServerProcess(
        "sqlite+aiosqlite:///x.db",
        tmp_path,
        launcher.settings_env(max_frame=4096, dm_policy="friends"),
        source=source,
        args=["--log-level", "DEBUG"],
    )
    assert server.command()[-6:] == [
        "--port",
        "0",
        "--database-url",
        "sqlite+aiosqlite:///x.db",
        "--log-level",
        "DEBUG",
    ]
    env = server.environment()
    assert env["P2SP_MAX_FRAME"] == "4096"
    assert env["P2SP_DM_POLICY"] == "friends"
    assert env["SOME_OTHER"] == "kept"
    assert env["PYTHONPATH"] == str(source)
    assert server.stop() is None  # never started
    assert not server.alive()


def test_database_urls(tmp_path: Path) -> None:
    assert launcher.sqlite_url(tmp_path) == f"sqlite+aiosqlite:///{tmp_path / 'p2sp.db'}"
    assert (
        launcher.with_database("postgresql+asyncpg://u:p%40ss@h:5433/postgres?ssl=disable", "t1")
        == "postgresql+asyncpg://u:p%40ss@h:5433/t1?ssl=disable"
    )
    with launcher.temporary_database(directory=tmp_path) as url:
        assert url == launcher.sqlite_url(tmp_path)
    with launcher.temporary_database() as url:
        made = Path(url.removeprefix("sqlite+aiosqlite:///")).parent
        assert made.is_dir()
    assert not made.exists()
