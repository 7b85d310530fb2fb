"""The stream with the Redis cache, on MariaDB: an edit or a deletion leaves
the old text in no cache window (every holder's) and nowhere in the
database; /sync pages read from the cache equal the database's; long-polls
and WebSocket connections get every event type. docs/api.md, "The stream"
and "The cache's guarantees"."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import redis as redis_lib

from chalicelib import keys, wiring
from chalicelib.cache import InboxCache
from chalicelib.db import Database
from chalicelib.settings import Settings
from tests.conftest import TEST_AUTH_SECRET, Api, GatewayClient, thread_local_requests
from tests.support.servers import RedisServer, in_background, wait_until

WAKE_SECONDS = 0.5  # as tests/integration/test_long_poll.py


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("stream-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def capi(mysql_url, redis_server, redis_client, monkeypatch) -> Iterator[Api]:
    """The api helper on MariaDB with the cache on, callable from many threads."""
    from app import app

    for name in ("MAX_GROUP_MEMBERS", "DB_SECRET_ARN", "AUTH_SECRET_ARN", "WEBSOCKET_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"DATABASE_URL": mysql_url, "AUTH_SECRET": TEST_AUTH_SECRET, "AUTH_MODE": "token",
                        "REDIS_URL": redis_server.url, "REDIS_TIMEOUT": "1"}.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    with thread_local_requests(app):
        yield Api(GatewayClient(app))
    wiring.reset()


def sync(api, user, **params):
    r = api.post("/sync", params, token=user.token)
    assert r.status == 200, r
    return r.body


def stream(api, user) -> List[Dict[str, Any]]:
    out, after = [], 0
    while True:
        body = sync(api, user, after=after, limit=1000)
        out += body["events"]
        after = body["next_after"]
        if not body["has_more"]:
            return out


def window(redis_client, user) -> Dict[str, str]:
    return {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.window(user.id)).items()}


def windows_holding(redis_client, users, text: str) -> Dict[str, List[str]]:
    """Each user whose window has `text` in any field, with those fields."""
    found = {}
    for u in users:
        fields = [f for f, v in window(redis_client, u).items() if text in v]
        if fields:
            found[u.name] = fields
    return found


def database_holding(mysql_url: str, text: str) -> int:
    """Rows anywhere in the stream's tables whose text has `text` (only messages has text)."""
    db = Database(Settings.from_env({"DATABASE_URL": mysql_url}))
    try:
        return int(db.run(lambda tx: tx.one("SELECT COUNT(*) FROM messages WHERE body LIKE %s",
                                            (f"%{text}%",)), write=False)[0])
    finally:
        db.close()


def people_in_a_group(api, *names):
    users = [api.register(n) for n in names]
    group = api.create_group(users[0], "cached group")
    for u in users:
        assert api.join(u, group).status == 200
    return users, group


def sent_id(r) -> str:
    assert r.status == 201, r
    return r.body["message_id"]


def edit(api, user, message_id, text):
    r = api.post("/edit_message", {"message_id": message_id, "message_text": text}, token=user.token)
    assert r.status == 200, r
    return r


def delete(api, user, message_id):
    r = api.post("/delete_message", {"message_id": message_id}, token=user.token)
    assert r.status == 200, r
    return r


# --------------------------------------------------------------------------- no old text anywhere


def test_after_an_edit_and_a_deletion_no_holders_window_and_no_row_has_the_old_text(capi, redis_client, mysql_url):
    (alice, bob, carol), group = people_in_a_group(capi, "alice", "bob", "carol")
    outsider = capi.register("dave")
    everyone = (alice, bob, carol, outsider)
    for u in everyone:
        stream(capi, u)  # each has a window from here on
    direct = sent_id(capi.send(alice, bob, "direct-original-7f3a"))
    grouped = sent_id(capi.send_group(carol, group, "group-original-7f3a"))
    for u in everyone:
        stream(capi, u)  # hits: the entries are in the windows
    held = windows_holding(redis_client, everyone, "original-7f3a")  # the precondition: the texts are cached
    assert {name: len(fields) for name, fields in held.items()} == {"alice": 2, "bob": 2, "carol": 1}, held

    edit(capi, alice, direct, "direct-edited-51c2")
    edit(capi, carol, grouped, "group-edited-51c2")
    assert windows_holding(redis_client, everyone, "original-7f3a") == {}
    assert database_holding(mysql_url, "original-7f3a") == 0
    for u in (alice, bob, carol):  # read again: the windows are refilled from the database
        texts = {e["text"] for e in stream(capi, u) if e["type"] in ("message", "edit")}
        assert "direct-original-7f3a" not in texts and "group-original-7f3a" not in texts
    assert windows_holding(redis_client, everyone, "original-7f3a") == {}
    assert set(windows_holding(redis_client, everyone, "edited-51c2")) == {"alice", "bob", "carol"}

    delete(capi, alice, direct)
    delete(capi, carol, grouped)
    for u in (alice, bob, carol):
        stream(capi, u)
    assert windows_holding(redis_client, everyone, "edited-51c2") == {}
    assert windows_holding(redis_client, everyone, "original-7f3a") == {}
    assert database_holding(mysql_url, "edited-51c2") == 0 and database_holding(mysql_url, "original-7f3a") == 0
    for u in (alice, bob, carol):
        mine = [e for e in stream(capi, u) if e.get("message_id") in (direct, grouped)]
        assert all(e.get("text") is None for e in mine), mine
        assert {e["type"] for e in mine} == {"message", "edit", "delete"}


