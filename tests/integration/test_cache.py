"""The Redis inbox cache against a real redis-server of the test's own."""
from __future__ import annotations

import json
import logging
import time
from typing import Iterator

import pytest
import redis as redis_lib

from chalicelib import keys
from chalicelib.cache import Delivery, Hit, InboxCache, Miss
from chalicelib.redislink import RedisLink
from tests.support.servers import RedisServer, wait_until


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def cache_on(url: str) -> InboxCache:
    link = RedisLink.from_url(url, connect_timeout=1, timeout=1, backoff_seconds=1)
    return InboxCache(link, size=10, ttl_seconds=60, budget_bytes=65_536)


@pytest.fixture
def redis_client(redis_server: RedisServer) -> redis_lib.Redis:
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushall()
    return client


@pytest.fixture
def capi(app_env, monkeypatch, redis_server, redis_client):
    """The `api` helper with the cache on."""
    from chalice.test import Client

    from app import app
    from chalicelib import wiring
    from tests.conftest import Api

    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("REDIS_TIMEOUT", "1")  # loopback answers in well under that
    wiring.reset()
    with Client(app) as client:
        yield Api(client)


def raw_read(api, user, **params):
    from urllib.parse import urlencode

    query = urlencode({"user_id": user.id, **params})
    r = api.client.http.post(f"/read_messages?{query}", headers={"Authorization": f"Bearer {user.token}"})
    assert r.status_code == 200, r.body
    return r.headers["X-Cache"], r.body


def test_reads_say_x_cache_off_when_no_redis_is_configured(api):
    bob = api.register("bob")
    assert api.read(bob).headers["X-Cache"] == "off"


def test_a_poll_right_after_a_send_is_a_cache_hit_that_returns_the_message(capi):
    alice, bob = capi.register("alice"), capi.register("bob")
    first = capi.read(bob)
    assert first.headers["X-Cache"] == "miss" and first.body["messages"] == []  # a brand-new user
    sent = capi.send(alice, bob, "hello from the cache")
    r = capi.read(bob, after=first.body["next_after"])
    assert r.headers["X-Cache"] == "hit"
    assert [(m["seq"], m["message_id"], m["text"]) for m in r.body["messages"]] == [
        (1, sent.body["message_id"], "hello from the cache")]
    assert r.body["next_after"] == 1 and r.body["has_more"] is False
    again = capi.read(bob, after=1)
    assert again.headers["X-Cache"] == "hit" and again.body == {"messages": [], "next_after": 1, "has_more": False}


def test_cache_and_database_answer_byte_for_byte_the_same_page_by_page(capi, redis_client):
    alice, bob, carol = capi.register("alice"), capi.register("bob"), capi.register("carol 🐧")
    capi.read(bob)  # bob polls, so his window exists before the messages come
    group = capi.create_group(alice)
    for user in (alice, bob, carol):
        assert capi.join(user, group).status == 200
    for i in range(24):
        sender = (alice, carol)[i % 2]
        r = (capi.send(sender, bob, f"direct {i} «ש»\n\"q\"") if i % 3 else capi.send_group(sender, group, f"group {i} 😀"))
        assert r.status == 201

    def pages():
        out, after = [], 0
        while True:
            cache, body = raw_read(capi, bob, after=after, limit=7)
            out.append((cache, body))
            page = json.loads(body)
            after = page["next_after"]
            if not page["has_more"]:
                return out

    cached = pages()
    redis_client.flushall()
    from_db = pages()
    assert [c for c, _ in cached] == ["hit"] * 4
    assert [c for c, _ in from_db] == ["miss"] * 4
    assert [b for _, b in cached] == [b for _, b in from_db]
    # bob's stream: bob's and carol's joins (seqs 1 and 2), then the 24 messages
    assert [m["seq"] for _, b in cached for m in json.loads(b)["messages"]] == list(range(3, 27))


def test_a_window_keeps_the_newest_entries_and_older_ones_come_from_the_database(capi, monkeypatch, redis_client):
    from chalicelib import wiring

    monkeypatch.setenv("CACHE_SIZE", "5")
    wiring.reset()
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.read(bob)
    for i in range(12):
        capi.send(alice, bob, f"m{i}")
    fields = {k.decode() for k in redis_client.hkeys(keys.window(bob.id))}
    assert fields == {"b", "m", "l", "z", "e", "8", "9", "10", "11", "12"}
    assert 0 < redis_client.ttl(keys.window(bob.id)) <= 600
    old = capi.read(bob, after=0)
    assert old.headers["X-Cache"] == "miss" and [m["text"] for m in old.body["messages"]] == [f"m{i}" for i in range(12)]
    recent = capi.read(bob, after=7)
    assert recent.headers["X-Cache"] == "hit" and [m["seq"] for m in recent.body["messages"]] == [8, 9, 10, 11, 12]


