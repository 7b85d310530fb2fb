"""The embedded SQLite default under a write lock held elsewhere (another
process, a migration): a writer waits, retries, and answers 503, not 500."""
from __future__ import annotations

import sqlite3

from chalice.test import Client

from chalicelib import wiring
from tests.conftest import TEST_AUTH_SECRET, Api


def test_a_write_blocked_by_another_writer_answers_503_and_succeeds_once_the_lock_is_gone(tmp_path, monkeypatch):
    from app import app

    path = tmp_path / "busy.sqlite3"
    for name in ("REDIS_URL", "MAX_GROUP_MEMBERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("AUTH_SECRET", TEST_AUTH_SECRET)
    monkeypatch.setenv("DB_READ_TIMEOUT", "0.1")  # SQLite's busy timeout
    wiring.reset()
    with Client(app) as client:
        api = Api(client)
        api.register("before")  # migrates the new file
        holder = sqlite3.connect(str(path), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            r = api.post("/register", {"user_name": "blocked"})
            assert r.status == 503 and r.code == "ServiceUnavailable", r
            assert r.headers.get("Retry-After") == "2"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert api.post("/register", {"user_name": "after"}).status == 201
    wiring.reset()