def test_an_edit_whose_cache_write_comes_after_a_later_deletions_leaves_no_old_text(capi, redis_client, monkeypatch):
    """Two devices of the sender: an edit commits, then a deletion commits
    and writes through to the cache first (the edit's write is slower, as
    it may be in another container). The edit's late write must not put the
    deleted message's text back into any window."""
    alice, bob = capi.register("alice"), capi.register("bob")
    for u in (alice, bob):
        stream(capi, u)
    message = sent_id(capi.send(alice, bob, "first words"))
    for u in (alice, bob):
        stream(capi, u)
    original = InboxCache.deliver_all
    edit_committed, deletion_done = threading.Event(), threading.Event()

    def deliver(self, deliveries):
        if any(d.item.get("type") == "edit" for d in deliveries):
            edit_committed.set()
            assert deletion_done.wait(10), "the deletion did not finish"
        return original(self, deliveries)

    monkeypatch.setattr(InboxCache, "deliver_all", deliver)
    edited = in_background(lambda: capi.post("/edit_message", {"message_id": message,
                                                               "message_text": "regretted words"},
                                             token=alice.token), timeout=20)
    assert edit_committed.wait(10), "the edit did not commit"
    delete(capi, alice, message)
    deletion_done.set()
    r, _ = edited()
    assert r.status == 200, r
    assert windows_holding(redis_client, (alice, bob), "regretted words") == {}
    assert windows_holding(redis_client, (alice, bob), "first words") == {}
    for u in (alice, bob):
        assert "regretted words" not in json.dumps(stream(capi, u))


# --------------------------------------------------------------------------- the cache answers as the database


def _pages(user, limit: int):
    """(path, body) of every /sync page, through the use case, which says the path."""
    out, after = [], 0
    while True:
        page = wiring.service().reading.sync(caller=user.id, user_id=user.id, after=after, limit=limit)
        out.append((page.cache, json.dumps(page.body(), separators=(",", ":"))))
        after = page.next_after
        if not page.has_more:
            return out


def test_sync_pages_from_the_cache_equal_the_databases_for_every_event_type(capi, redis_client):
    (alice, bob, carol), group = people_in_a_group(capi, "alice", "bob", "carol 🐧")
    for u in (alice, bob, carol):
        stream(capi, u)
    direct = sent_id(capi.send(alice, bob, "direct «ש» \"q\"\n"))
    grouped = sent_id(capi.send_group(carol, group, "group 😀"))
    edit(capi, alice, direct, "direct, edited 😀")
    assert capi.post("/mark_read", {"message_id": direct, "with_user_id": alice.id}, token=bob.token).status == 200
    assert capi.post("/mark_read", {"message_id": grouped, "group_id": group}, token=bob.token).status == 200
    delete(capi, carol, grouped)
    assert capi.join(carol, group, 0).status == 200
    sent_id(capi.send(bob, bob, "note to self"))
    for u in (alice, bob, carol):
        stream(capi, u)  # misses over the entries the edit and the deletion dropped refill the windows
        cached = _pages(u, limit=3)
        redis_client.delete(keys.window(u.id))
        from_db = _pages(u, limit=3)
        assert {path for path, _ in cached} == {"hit"}, (u.name, cached)
        assert {path for path, _ in from_db} == {"miss"}, (u.name, from_db)
        assert [body for _, body in cached] == [body for _, body in from_db], u.name
    assert [e["type"] for e in stream(capi, bob)] == [
        "member", "member", "message", "message", "edit", "read", "read", "delete", "member", "message"]


# --------------------------------------------------------------------------- long-poll and WebSocket


def _subscribed(redis_url: str, user) -> bool:
    with redis_lib.Redis.from_url(redis_url) as client:
        return client.pubsub_numsub(keys.wake_channel(user.id))[0][1] >= 1