def test_timestamp_reads_are_served_by_the_database(capi):
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.read(bob)
    capi.send(alice, bob, "hi")
    r = capi.read(bob, min_timestamp="2024-07-01 09:10:00.0")
    assert r.headers["X-Cache"] == "miss" and [m["text"] for m in r.body["messages"]] == ["hi"]


def test_a_lost_cache_write_is_found_as_a_gap_when_the_next_message_arrives(capi, monkeypatch):
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.read(bob)
    original_add = InboxCache.deliver_all
    monkeypatch.setattr(InboxCache, "deliver_all", lambda self, *event: None)  # the write after commit is lost
    assert capi.send(alice, bob, "lost in the cache").status == 201
    monkeypatch.setattr(InboxCache, "deliver_all", original_add)
    assert capi.send(alice, bob, "written").status == 201
    r = capi.read(bob, after=0)
    assert r.headers["X-Cache"] == "miss"
    assert [(m["seq"], m["text"]) for m in r.body["messages"]] == [(1, "lost in the cache"), (2, "written")]
    assert capi.read(bob, after=2).headers["X-Cache"] == "hit"


def test_a_lost_cache_write_of_the_newest_message_is_delivered_once_the_window_expires(capi, monkeypatch):
    from chalicelib import wiring

    monkeypatch.setenv("CACHE_TTL_SECONDS", "1")
    wiring.reset()
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.read(bob)
    monkeypatch.setattr(InboxCache, "deliver_all", lambda self, *event: None)
    assert capi.send(alice, bob, "late but once").status == 201
    seen = []

    def delivered() -> bool:
        seen.extend(capi.read(bob, after=len(seen)).body["messages"])
        return bool(seen)

    wait_until(delivered, 10, "the message was not delivered after the window expired")
    assert [m["text"] for m in seen] == ["late but once"]
    assert capi.read(bob, after=1).body["messages"] == []


def test_a_cache_write_that_fails_because_redis_stopped_after_the_commit_still_delivers_once(
        capi, monkeypatch, redis_server):
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.read(bob)
    original_add = InboxCache.deliver_all

    def stop_redis_then_add(self, *events):
        redis_server.stop()
        return original_add(self, *events)

    monkeypatch.setattr(InboxCache, "deliver_all", stop_redis_then_add)
    try:
        assert capi.send(alice, bob, "committed, not cached").status == 201
    finally:
        redis_server.start()
    monkeypatch.setattr(InboxCache, "deliver_all", original_add)
    messages = []
    wait_until(lambda: messages.extend(capi.read(bob, after=0).body["messages"]) or messages, 10, "no delivery")
    assert [m["text"] for m in messages] == ["committed, not cached"]


def test_requests_keep_working_without_redis_and_hits_resume_when_it_is_back(capi, monkeypatch, redis_server, caplog):
    from chalicelib import wiring

    monkeypatch.setenv("REDIS_TIMEOUT", "0.05")
    monkeypatch.setenv("REDIS_CONNECT_TIMEOUT", "0.05")
    monkeypatch.setenv("CACHE_BACKOFF_SECONDS", "0.5")
    wiring.reset()
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.read(bob)
    received, sent = [], []

    def exchange(n: int) -> list:
        states, slowest = [], 0.0
        for i in range(n):
            started = time.monotonic()
            r = capi.send(alice, bob, f"m{len(sent)}")
            assert r.status == 201
            sent.append(r.body["message_id"])
            page = capi.read(bob, after=len(received))
            slowest = max(slowest, time.monotonic() - started)
            received.extend(page.body["messages"])
            states.append(page.headers["X-Cache"])
        assert slowest < 1.0, f"a request took {slowest:.3f}s"
        return states

    assert set(exchange(5)) == {"hit"}
    caplog.set_level(logging.WARNING, logger="chalicelib.cache")
    redis_server.stop()
    assert set(exchange(20)) == {"miss"}
    assert capi.get("/health").body["cache"] == "unavailable"
    downs = [r for r in caplog.records if "cache unavailable" in r.getMessage()]
    assert len(downs) == 1, "one log line per state change, not per request"
    redis_server.start()
    wait_until(lambda: exchange(1) == ["hit"], 10, "hits did not resume after Redis came back")
    assert [r.getMessage() for r in caplog.records].count("cache available again") == 1
    assert [m["message_id"] for m in received] == sent
    assert [m["seq"] for m in received] == list(range(1, len(sent) + 1))


