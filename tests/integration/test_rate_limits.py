"""Rate limits: token buckets in a real Redis (the test's own)."""
from __future__ import annotations

import pytest
import redis as redis_lib

from chalicelib import wiring
from chalicelib.errors import RateLimited
from chalicelib.ratelimit import Limit, RateLimiter
from chalicelib.redislink import RedisLink
from tests.support.servers import RedisServer, free_port, wait_until


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis-rl")).start()
    yield server
    server.stop()


@pytest.fixture
def limited(api, monkeypatch, redis_server):
    redis_lib.Redis.from_url(redis_server.url).flushall()  # buckets are per IP too: start empty

    def configure(redis_url=redis_server.url, **limits):
        monkeypatch.setenv("REDIS_URL", redis_url) if redis_url else monkeypatch.delenv("REDIS_URL", raising=False)
        monkeypatch.setenv("REDIS_TIMEOUT", "1")
        for name, value in limits.items():
            monkeypatch.setenv(name, str(value))
        wiring.reset()
        return api
    return configure


def assert_rate_limited(r, window_seconds):
    assert r.status == 429 and r.code == "RateLimited", r
    assert 1 <= int(r.headers["Retry-After"]) <= window_seconds


def test_a_sender_over_the_send_limit_gets_429_with_retry_after_and_nothing_is_delivered(limited):
    api = limited(RATE_LIMIT_SENDS_PER_MINUTE=3)
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    assert [api.send(alice, bob, f"m{i}").status for i in range(3)] == [201, 201, 201]
    assert_rate_limited(api.send(alice, bob, "one too many"), 60)
    assert_rate_limited(api.send_group(alice, api.create_group(alice), "group too"), 60)
    assert api.send(carol, bob, "another sender has its own bucket").status == 201
    assert [m["text"] for m in api.read_all(bob)] == ["m0", "m1", "m2", "another sender has its own bucket"]


def test_reads_over_the_read_limit_get_429(limited):
    api = limited(RATE_LIMIT_READS_PER_MINUTE=2)
    bob = api.register("bob")
    assert [api.read(bob).status for _ in range(2)] == [200, 200]
    assert_rate_limited(api.read(bob), 60)


def test_blocks_group_creations_and_membership_changes_share_a_per_user_write_limit(limited):
    api = limited(RATE_LIMIT_WRITES_PER_MINUTE=3)
    alice, bob = api.register("alice"), api.register("bob")
    group = api.create_group(alice)
    assert api.block(alice, bob).status == 200
    assert api.join(alice, group).status == 200
    assert_rate_limited(api.post("/create_group", {"group_name": "one too many"}, token=alice.token), 60)
    assert_rate_limited(api.block(alice, bob, to_block=0), 60)
    assert_rate_limited(api.join(alice, group, to_be_added=0), 60)
    assert api.join(bob, group).status == 200  # another user has a bucket of his own
    assert api.send(alice, bob, "sends are not writes").status == 201


def test_registrations_are_limited_per_source_ip(limited):
    api = limited(RATE_LIMIT_REGISTRATIONS_PER_HOUR=2)
    assert [api.post("/register", {"user_name": f"u{i}"}).status for i in range(2)] == [201, 201]
    assert_rate_limited(api.post("/register", {"user_name": "u3"}), 3600)


def test_without_redis_a_configured_limit_holds_in_the_process(limited):
    api = limited(redis_url=None, RATE_LIMIT_SENDS_PER_MINUTE=2)
    alice, bob = api.register("alice"), api.register("bob")
    assert [api.send(alice, bob, f"m{i}").status for i in range(2)] == [201, 201]
    assert_rate_limited(api.send(alice, bob, "m2"), 60)
    assert [m["text"] for m in api.read(bob, after=0).body["messages"]] == ["m0", "m1"]


def test_with_redis_unreachable_the_limit_holds_in_the_process_and_nothing_fails(limited):
    api = limited(redis_url=f"redis://127.0.0.1:{free_port()}/0", RATE_LIMIT_SENDS_PER_MINUTE=2)
    alice, bob = api.register("alice"), api.register("bob")
    assert [api.send(alice, bob, f"m{i}").status for i in range(2)] == [201, 201]
    assert_rate_limited(api.send(alice, bob, "m2"), 60)
    assert api.read(bob, after=0).status == 200


def test_every_container_counts_against_the_same_bucket_in_redis(limited, redis_server):
    api = limited(RATE_LIMIT_SENDS_PER_MINUTE=2)
    alice, bob = api.register("alice"), api.register("bob")
    other_container = RateLimiter(RedisLink.from_url(redis_server.url, connect_timeout=1, timeout=1, backoff_seconds=1))
    for _ in range(2):
        other_container.check(Limit("sends", 2, 60_000), alice.id)
    assert_rate_limited(api.send(alice, bob, "over"), 60)


def test_a_bucket_refills_over_its_window(redis_server):
    link = RedisLink.from_url(redis_server.url, connect_timeout=1, timeout=1, backoff_seconds=1)
    limiter, limit = RateLimiter(link), Limit("tests", 2, 300)
    limiter.check(limit, "subject-1")
    limiter.check(limit, "subject-1")
    with pytest.raises(RateLimited) as err:
        limiter.check(limit, "subject-1")
    assert err.value.retry_after_seconds == 1
    limiter.check(limit, "subject-2")  # buckets are per subject

    def allowed() -> bool:
        try:
            limiter.check(limit, "subject-1")
            return True
        except RateLimited:
            return False

    wait_until(allowed, 5, "the bucket did not refill")
