"""The launcher against a real server: restarts, several servers on one
database, and the scan of the log for tracebacks (``p2sp.launcher``).

A clean run logs no traceback. A fault caused on purpose (the ``messages``
table renamed under the running server, as a careless operator might) is
answered with a bare ``internal_error`` (no traceback reaches the client),
shows in the log exactly once, and the test declares it with
``@pytest.mark.expect_traceback``.
"""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
from sqlalchemy import text

from p2sp.launcher import scan_tracebacks
from tests.e2e.conftest import PASSWORD, RawConnection, ServerProcess, db_execute

pytestmark = pytest.mark.timeout(120)


async def test_a_clean_run_logs_no_traceback(server: ServerProcess) -> None:
    async with server.client() as c:
        await c.reg("tess", PASSWORD)
        await c.login("tess", PASSWORD)
        await c.logout()
    first_run = server.log()
    assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0
    server.start()
    async with server.client() as c:
        assert (await c.login("tess", PASSWORD))["username"] == "tess"
    assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0

    # log() is the run since the last start; all_runs=True is both.
    assert "listening on" in first_run
    assert first_run not in server.log()
    assert server.log(all_runs=True).startswith(first_run)
    assert server.log(all_runs=True).count("listening on") == 2
    assert server.tracebacks() == []
    assert scan_tracebacks(server.log(all_runs=True)) == []


async def test_servers_share_one_database(server_factory) -> None:
    """The shape of a cluster test: N servers on the test's database, each
    with its own port and log."""
    one = server_factory()
    two = server_factory(dm_policy="anyone")
    assert one.port != two.port
    assert one.database_url == two.database_url
    assert one.log_path != two.log_path
    assert two.log_path.name == "server-2.log"
    async with one.client() as c:
        await c.reg("uma", PASSWORD)
    async with two.client() as c:  # registered through the other server
        assert (await c.login("uma", PASSWORD))["username"] == "uma"
    assert "listening on" in one.log() and "listening on" in two.log()
    with pytest.raises(ValueError, match="started already"):
        server_factory(name="server")


@pytest.mark.expect_traceback(r"messages", once=True)
async def test_a_storage_fault_is_logged_once_and_reaches_no_client(server_factory) -> None:
    server = server_factory(dm_policy="anyone")
    conn = await RawConnection.open(server)
    try:
        for name in ("vera", "walt"):
            reg = await conn.request("reg", {"username": name, "password": PASSWORD})
            assert reg["status"] == "ok", reg
        login = await conn.request("login", {"username": "vera", "password": PASSWORD})
        assert login["status"] == "ok", login
        token = login["data"]["auth_token"]
        await db_execute(server.database_url, text("ALTER TABLE messages RENAME TO messages_gone"))
        answer = await conn.request("send", {"to": "walt", "text": "hello"}, token=token)

        assert answer["status"] == "error", answer
        assert answer["code"] == "internal_error", answer
        shown = json.dumps(answer)
        assert "Traceback" not in shown and "messages" not in shown and "File " not in shown
        # The server goes on serving.
        assert (await conn.request("ping", token=token))["status"] == "ok"
    finally:
        await conn.close()
    found = server.tracebacks()
    assert len(found) == 1, "\n\n".join(map(str, found))
    assert found[0].record  # logged by the server, not an uncaught crash
