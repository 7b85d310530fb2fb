"""Long-poll reads in one process (the app's threads, as under chalice
local), on SQLite, MariaDB, and MariaDB with Redis: a waiting reader wakes
soon after a commit, `wait` runs out with an empty page, waiting readers
hold up nobody and hold no database connection, and bad values are 400s."""
from __future__ import annotations

import time
from typing import Any, Callable

import pytest
import redis as redis_lib

from chalicelib import keys
from chalicelib import wiring
from chalicelib.db import MAX_IDLE_CONNECTIONS
from tests.support.http import assert_bad_request
from tests.support.servers import in_background, wait_until

WAKE_SECONDS = 0.5  # the most a same-process or Redis wake-up may take


def _waiting_in_process(user_id: str) -> bool:
    return wiring.service().reading._deps.wakeups.waiting(user_id)


def _subscribed(redis_url: str, user_id: str) -> bool:
    with redis_lib.Redis.from_url(redis_url) as client:  # closed: wait_until calls this every 20 ms
        return client.pubsub_numsub(keys.wake_channel(user_id))[0][1] >= 1


def _read_in_background(api, reader, **params) -> Callable[[], Any]:
    """Start a read in a thread; the returned call gives (response, the
    monotonic time it returned)."""
    return in_background(lambda: api.read(reader, **params), timeout=30)


@pytest.fixture(params=["no_redis", "redis"])
def poll_api(request, tapi, monkeypatch):
    """The thread-safe api helper, with or without Redis."""
    redis_url = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("session_redis").url
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("REDIS_TIMEOUT", "1")
        wiring.reset()
    return tapi, redis_url


def test_a_waiting_reader_wakes_within_half_a_second_of_a_commit(poll_api):
    api, redis_url = poll_api
    alice, bob = api.register("alice"), api.register("bob")
    result = _read_in_background(api, bob, after=0, wait=10)
    # Deterministic: wait until the reader listens (the process's waiters, or Redis's subscribers).
    wait_until(lambda: _subscribed(redis_url, bob.id) if redis_url else _waiting_in_process(bob.id), 10,
               "the reader did not start waiting")
    sent = api.send(alice, bob, "wake up")
    acknowledged = time.monotonic()
    assert sent.status == 201
    r, returned = result()
    assert r.status == 200 and [m["text"] for m in r.body["messages"]] == ["wake up"], r
    assert returned - acknowledged < WAKE_SECONDS, returned - acknowledged


def test_a_group_message_wakes_every_waiting_member(poll_api):
    api, redis_url = poll_api
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group = api.create_group(alice)
    for member in (alice, bob, carol):
        assert api.join(member, group).status == 200
    results = [_read_in_background(api, member, after=0, wait=10) for member in (bob, carol)]
    for member in (bob, carol):
        wait_until(lambda: _subscribed(redis_url, member.id) if redis_url else _waiting_in_process(member.id), 10,
                   "a member did not start waiting")
    assert api.send_group(alice, group, "everyone").status == 201
    acknowledged = time.monotonic()
    for result in results:
        r, returned = result()
        assert [m["text"] for m in r.body["messages"]] == ["everyone"] and returned - acknowledged < WAKE_SECONDS


def test_a_wait_that_runs_out_answers_an_empty_page(poll_api):
    api, _ = poll_api
    bob = api.register("bob")
    started = time.monotonic()
    r = api.read(bob, after=0, wait=1)
    elapsed = time.monotonic() - started
    assert r.status == 200 and r.body == {"messages": [], "next_after": 0, "has_more": False}, r
    assert 1.0 <= elapsed < 2.5, elapsed


def test_messages_already_there_answer_at_once_without_waiting(poll_api):
    api, _ = poll_api
    alice, bob = api.register("alice"), api.register("bob")
    api.send(alice, bob, "already here")
    started = time.monotonic()
    r = api.read(bob, after=0, wait=20)
    assert [m["text"] for m in r.body["messages"]] == ["already here"] and time.monotonic() - started < 1


def test_waiting_readers_hold_up_no_other_request_and_hold_no_database_connection(tapi, database_url, mysql_url):
    api = tapi
    alice, bob = api.register("alice"), api.register("bob")
    readers = [api.register(f"reader{i}") for i in range(2 * MAX_IDLE_CONNECTIONS)]
    results = [_read_in_background(api, reader, after=0, wait=3) for reader in readers]
    wait_until(lambda: all(_waiting_in_process(r.id) for r in readers), 10, "the readers did not start waiting")
    started = time.monotonic()
    assert api.send(alice, bob, "not held up").status == 201
    assert [m["text"] for m in api.read(bob, after=0).body["messages"]] == ["not held up"]
    api.register("carol")
    assert time.monotonic() - started < 1.0  # the waiting readers are still waiting
    if database_url == mysql_url:
        from tests.support.mysql import admin_connection

        def connections() -> list[int]:
            admin = admin_connection()
            try:
                cur = admin.cursor()
                cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s",
                            (mysql_url.rsplit("/", 1)[1],))
                return [row[0] for row in cur.fetchall()]
            finally:
                admin.close()

        # The pool's idle connections, not one per waiting reader. The server
        # drops a connection the pool closed a moment after its COM_QUIT, so
        # the count is polled; the readers are still waiting when it holds.
        wait_until(lambda: len(connections()) <= MAX_IDLE_CONNECTIONS < len(readers), 1.5,
                   "more connections than the pool keeps idle")
        assert all(_waiting_in_process(r.id) for r in readers)
    for result in results:
        r, _ = result()
        assert r.status == 200 and r.body["messages"] == []