def test_writes_arriving_out_of_order_leave_a_gap_that_is_a_miss_not_a_wrong_answer(redis_server, redis_client):
    cache = cache_on(redis_server.url)
    user = "00000000-0000-4000-8000-000000000001"
    miss = cache.read(user_id=user, after=0, limit=10)
    assert isinstance(miss, Miss) and miss.ticket
    cache.refill(user_id=user, ticket=miss.ticket, newest=0, items=[])
    assert cache.read(user_id=user, after=0, limit=10) == Hit(newest=0, items=[])
    cache.deliver_all([Delivery({"seq": 2}, {user: 2}, {})])
    assert isinstance(cache.read(user_id=user, after=0, limit=10), Miss)
    assert cache.read(user_id=user, after=1, limit=10) == Hit(newest=2, items=[{"seq": 2}])
    cache.deliver_all([Delivery({"seq": 1}, {user: 1}, {})])
    assert cache.read(user_id=user, after=0, limit=10) == Hit(newest=2, items=[{"seq": 1}, {"seq": 2}])


def test_a_refill_never_lowers_what_a_newer_write_put_in_the_window(redis_server, redis_client):
    cache = cache_on(redis_server.url)
    user = "00000000-0000-4000-8000-000000000002"
    miss = cache.read(user_id=user, after=0, limit=10)
    cache.deliver_all([Delivery({"seq": 1}, {user: 1}, {})])  # committed after the refill's database read
    cache.refill(user_id=user, ticket=miss.ticket, newest=0, items=[])
    assert cache.read(user_id=user, after=0, limit=10) == Hit(newest=1, items=[{"seq": 1}])


def test_a_refill_whose_key_was_evicted_meanwhile_is_dropped(redis_server, redis_client):
    cache = cache_on(redis_server.url)
    user = "00000000-0000-4000-8000-000000000003"
    miss = cache.read(user_id=user, after=0, limit=10)
    cache.deliver_all([Delivery({"seq": 1}, {user: 1}, {})])
    redis_client.delete(keys.window(user))  # evicted, with the write above
    cache.refill(user_id=user, ticket=miss.ticket, newest=0, items=[])  # built before the write
    assert redis_client.exists(keys.window(user)) == 0
    assert isinstance(cache.read(user_id=user, after=0, limit=10), Miss)


def test_a_write_to_a_user_without_a_window_creates_nothing(redis_server, redis_client):
    cache = cache_on(redis_server.url)
    user = "00000000-0000-4000-8000-000000000004"
    cache.deliver_all([Delivery({"seq": 5}, {user: 5}, {})])
    assert redis_client.exists(keys.window(user)) == 0


@pytest.fixture
def evicting_redis(tmp_path):
    """A Redis with room for about 1 MB of data beyond its own baseline."""
    server = RedisServer(tmp_path, ["--maxmemory-policy", "allkeys-lru"]).start()
    client = redis_lib.Redis.from_url(server.url)
    client.config_set("maxmemory", client.info("memory")["used_memory"] + 1_000_000)
    yield server
    server.stop()


