"""Many writers at once, on SQLite and on MariaDB.

Threads stand in for concurrent Lambda containers. They do not use
chalice.test.Client: its request() swaps the process-wide os.environ for a
copy and back, which races between threads. They call the app through
chalice.local.LocalGateway (what `chalice local` runs in each of its request
threads): it builds the API Gateway proxy event and calls `app(event,
context)`. A plain Chalice object keeps `current_request` in one attribute
shared by all threads, so for the duration of a test the app object gets the
thread-local `current_request` that `chalice local` gives it as well. Each
thread then gets its own database connection from the app (one per thread).
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List

import pytest

from tests.conftest import GatewayClient, thread_local_requests

MESSAGES_PER_THREAD = 25
DIRECT_SENDERS = 4
GROUP_SENDERS = 4
DEADLINE_SECONDS = 60


def _run_together(count: int, work: Callable[[int], Any]) -> List[Any]:
    """Run work(0..count-1) in `count` threads released at the same moment."""
    barrier = threading.Barrier(count)

    def start(i: int) -> Any:
        barrier.wait(timeout=DEADLINE_SECONDS)
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return [f.result(timeout=DEADLINE_SECONDS) for f in [pool.submit(start, i) for i in range(count)]]


def _with_redis_cache(monkeypatch, request, **settings: str) -> None:
    """Rebuild the service on the run's own Redis, with these settings too."""
    from chalicelib import wiring

    for name, value in {"REDIS_URL": request.getfixturevalue("session_redis").url, "REDIS_TIMEOUT": "1",
                        **settings}.items():
        monkeypatch.setenv(name, value)
    wiring.reset()


@pytest.mark.parametrize("cache", ["no_cache", "redis_cache"])
def test_a_reader_polling_with_the_cursor_gets_every_message_of_eight_concurrent_writers_exactly_once_in_seq_order(
        tapi, cache, monkeypatch, request):
    if cache == "redis_cache":
        _with_redis_cache(monkeypatch, request, CACHE_SIZE="16")  # small, so the window slides while the reader lags
    reader = tapi.register("reader")
    direct_senders = [tapi.register(f"direct{i}") for i in range(DIRECT_SENDERS)]
    group_senders = [tapi.register(f"group{i}") for i in range(GROUP_SENDERS)]
    group_id = tapi.create_group(reader)
    for member in [reader] + group_senders:
        assert tapi.join(member, group_id).status == 200

    acknowledged: Dict[str, Dict[str, Any]] = {}  # message_id -> what was sent
    failures: List[Any] = []
    read: List[Dict[str, Any]] = []
    read_failures: List[Any] = []
    polls = Counter()
    lock = threading.Lock()
    writers_done = threading.Event()
    start = threading.Barrier(DIRECT_SENDERS + GROUP_SENDERS + 1)

    def write(thread: int) -> None:
        start.wait(timeout=DEADLINE_SECONDS)
        for i in range(MESSAGES_PER_THREAD):
            text = f"t{thread}-m{i}"
            if thread < DIRECT_SENDERS:
                sender = direct_senders[thread]
                r, kind, group = tapi.send(sender, reader, text), "direct", None
            else:
                sender = group_senders[thread - DIRECT_SENDERS]
                r, kind, group = tapi.send_group(sender, group_id, text), "group", group_id
            with lock:
                if r.status == 201:
                    acknowledged[r.body["message_id"]] = {
                        "sender_id": sender.id, "text": text, "kind": kind, "group_id": group}
                else:
                    failures.append((text, r.status, r.body))

    def poll() -> None:
        start.wait(timeout=DEADLINE_SECONDS)
        after, deadline = 0, time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            finished = writers_done.is_set()  # read before the page: a page read after this saw every commit
            r = tapi.read(reader, after=after, limit=7)
            polls["reads"] += 1
            polls[r.headers.get("X-Cache")] += 1
            if r.status != 200:
                read_failures.append((r.status, r.body))
                return
            read.extend(r.body["messages"])
            after = r.body["next_after"]
            if finished and not r.body["has_more"]:
                return
        read_failures.append("reader did not finish before the deadline")

    reader_thread = threading.Thread(target=poll)
    reader_thread.start()
    try:
        with ThreadPoolExecutor(max_workers=DIRECT_SENDERS + GROUP_SENDERS) as pool:
            for f in [pool.submit(write, t) for t in range(DIRECT_SENDERS + GROUP_SENDERS)]:
                f.result(timeout=DEADLINE_SECONDS)
    finally:
        writers_done.set()
        reader_thread.join(timeout=DEADLINE_SECONDS)

    assert failures == []
    assert read_failures == []
    total = (DIRECT_SENDERS + GROUP_SENDERS) * MESSAGES_PER_THREAD
    assert len(acknowledged) == total
    ids = [m["message_id"] for m in read]
    assert [i for i, n in Counter(ids).items() if n > 1] == [], "a message was read more than once"
    assert set(ids) - set(acknowledged) == set(), "an unacknowledged message was read"
    assert set(acknowledged) - set(ids) == set(), "an acknowledged message was never read"
    seqs = [m["seq"] for m in read]
    assert seqs == sorted(set(seqs)), "read out of seq order"
    # The stream holds the reader's joins and the messages, gapless.
    stream = tapi.sync_all(reader)
    assert [e["seq"] for e in stream] == list(range(1, len(stream) + 1))
    assert [e["message_id"] for e in stream if e["type"] == "message"] == ids
    for m in read:
        sent = acknowledged[m["message_id"]]
        assert (m["sender_id"], m["text"], m["kind"], m["group_id"]) == (
            sent["sender_id"], sent["text"], sent["kind"], sent["group_id"])
    assert polls["reads"] > 1
    if cache == "redis_cache":
        assert polls["hit"] > 0 and polls["miss"] > 0, polls  # both paths served the reader
    else:
        assert polls["off"] == polls["reads"], polls