@pytest.mark.parametrize("wait", ["-1", "21", "1.5", "soon", ""])
def test_a_bad_wait_is_a_400_naming_wait(api, wait):
    bob = api.register("bob")
    assert_bad_request(api.read(bob, after=0, wait=wait), "wait")


def test_wait_with_min_timestamp_is_a_400_naming_wait(api):
    bob = api.register("bob")
    assert_bad_request(api.read(bob, min_timestamp="2024-07-01 09:10:00.0", wait=5), "wait")


def test_long_poll_max_seconds_caps_the_wait_and_0_turns_it_off(api, monkeypatch):
    bob = api.register("bob")
    monkeypatch.setenv("LONG_POLL_MAX_SECONDS", "0")
    wiring.reset()
    started = time.monotonic()
    assert api.read(bob, after=0, wait=20).body["messages"] == []
    assert time.monotonic() - started < 0.5
    monkeypatch.setenv("LONG_POLL_MAX_SECONDS", "1")
    wiring.reset()
    started = time.monotonic()
    assert api.read(bob, after=0, wait=20).body["messages"] == []
    assert 1.0 <= time.monotonic() - started < 2.5


def test_without_redis_a_waiting_reader_asks_the_database_at_most_once_a_second(tapi, caplog):
    import json
    import logging

    api = tapi
    bob = api.register("bob")
    caplog.set_level(logging.INFO)
    api.read(bob, after=0, wait=3)
    line = [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "chalicelib.requests" and "/read_messages" in r.getMessage()][-1]
    # Two reads (before and after the wait, 3 statements each at most) and at
    # most one newest-seq check (a SELECT and its COMMIT) a second.
    assert 2 * 2 + 2 <= line["DbStatements"] <= 2 * 3 + 3 * 2, line


def test_with_redis_a_waiting_reader_costs_no_database_statement_while_it_waits(tapi, monkeypatch, caplog,
                                                                                 session_redis):
    import json
    import logging

    monkeypatch.setenv("REDIS_URL", session_redis.url)
    monkeypatch.setenv("REDIS_TIMEOUT", "1")
    wiring.reset()
    api = tapi
    bob = api.register("bob")
    api.read(bob, after=0)  # the window exists: reads are cache hits
    caplog.set_level(logging.INFO)
    api.read(bob, after=0, wait=2)
    line = [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "chalicelib.requests" and "/read_messages" in r.getMessage()][-1]
    assert line["DbStatements"] == 0 and line["Cache"] == "hit", line



@pytest.mark.parametrize("poll_api", ["redis"], indirect=True)
@pytest.mark.parametrize("to", ["user", "group"])
def test_a_send_whose_commit_reply_was_lost_reaches_cache_and_waiting_readers_on_its_retry(
        poll_api, monkeypatch, to):
    """The COMMIT lands and its reply is lost: the attempt answers 503 and
    writes nothing to the cache, so each reader's window looks complete
    without the message and a waiting reader hears nothing. The retry with
    the same key answers `duplicate` and must finish the delivery."""
    from chalicelib.db import Database
    from chalicelib.errors import ServiceUnavailable

    api, redis_url = poll_api
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    readers = [bob, carol] if to == "group" else [bob]
    if to == "group":
        group = api.create_group(alice)
        for member in (alice, bob, carol):
            assert api.join(member, group).status == 200
        send = lambda: api.send_group(alice, group, "committed", client_message_id="k-1")  # noqa: E731
    else:
        send = lambda: api.send(alice, bob, "committed", client_message_id="k-1")  # noqa: E731
    for reader in readers:
        assert api.read(reader, after=0).body["messages"] == []  # each reader has a window now
    committed_run = Database.run

    def reply_lost(self, work, *, write):
        committed_run(self, work, write=write)
        # What run answers when the connection dies before COMMIT's reply
        # (tests/integration/test_database_faults.py kills a real server there).
        raise ServiceUnavailable("the database connection was lost")

    monkeypatch.setattr(Database, "run", reply_lost)
    assert send().status == 503
    monkeypatch.setattr(Database, "run", committed_run)
    results = [_read_in_background(api, reader, after=0, wait=10) for reader in readers]
    for reader in readers:
        wait_until(lambda: _subscribed(redis_url, reader.id), 10, "a reader did not start waiting")
    retry = send()
    acknowledged = time.monotonic()
    assert (retry.status, retry.body["duplicate"]) == (200, True), retry
    for reader, result in zip(readers, results):
        r, returned = result()
        [event] = [e for e in api.sync_all(reader) if e["type"] == "message"]
        assert r.status == 200 and [(m["seq"], m["text"]) for m in r.body["messages"]] == [
            (event["seq"], "committed")], r
        assert returned - acknowledged < WAKE_SECONDS, returned - acknowledged
        cached = api.read(reader, after=0)
        assert (cached.headers["X-Cache"], cached.body) == ("hit", r.body)


def test_a_waiting_read_keeps_its_own_request_id_while_other_requests_run(tapi, caplog):
    """`make run` and `chalice local` run requests in threads of one app."""
    import json
    import logging

    caplog.set_level(logging.INFO, logger="chalicelib.requests")
    alice, bob = tapi.register("alice"), tapi.register("bob")
    result = _read_in_background(tapi, bob, after=0, wait=10)
    wait_until(lambda: _waiting_in_process(bob.id), 10, "the reader did not start waiting")
    assert tapi.send(alice, bob, "while you wait").status == 201
    assert result()[0].status == 200
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "chalicelib.requests"]
    ids = {line["Route"]: line["request_id"] for line in lines[-2:]}
    assert set(ids) == {"/send", "/read_messages"} and ids["/send"] != ids["/read_messages"], lines[-2:]
