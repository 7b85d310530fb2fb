"""What waiting reads may hold, in one process with Redis: one user at most
LONG_POLL_MAX_PER_USER waits (the next answers at once, saying so in
X-Wait-Refused), a process at most LONG_POLL_MAX_PER_PROCESS, and many
waits share one subscription, so they never exhaust the Redis connection
pool and never switch the cache or the rate limits off."""
from __future__ import annotations

import time

import pytest
import redis as redis_lib

from chalicelib import keys, wiring
from tests.support.servers import in_background, wait_until


@pytest.fixture
def redis_api(tapi, monkeypatch, session_redis):
    monkeypatch.setenv("REDIS_URL", session_redis.url)
    monkeypatch.setenv("REDIS_TIMEOUT", "1")
    wiring.reset()
    return tapi, redis_lib.Redis.from_url(session_redis.url)


def _waits(client, user) -> int:
    return client.zcard(keys.waits(user.id))


def test_the_sixth_waiting_read_of_a_user_answers_at_once_and_says_why(redis_api):
    api, client = redis_api
    alice, bob = api.register("alice"), api.register("bob")
    waiting = [in_background(lambda: api.read(bob, after=0, wait=15), timeout=30) for _ in range(5)]
    wait_until(lambda: _waits(client, bob) == 5, 10, "five reads did not start waiting")
    started = time.monotonic()
    sixth = api.read(bob, after=0, wait=15)
    assert time.monotonic() - started < 2
    assert sixth.status == 200 and sixth.body["messages"] == [], sixth
    assert sixth.headers["X-Wait-Refused"] == "per-user"
    assert api.send(alice, bob, "for the five").status == 201
    for result in waiting:
        r, _ = result()
        assert [m["text"] for m in r.body["messages"]] == ["for the five"] and "X-Wait-Refused" not in r.headers
    assert _waits(client, bob) == 0  # every slot given back


def test_a_process_holds_at_most_its_cap_of_waiting_reads(redis_api, monkeypatch):
    api, client = redis_api
    monkeypatch.setenv("LONG_POLL_MAX_PER_PROCESS", "2")
    wiring.reset()
    alice, bob, carol, dave = (api.register(n) for n in ("alice", "bob", "carol", "dave"))
    waiting = [in_background(lambda u=u: api.read(u, after=0, wait=15), timeout=30) for u in (bob, carol)]
    wait_until(lambda: _waits(client, bob) == 1 and _waits(client, carol) == 1, 10, "the reads did not wait")
    third = api.read(dave, after=0, wait=15)
    assert third.status == 200 and third.headers["X-Wait-Refused"] == "per-process"
    for user in (bob, carol):
        assert api.send(alice, user, "wake").status == 201
    assert all(result()[0].status == 200 for result in waiting)


def test_many_waiting_reads_share_one_subscription_and_leave_the_rate_limits_on(redis_api, monkeypatch, caplog):
    """120 waits in one process (more than redis-py's pool of 100 connections
    would take one each): the limits keep counting in Redis."""
    api, client = redis_api
    monkeypatch.setenv("LONG_POLL_MAX_PER_PROCESS", "200")
    monkeypatch.setenv("RATE_LIMIT_SENDS_PER_MINUTE", "30")
    wiring.reset()
    client.flushall()
    readers = [api.register(f"reader{i}") for i in range(24)]
    waiting = [in_background(lambda r=r: api.read(r, after=0, wait=15), timeout=60) for r in readers for _ in range(5)]
    wait_until(lambda: sum(_waits(client, r) for r in readers) == 120, 20, "120 reads did not start waiting")

    def subscribers() -> list:
        return [count for _, count in client.pubsub_numsub(*[keys.wake_channel(r.id) for r in readers])]

    # A wait takes its slot, then subscribes: once every reader's channel is
    # subscribed, each has exactly one subscriber, the process's one subscription.
    wait_until(lambda: all(subscribers()), 20, "the waits did not subscribe")
    assert subscribers() == [1] * 24
    alice, bob = api.register("alice"), api.register("bob")
    # Redis was never taken for down (which would switch the cache and the limits off for a while).
    assert not [r for r in caplog.records if "cache unavailable" in r.getMessage()]
    statuses = [api.send(alice, bob, f"m{i}").status for i in range(40)]
    assert statuses == [201] * 30 + [429] * 10
    api.read(bob, after=0)  # fills bob's window
    assert api.read(bob, after=0).headers["X-Cache"] == "hit"  # the cache is still on
    for reader in readers:
        assert api.send(bob, reader, "done").status == 201
    assert all([m["text"] for m in result()[0].body["messages"]] == ["done"] for result in waiting)