@pytest.mark.parametrize("route", ["send", "send_group"])
def test_concurrent_sends_with_the_same_client_message_id_create_one_message_and_one_delivery(tapi, route):
    sender, recipient = tapi.register("sender"), tapi.register("recipient")
    group_id = tapi.create_group(sender)
    for member in (sender, recipient):
        assert tapi.join(member, group_id).status == 200
    threads = 8

    def send(_: int):
        if route == "send":
            return tapi.send(sender, recipient, "once", client_message_id="key-1")
        return tapi.send_group(sender, group_id, "once", client_message_id="key-1")

    responses = _run_together(threads, send)

    assert sorted(r.status for r in responses) == [200] * (threads - 1) + [201]
    assert {r.body["message_id"] for r in responses} == {responses[0].body["message_id"]}
    assert sorted(r.body["duplicate"] for r in responses) == [False] + [True] * (threads - 1)
    if route == "send_group":
        assert {r.body["recipients"] for r in responses} == {1}
    delivered = tapi.read_all(recipient)
    assert [(m["message_id"], m["text"], m["seq"]) for m in delivered] == [
        (responses[0].body["message_id"], "once", 2)]  # after the recipient's join (seq 1)
    assert [e["message_id"] for e in tapi.sync_all(sender) if e["type"] == "message"] == [
        responses[0].body["message_id"]]  # one in the sender's own stream too


def test_concurrent_joins_never_take_a_group_past_max_group_members(tapi, monkeypatch):
    from chalicelib import wiring

    monkeypatch.setenv("MAX_GROUP_MEMBERS", "5")
    wiring.reset()
    users = [tapi.register(f"joiner{i}") for i in range(12)]
    group_id = tapi.create_group(users[0])

    responses = _run_together(len(users), lambda i: tapi.join(users[i], group_id))

    statuses = Counter(r.status for r in responses)
    assert statuses == {200: 5, 409: 7}, [(r.status, r.body) for r in responses]
    assert {r.code for r in responses if r.status == 409} == {"GroupFull"}
    members = [u for u, r in zip(users, responses) if r.status == 200]
    outsiders = [u for u, r in zip(users, responses) if r.status == 409]
    sent = tapi.send_group(members[0], group_id, "who is here")
    assert (sent.status, sent.body["recipients"]) == (201, 4)
    assert all(tapi.send_group(u, group_id, "let me in").code == "NotAMember" for u in outsiders)
    # The seats are counted right: one leaves, exactly one newcomer fits.
    assert tapi.join(members[1], group_id, to_be_added=0).status == 200
    assert tapi.join(outsiders[0], group_id).status == 200
    assert tapi.join(outsiders[1], group_id).code == "GroupFull"


def test_concurrent_first_requests_on_a_fresh_embedded_database_all_succeed(tmp_path, monkeypatch):
    """`chalice local` serves each request in its own thread; the first ones
    race the automatic migration of a new SQLite file. Five new files, so a
    race that strikes only some of the time is still seen."""
    from app import app
    from chalicelib import wiring

    monkeypatch.setenv("AUTH_SECRET", "test-signing-secret-0123456789abcdef")
    monkeypatch.setenv("AUTH_MODE", "token")
    monkeypatch.delenv("REDIS_URL", raising=False)
    failed = []
    try:
        with thread_local_requests(app):
            client = GatewayClient(app)
            for round_ in range(5):
                monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / f'fresh{round_}.sqlite3'}")
                wiring.reset()
                responses = _run_together(
                    8, lambda i: client.http.post(f"/register?user_name=first{i}", headers={}, body=b""))
                failed += [(round_, r.status_code, r.body) for r in responses if r.status_code != 201]
    finally:
        wiring.reset()

    assert failed == []