def test_reads_stay_exact_while_a_tiny_redis_evicts_windows_under_concurrent_senders(
        tapi, monkeypatch, evicting_redis):
    import random
    import threading
    from collections import Counter

    from chalicelib import wiring

    monkeypatch.setenv("REDIS_URL", evicting_redis.url)
    monkeypatch.setenv("REDIS_TIMEOUT", "1")
    wiring.reset()
    threads, readers_per_thread, sends_per_thread = 4, 5, 100
    senders = [tapi.register(f"sender{i}") for i in range(threads)]
    readers = [tapi.register(f"reader{i}") for i in range(threads * readers_per_thread)]
    acknowledged = {r.id: set() for r in readers}
    received = {r.id: [] for r in readers}
    states, errors, lock = Counter(), [], threading.Lock()

    def poll(reader) -> None:
        page = tapi.read(reader, after=len(received[reader.id]), limit=10)
        if page.status != 200:
            errors.append(page)
            return
        received[reader.id].extend(page.body["messages"])
        with lock:
            states[page.headers["X-Cache"]] += 1

    def work(t: int) -> None:
        rng = random.Random(t)
        mine = readers[t * readers_per_thread:(t + 1) * readers_per_thread]
        for i in range(sends_per_thread):
            to = rng.choice(readers)
            r = tapi.send(senders[t], to, f"{t}-{i} " + "x" * 4000)  # big entries fill the room fast
            if r.status != 201:
                errors.append(r)
                continue
            with lock:
                acknowledged[to.id].add(r.body["message_id"])
            poll(rng.choice(mine))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    for reader in readers:  # drain
        while True:
            before = len(received[reader.id])
            poll(reader)
            if len(received[reader.id]) == before:
                break
    assert errors == []
    for reader in readers:
        got = received[reader.id]
        assert [m["seq"] for m in got] == list(range(1, len(got) + 1))
        assert Counter(m["message_id"] for m in got) == Counter(acknowledged[reader.id])
    info = redis_lib.Redis.from_url(evicting_redis.url).info("stats")
    assert info["evicted_keys"] > 0, "the test must make Redis evict"
    assert states["hit"] > 0 and states["miss"] > 0, states


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """A Redis that speaks only TLS and lets in one ACL user with a password."""
    import subprocess

    tmp_path = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "1", "-subj", "/CN=test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    (tmp_path / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "1", "-extfile", "ext")
    server = RedisServer(tmp_path)
    server.extra_args = [
        "--port", "0", "--tls-port", str(server.port),
        "--tls-cert-file", str(tmp_path / "server.crt"), "--tls-key-file", str(tmp_path / "server.key"),
        "--tls-ca-cert-file", str(tmp_path / "ca.crt"), "--tls-auth-clients", "no",
        # The keys and channels the app uses, and no others (the README's ACL for REDIS_URL's user).
        "--user", "default", "off", "--user", "inbox-app", "on", ">app-password",
        "~inbox:*", "~ws:*", "~wsconn:*", "~rl:*", "~waits:*", "~sess:*", "~ticket:*", "~chg:*", "&wake:*", "+@all",
    ]
    server.start()
    yield server, tmp_path / "ca.crt"
    server.stop()


def test_the_cache_works_over_tls_with_an_acl_user_and_password_from_the_url(capi, monkeypatch, tls_redis):
    from chalicelib import wiring

    server, ca = tls_redis
    monkeypatch.setenv("REDIS_URL", f"rediss://inbox-app:app-password@127.0.0.1:{server.port}/0?ssl_ca_certs={ca}")
    wiring.reset()
    alice, bob = capi.register("alice"), capi.register("bob")
    assert capi.read(bob).headers["X-Cache"] == "miss"
    capi.send(alice, bob, "over tls")
    r = capi.read(bob)
    assert r.headers["X-Cache"] == "hit" and [m["text"] for m in r.body["messages"]] == ["over tls"]
    monkeypatch.setenv("REDIS_URL", f"rediss://inbox-app:wrong@127.0.0.1:{server.port}/0?ssl_ca_certs={ca}")
    wiring.reset()
    refused = capi.read(bob)
    assert refused.status == 200 and refused.headers["X-Cache"] == "miss"
    assert capi.get("/health").body["cache"] == "unavailable"


def test_a_window_over_its_byte_budget_covers_fewer_seqs_and_still_reads_exactly(capi, monkeypatch, redis_client):
    from chalicelib import wiring

    monkeypatch.setenv("CACHE_WINDOW_BYTES", "40000")
    wiring.reset()
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.read(bob)  # a window exists from here on
    largest = ["😀" * 4095 + str(i) for i in range(6)]  # 4,096 characters, the most a message may have
    for text in largest:
        assert capi.send(alice, bob, text).status == 201
    key = keys.window(bob.id)
    held = sorted(int(f) for f in redis_client.hkeys(key) if f.isdigit())
    sizes = [redis_client.hstrlen(key, str(s)) for s in held]
    assert held == [5, 6], held  # two 16 KB entries fit in 40,000 bytes, three would not
    assert all(16_384 < n < 17_000 for n in sizes), sizes  # UTF-8: 4 bytes an emoji, not a 12-byte escape
    assert int(redis_client.hget(key, "z")) == sum(sizes) <= 40_000
    recent = capi.read(bob, after=4)
    assert recent.headers["X-Cache"] == "hit" and [m["text"] for m in recent.body["messages"]] == largest[4:]
    everything = capi.read(bob, after=0)
    assert everything.headers["X-Cache"] == "miss" and [m["text"] for m in everything.body["messages"]] == largest
    # The miss's refill rewrote the entries it held: the byte count still matches them.
    assert sorted(int(f) for f in redis_client.hkeys(key) if f.isdigit()) == [5, 6]
    assert int(redis_client.hget(key, "z")) == sum(redis_client.hstrlen(key, s) for s in ("5", "6")) <= 40_000
    redis_client.flushall()
    assert capi.read(bob, after=4).body == recent.body  # the database answers the same page


