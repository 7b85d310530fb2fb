"""Retention through the app, on SQLite and MariaDB, with Redis: the
scheduled purge deletes what is older than RETENTION_DAYS, the cache never
serves a purged message, sends run on while it purges, and with Redis
unreachable it stops rather than leave the cache wrong. The retention rule
itself (what goes, in batches, and that seqs stay) is checked on the use
cases, tests/usecases/test_retention.py."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from typing import List

import pytest

from chalicelib import wiring
from chalicelib.db import Database
from chalicelib.dialects import to_db_time
from chalicelib.settings import Settings
from tests.support.lambda_events import LambdaContext

SCHEDULED_EVENT = {"version": "0", "id": "5f0f1a2b-0000-4000-8000-000000000000", "detail-type": "Scheduled Event",
                   "source": "aws.events", "account": "123456789012", "time": "2026-12-01T00:00:00Z",
                   "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/purge"],
                   "detail": {}}


@pytest.fixture
def rapi(api, monkeypatch, session_redis):
    monkeypatch.setenv("REDIS_URL", session_redis.url)
    monkeypatch.setenv("REDIS_TIMEOUT", "1")
    monkeypatch.setenv("RETENTION_DAYS", "30")
    wiring.reset()
    return api


def backdate(database_url: str, message_ids: List[str], days: int) -> None:
    """Make these messages (and their inbox rows) `days` old."""
    old = to_db_time(datetime.now(timezone.utc) - timedelta(days=days))
    db = Database(Settings.from_env({"DATABASE_URL": database_url}))

    def work(tx) -> None:
        for message_id in message_ids:
            tx.execute("UPDATE messages SET sent_at = %s WHERE id = %s", (old, message_id))
            tx.execute("UPDATE inbox SET sent_at = %s WHERE message_id = %s", (old, message_id))

    db.run(work, write=True)
    db.close()


def run_purge():
    import app as app_module

    return app_module.purge(SCHEDULED_EVENT, LambdaContext(remaining_ms=60_000))


def test_the_scheduled_purge_deletes_old_messages_and_the_cache_never_serves_them(rapi, database_url):
    alice, bob = rapi.register("alice"), rapi.register("bob")
    rapi.read(bob)  # bob has a cache window from here on
    sent = [rapi.send(alice, bob, f"m{i}").body["message_id"] for i in range(5)]
    cached = rapi.read(bob, after=0)
    assert cached.headers["X-Cache"] == "hit" and len(cached.body["messages"]) == 5
    run_purge()  # what other tests on this database left behind, so this purge counts only ours
    backdate(database_url, sent[:3], days=40)
    result = run_purge()
    # bob's rows and alice's own (each message is in its sender's stream too)
    assert (result["inbox_rows"], result["messages"], result["finished"]) == (6, 3, True), result
    after = rapi.read(bob, after=0)
    assert [(m["seq"], m["text"]) for m in after.body["messages"]] == [(4, "m3"), (5, "m4")], after
    assert after.headers["X-Cache"] == "miss"  # the window went with the purge
    # A cursor behind the horizon always reads what is left from the database
    # (the window cannot prove seqs 1-3 gone); one past it is a hit again.
    again = rapi.read(bob, after=0)
    assert (again.body, again.headers["X-Cache"]) == (after.body, "miss")
    recent = rapi.read(bob, after=3)
    assert (recent.body["messages"], recent.headers["X-Cache"]) == (after.body["messages"], "hit")


def test_sends_go_on_while_a_purge_runs_in_small_batches(rapi, database_url):
    alice, bob, carol = rapi.register("alice"), rapi.register("bob"), rapi.register("carol")
    old = [rapi.send(alice, bob, f"old {i}").body["message_id"] for i in range(120)]
    backdate(database_url, old, days=40)
    purged, failures = [], []

    def purge() -> None:
        purged.append(wiring.service().retention.purge(batch=7))

    thread = threading.Thread(target=purge)
    thread.start()
    for i in range(40):
        r = rapi.send(carol, bob, f"new {i}")
        if r.status != 201:
            failures.append(r)
    thread.join(60)
    assert failures == []
    assert purged[0].finished and purged[0].inbox_rows == 240 and purged[0].batches >= 240 // 7
    assert [m["text"] for m in rapi.read_all(bob)] == [f"new {i}" for i in range(40)]


def test_with_redis_unreachable_the_purge_stops_and_deletes_nothing(api, monkeypatch, database_url, tmp_path):
    from tests.support.servers import RedisServer

    server = RedisServer(tmp_path).start()
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("REDIS_TIMEOUT", "0.2")
    monkeypatch.setenv("RETENTION_DAYS", "30")
    wiring.reset()
    alice, bob = api.register("alice"), api.register("bob")
    sent = [api.send(alice, bob, f"m{i}").body["message_id"] for i in range(3)]
    backdate(database_url, sent, days=40)
    server.stop()
    result = run_purge()
    assert (result["inbox_rows"], result["finished"], result["stopped_because"]) == (
        0, False, "the cache could not be reached"), result
    assert [m["text"] for m in api.read_all(bob)] == ["m0", "m1", "m2"]


def test_each_run_logs_its_result_where_the_root_logger_drops_info(rapi, caplog):
    import logging

    # A Lambda runtime's root logger is left at WARNING; its handler (here
    # caplog's, on the root, level unset) passes whatever reaches it.
    root = logging.getLogger()
    level, root.level = root.level, logging.WARNING
    try:
        result = run_purge()
    finally:
        root.level = level
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job purge: ")]
    assert lines == [f"job purge: {json.dumps(result)}"], caplog.text