def test_a_long_poll_on_sync_wakes_on_an_edit_and_on_read_messages_moves_past_it(capi, redis_server):
    alice, bob = capi.register("alice"), capi.register("bob")
    message = sent_id(capi.send(alice, bob, "before"))
    waiting = in_background(lambda: capi.post("/sync", {"after": 1, "wait": 10}, token=bob.token), timeout=30)
    wait_until(lambda: _subscribed(redis_server.url, bob), 10, "the /sync reader did not start waiting")
    edit(capi, alice, message, "after")
    edited_at = time.monotonic()
    r, returned = waiting()
    assert r.status == 200 and [(e["type"], e["text"]) for e in r.body["events"]] == [("edit", "after")], r
    assert returned - edited_at < WAKE_SECONDS, returned - edited_at

    # /read_messages shows no edit or deletion: its long-poll waits through
    # them for a message, and answers it with the cursor past what it skipped.
    reading = in_background(lambda: capi.read(bob, after=2, wait=10), timeout=30)
    wait_until(lambda: _subscribed(redis_server.url, bob), 10, "the /read_messages reader did not start waiting")
    delete(capi, alice, message)  # bob's seq 3
    wait_until(lambda: capi.post("/sync", {"after": 2}, token=bob.token).body["next_after"] == 3, 10,
               "the deletion did not reach bob's stream")
    latest = sent_id(capi.send(alice, bob, "a new one"))  # bob's seq 4
    sent_at = time.monotonic()
    r, returned = reading()
    assert r.status == 200 and [(m["seq"], m["message_id"]) for m in r.body["messages"]] == [(4, latest)], r
    assert r.body["next_after"] == 4 and returned - sent_at < WAKE_SECONDS, (r, returned - sent_at)


@pytest.fixture
def push_server(tmp_path: Path, mysql_url: str, redis_server: RedisServer):
    from tests.support.devserver import DevServer

    server = DevServer(tmp_path / "push.log", AUTH_SECRET=TEST_AUTH_SECRET, DATABASE_URL=mysql_url,
                       REDIS_URL=redis_server.url).start()
    yield server
    server.stop()


def test_a_websocket_gets_every_event_and_messages_received_keep_their_original_frame(push_server):
    from tests.support.devserver import call
    from tests.support.live import Socket, register, send, ticket

    base = push_server.url
    alice, bob = register(base, "alice"), register(base, "bob")
    sockets = {}
    for who in (alice, bob):
        t = ticket(base, who)
        sockets[who["user_id"]] = Socket(f"{t['url']}?ticket={t['ticket']}").connect()
    try:
        status, group = call(base, "/create_group", alice["token"], group_name="live")
        assert status == 201
        for who in (alice, bob):
            assert call(base, "/update_group", who["token"], user_id=who["user_id"], group_id=group["group_id"],
                        to_be_added=1)[0] == 200
        message = send(base, alice, bob, "live words")["message_id"]
        assert call(base, "/edit_message", alice["token"], message_id=message, message_text="live, edited")[0] == 200
        assert call(base, "/mark_read", bob["token"], message_id=message, with_user_id=alice["user_id"])[0] == 200
        assert call(base, "/delete_message", alice["token"], message_id=message)[0] == 200
        expected = {alice["user_id"]: 6, bob["user_id"]: 5}  # alice: 2 joins, message, edit, receipt, delete
        frames = {u: [sockets[u].next() for _ in range(n)] for u, n in expected.items()}
        for user_id, got in frames.items():
            status, body = call(base, "/sync", [u for u in (alice, bob) if u["user_id"] == user_id][0]["token"])
            assert status == 200, body
            assert [f["event"]["seq"] for f in got] == [e["seq"] for e in body["events"]], user_id
            assert [f["event"]["type"] for f in got] == [e["type"] for e in body["events"]], user_id
        bob_frames = frames[bob["user_id"]]
        received = bob_frames[1]
        assert received["type"] == "message" and received["message"] == {
            "seq": 2, "message_id": message, "kind": "direct", "sender_id": alice["user_id"], "group_id": None,
            "text": "live words", "sent_at": received["event"]["sent_at"], "attachments": []}
        assert received["event"]["type"] == "message" and received["event"]["text"] == "live words"
        assert [f["type"] for f in bob_frames] == ["event", "message", "event", "event", "event"]
        assert [f["event"]["type"] for f in bob_frames] == ["member", "message", "edit", "read", "delete"]
        assert bob_frames[2]["event"]["text"] == "live, edited"
        alice_frames = frames[alice["user_id"]]
        assert alice_frames[2]["type"] == "event"  # her own message: the stream's frame only
        assert [f["event"]["type"] for f in alice_frames] == ["member", "member", "message", "edit", "receipt",
                                                              "delete"]
        assert alice_frames[4]["event"] == {"seq": 5, "type": "receipt", "with_user_id": bob["user_id"],
                                            "user_id": bob["user_id"], "message_id": message}
    finally:
        for s in sockets.values():
            s.close()