def test_a_cache_hit_cuts_a_page_of_large_messages_where_the_database_does(capi, monkeypatch, redis_client):
    from chalicelib import wiring

    monkeypatch.setenv("CACHE_WINDOW_BYTES", str(16 * 1024 * 1024))  # room for every entry
    wiring.reset()
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.read(bob)
    for i in range(30):
        assert capi.send(alice, bob, "😀" * 4095 + chr(ord("a") + i)).status == 201
    hit = capi.read(bob, after=0, limit=100)
    redis_client.flushall()
    miss = capi.read(bob, after=0, limit=100)
    assert (hit.headers["X-Cache"], miss.headers["X-Cache"]) == ("hit", "miss")
    assert hit.body == miss.body and hit.body["has_more"] is True and 0 < len(hit.body["messages"]) < 30


def test_a_delivery_pushes_a_windows_expiry_back_only_when_a_tenth_of_its_ttl_has_passed(capi, monkeypatch,
                                                                                          redis_client):
    """Most deliveries leave the expiry alone (a command fewer per recipient);
    the window still lives at least 0.9 of its ttl after its last write."""
    from chalicelib import wiring

    monkeypatch.setenv("CACHE_TTL_SECONDS", "1000")
    wiring.reset()
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.read(bob)  # bob's window exists from here on
    window = keys.window(bob.id)
    capi.send(alice, bob, "first")
    pushed = int(redis_client.hget(window, "e"))
    redis_client.expire(window, 950)  # as if 50 s had passed: less than a tenth of the ttl
    capi.send(alice, bob, "second")
    assert int(redis_client.hget(window, "e")) == pushed
    assert 900 < redis_client.ttl(window) <= 950
    redis_client.hset(window, "e", pushed - 100_001)  # the last push was over 100 s ago
    redis_client.expire(window, 850)
    capi.send(alice, bob, "third")
    assert int(redis_client.hget(window, "e")) > pushed - 100_001
    assert redis_client.ttl(window) > 990


def _registered(api, name):
    """A user, and the id of the session its token names."""
    from tests.conftest import User

    r = api.post("/register", {"user_name": name})
    assert r.status == 201, r
    return User(r.body["user_id"], r.body["user_name"], r.body["token"]), r.body["session_id"]


def _new_container():
    """As a container that has not seen any session: it must ask about each."""
    from chalicelib import wiring

    wiring.service().accounts._deps.session_states().forget_local()


def _last_line(caplog):
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "chalicelib.requests"][-1]


def test_a_cache_hit_asks_about_its_session_and_its_rate_limit_in_its_one_redis_round_trip(capi, monkeypatch,
                                                                                           caplog):
    from chalicelib import wiring

    monkeypatch.setenv("RATE_LIMIT_READS_PER_MINUTE", "600")
    wiring.reset()
    caplog.set_level(logging.INFO)
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.send(alice, bob, "one")
    assert capi.read(bob).headers["X-Cache"] == "miss"  # the refill makes the window
    _new_container()
    hit = capi.read(bob)
    assert hit.status == 200 and hit.headers["X-Cache"] == "hit" and [m["text"] for m in hit.body["messages"]] == ["one"]
    line = _last_line(caplog)
    assert (line["RedisRoundTrips"], line["DbRoundTrips"]) == (1, 0)


def test_a_session_signed_out_elsewhere_is_refused_on_a_cache_hit_with_nothing_of_the_page(capi, redis_client):
    alice = capi.register("alice")
    bob, session = _registered(capi, "bob")
    capi.send(alice, bob, "private")
    assert capi.read(bob).status == 200
    redis_client.set(keys.session(session), "0")  # another container signed the device out
    _new_container()
    refused = capi.read(bob)
    assert refused.status == 401 and "private" not in json.dumps(refused.body)


def test_a_write_of_a_session_signed_out_elsewhere_writes_nothing(capi, redis_client):
    alice, session = _registered(capi, "alice")
    bob = capi.register("bob")
    redis_client.set(keys.session(session), "0")
    _new_container()
    assert capi.send(alice, bob, "after signing out").status == 401
    assert capi.read(bob).body["messages"] == []


def test_an_exhausted_read_limit_refuses_a_cache_hit_in_that_same_round_trip(capi, monkeypatch, caplog):
    from chalicelib import wiring

    monkeypatch.setenv("RATE_LIMIT_READS_PER_MINUTE", "3")
    wiring.reset()
    caplog.set_level(logging.INFO)
    alice, bob = capi.register("alice"), capi.register("bob")
    capi.send(alice, bob, "one")
    assert [capi.read(bob).status for _ in range(3)] == [200, 200, 200]
    refused = capi.read(bob)
    assert refused.status == 429 and "messages" not in refused.body
    assert _last_line(caplog)["RedisRoundTrips"] == 1
