"""Database faults against a MariaDB of the test's own that the test kills
(SIGKILL, like a crash) and starts again."""
from __future__ import annotations

import time

import pymysql
import pytest
from chalice.test import Client

from chalicelib import wiring
from chalicelib.db import Database
from chalicelib.dialects import MySQLDialect
from chalicelib.migrate import apply_migrations
from chalicelib.settings import Settings
from tests.conftest import TEST_AUTH_SECRET, Api
from tests.support.servers import MariaDBServer

CONNECT_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory):
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb")).start()
    conn = pymysql.connect(host="127.0.0.1", port=server.port, user="root", autocommit=True, ssl_disabled=True)
    conn.cursor().execute("CREATE DATABASE faults CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    conn.close()
    db = Database(Settings.from_env({"DATABASE_URL": f"{server.url}/faults"}))
    apply_migrations(db)
    db.close()
    yield server
    server.kill()


@pytest.fixture
def fapi(mariadb, monkeypatch):
    from app import app

    for name in ("REDIS_URL", "MAX_GROUP_MEMBERS", "DB_SECRET_ARN", "AUTH_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"{mariadb.url}/faults")
    monkeypatch.setenv("AUTH_SECRET", TEST_AUTH_SECRET)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", str(CONNECT_TIMEOUT))
    wiring.reset()
    with Client(app) as client:
        yield Api(client)
    wiring.reset()
    if mariadb.process is None:
        mariadb.start()


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_with_the_database_down_requests_answer_503_fast_and_recover_when_it_is_back(fapi, mariadb):
    alice, bob = fapi.register("alice"), fapi.register("bob")
    assert fapi.send(alice, bob, "before").status == 201
    mariadb.kill()
    timings = []
    for call in (lambda: fapi.send(alice, bob, "while down"), lambda: fapi.read(bob),
                 lambda: fapi.post("/register", {"user_name": "carol"}), lambda: fapi.get("/health")):
        r, seconds = timed(call)
        timings.append(seconds)
        assert r.status == 503, r
        assert r.headers.get("Retry-After") == "2"
    print(f"503s while down took {', '.join(f'{t * 1000:.0f} ms' for t in timings)}")
    assert max(timings) < CONNECT_TIMEOUT + 1, timings
    mariadb.start()
    r, _ = timed(lambda: fapi.send(alice, bob, "after"))
    assert r.status == 201, r
    assert [m["text"] for m in fapi.read_all(bob)] == ["before", "after"]
    assert fapi.get("/health").status == 200


@pytest.mark.parametrize("fault_before", ["batch", "during batch", "commit", "after commit"])
def test_a_send_interrupted_at_any_point_commits_fully_or_not_at_all_and_a_retry_delivers_once(
        fapi, mariadb, monkeypatch, fault_before):
    """The server dies before the send's statements go out (they travel in
    one batch: message, inbox counter, inbox row), while the server runs
    them, before its COMMIT, or right after it."""
    import pymysql.connections

    alice, bob = fapi.register("alice"), fapi.register("bob")
    assert fapi.read(bob).status == 200
    batches = []
    original_batch, original_command = MySQLDialect.batch, pymysql.connections.Connection._execute_command

    def dying_batch(self, cur, statements):
        batches.append(len(statements))
        if fault_before == "batch":
            mariadb.kill()
        return original_batch(self, cur, statements)

    def dying_command(conn, command, sql):
        result = original_command(conn, command, sql)  # the packet is on its way
        if fault_before == "during batch" and ";\n" in (sql.decode() if isinstance(sql, bytes) else sql):
            mariadb.kill()
        return result

    original_run = Database.run

    def dying_commit_run(self, work, *, write):
        def work_then_kill(tx):
            result = work(tx)
            if fault_before == "commit":
                mariadb.kill()
            return result
        result = original_run(self, work_then_kill, write=write)
        if fault_before == "after commit":
            mariadb.kill()
        return result

    monkeypatch.setattr(MySQLDialect, "batch", dying_batch)
    monkeypatch.setattr(pymysql.connections.Connection, "_execute_command", dying_command)
    monkeypatch.setattr(Database, "run", dying_commit_run)
    r = fapi.send(alice, bob, "exactly once", client_message_id="key-1")
    assert batches == [5]  # START TRANSACTION and the send's four statements in one batch
    monkeypatch.undo()
    # undo() also restored the environment: point the app at the private server again.
    monkeypatch.setenv("DATABASE_URL", f"{mariadb.url}/faults")
    monkeypatch.setenv("AUTH_SECRET", TEST_AUTH_SECRET)
    monkeypatch.delenv("REDIS_URL", raising=False)
    if fault_before == "after commit":
        assert r.status == 201  # committed before the crash
    else:
        assert r.status == 503, r
    mariadb.start()

    messages = fapi.read_all(bob)
    assert len(messages) in (0, 1)
    if messages:
        assert messages[0]["text"] == "exactly once" and messages[0]["seq"] == 1
    retry = fapi.send(alice, bob, "exactly once", client_message_id="key-1")
    assert retry.status == (200 if messages else 201), retry
    assert [(m["seq"], m["text"]) for m in fapi.read_all(bob)] == [(1, "exactly once")]