@pytest.mark.parametrize("cache", ["no_cache", "redis_cache"])
def test_concurrent_group_sends_into_overlapping_groups_while_members_join_and_leave_stay_gapless_and_exact(
        tapi, cache, monkeypatch, request):
    """Two groups sharing four members; two senders in each; two members
    leaving and joining again all along. Every user's seqs stay 1..n, a
    poller that reads while it happens gets exactly the final inbox, and
    each message lands in exactly as many inboxes as its `recipients` said,
    always those of its group's members at send time (the steady ones
    included)."""
    if cache == "redis_cache":
        _with_redis_cache(monkeypatch, request)
    users = [tapi.register(f"u{i}") for i in range(8)]
    groups = {"a": tapi.create_group(users[0], "a"), "b": tapi.create_group(users[0], "b")}
    members = {"a": users[0:6], "b": users[2:8]}  # users 2..5 are in both
    for name, group_members in members.items():
        for member in group_members:
            assert tapi.join(member, groups[name]).status == 200
    senders = {"a": [users[0], users[2]], "b": [users[3], users[7]]}
    togglers = [(users[5], "a"), (users[4], "b")]  # in and out of a group, over and over
    watched = users[3]  # polls while everything happens
    acknowledged: Dict[str, Dict[str, Any]] = {}
    failures: List[Any] = []
    polled: List[Dict[str, Any]] = []
    lock = threading.Lock()
    done = threading.Event()

    def send(args) -> None:
        name, sender = args
        for i in range(MESSAGES_PER_THREAD):
            r = tapi.send_group(sender, groups[name], f"{name}-{sender.name}-{i}")
            with lock:
                if r.status == 201:
                    acknowledged[r.body["message_id"]] = {"group": name, "recipients": r.body["recipients"],
                                                          "sender": sender.id}
                else:
                    failures.append((r.status, r.body))

    def toggle(args) -> None:
        member, name = args
        while not done.is_set():
            for to_be_added in (0, 1):
                r = tapi.join(member, groups[name], to_be_added)
                if r.status != 200:
                    with lock:
                        failures.append((r.status, r.body))

    def poll(_) -> None:
        after = 0
        while True:
            finished = done.is_set()
            r = tapi.read(watched, after=after, limit=5)
            if r.status != 200:
                failures.append((r.status, r.body))
                return
            polled.extend(r.body["messages"])
            after = r.body["next_after"]
            if finished and not r.body["has_more"]:
                return

    with ThreadPoolExecutor(max_workers=7) as pool:
        background = [pool.submit(toggle, t) for t in togglers] + [pool.submit(poll, None)]
        for f in [pool.submit(send, (name, s)) for name, group_senders in senders.items() for s in group_senders]:
            f.result(timeout=DEADLINE_SECONDS)
        done.set()
        for f in background:
            f.result(timeout=DEADLINE_SECONDS)

    assert failures == []
    assert len(acknowledged) == 4 * MESSAGES_PER_THREAD
    for u in users:  # messages, joins and leaves: one gapless stream each
        stream = tapi.sync_all(u)
        assert [e["seq"] for e in stream] == list(range(1, len(stream) + 1)), f"{u.id}: not gapless"
    inboxes = {u.id: tapi.read_all(u) for u in users}
    deliveries = Counter()
    for user_id, inbox in inboxes.items():
        seqs = [m["seq"] for m in inbox]
        assert seqs == sorted(set(seqs)), f"{user_id}: out of order"
        for m in inbox:
            deliveries[m["message_id"]] += 1
            sent = acknowledged[m["message_id"]]
            assert user_id != sent["sender"] and user_id in {u.id for u in members[sent["group"]]}
    for message_id, sent in acknowledged.items():
        assert deliveries[message_id] == sent["recipients"], (message_id, sent)
    togglers_ids = {u.id for u, _ in togglers}
    for name, group_members in members.items():
        for member in group_members:
            if member.id in togglers_ids:
                continue
            expected = {m for m, s in acknowledged.items() if s["group"] == name and s["sender"] != member.id}
            got = {m["message_id"] for m in inboxes[member.id] if acknowledged[m["message_id"]]["group"] == name}
            assert got == expected, f"steady member {member.name} missed messages of group {name}"
    assert polled == inboxes[watched.id]  # what the poller saw, while it happened, is the whole inbox in order
