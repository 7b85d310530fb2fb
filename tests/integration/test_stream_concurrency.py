"""Edits, deletions, reads and sends into one direct conversation and one
group at once, from several threads (standing in for containers), on
MariaDB, without and with the Redis cache: afterwards every participant's
/sync stream is gapless, every send is in every holder's stream exactly
once, the events of one message are in commit order (the same relative
order in every stream, never an edit after the deletion) and replaying them
gives the database's state; nothing answered a 500. How the threads reach
the app: tests/integration/test_concurrency.py."""
from __future__ import annotations

import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from chalicelib import wiring
from chalicelib.db import Database
from chalicelib.settings import Settings
from tests.conftest import TEST_AUTH_SECRET, Api, GatewayClient, thread_local_requests

DEADLINE_SECONDS = 60
SEED = 6  # messages each editor starts with
ROUNDS = 12  # operations per thread


@pytest.fixture(params=["no_cache", "redis_cache"])
def mapi(request, mysql_url, monkeypatch) -> Iterator[Api]:
    """The thread-safe api helper on MariaDB, without and with the cache."""
    from app import app

    for name in ("MAX_GROUP_MEMBERS", "DB_SECRET_ARN", "AUTH_SECRET_ARN", "WEBSOCKET_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    env = {"DATABASE_URL": mysql_url, "AUTH_SECRET": TEST_AUTH_SECRET, "AUTH_MODE": "token"}
    if request.param == "redis_cache":
        env.update(REDIS_URL=request.getfixturevalue("session_redis").url, REDIS_TIMEOUT="1", CACHE_SIZE="16")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    with thread_local_requests(app):
        yield Api(GatewayClient(app))
    wiring.reset()


def stream(api, user) -> List[Dict[str, Any]]:
    out, after = [], 0
    while True:
        r = api.post("/sync", {"after": after, "limit": 7}, token=user.token)  # small pages: many reads
        assert r.status == 200, r
        out += r.body["events"]
        after = r.body["next_after"]
        if not r.body["has_more"]:
            return out


def database_state(mysql_url: str, message_ids: List[str]) -> Dict[str, Tuple[Any, bool]]:
    db = Database(Settings.from_env({"DATABASE_URL": mysql_url}))
    try:
        marks = ", ".join(["%s"] * len(message_ids))
        rows = db.run(lambda tx: tx.all(f"SELECT id, body, deleted_at IS NOT NULL FROM messages WHERE id IN ({marks})",
                                        tuple(message_ids)), write=False)
    finally:
        db.close()
    return {mid: (None if deleted else body, bool(deleted)) for mid, body, deleted in rows}


def test_concurrent_edits_deletions_reads_and_sends_keep_every_stream_gapless_exact_and_in_commit_order(
        mapi, mysql_url):
    api = mapi
    alice, bob, carol, dave = (api.register(n) for n in ("alice", "bob", "carol", "dave"))
    group = api.create_group(alice, "busy")
    for u in (alice, bob, carol, dave):
        assert api.join(u, group).status == 200
    for u in (alice, bob, carol, dave):
        stream(api, u)  # windows exist (with the cache), so writes go through to them
    holders = {"direct": {alice.id, bob.id}, "group": {alice.id, bob.id, carol.id, dave.id}}
    sent: Dict[str, str] = {}  # message id -> "direct" | "group"
    alice_seed = []
    for i in range(SEED):
        r = api.send(alice, bob, f"alice seed {i}")
        assert r.status == 201
        alice_seed.append(r.body["message_id"])
        sent[r.body["message_id"]] = "direct"
    carol_seed = []
    for i in range(SEED):
        r = api.send_group(carol, group, f"carol seed {i}")
        assert r.status == 201
        carol_seed.append(r.body["message_id"])
        sent[r.body["message_id"]] = "group"

    failures: List[Any] = []
    edits_done: Counter = Counter()  # message id -> edits answered 200
    deleted: set = set()
    lock = threading.Lock()

    def check(r, ok_statuses, what) -> bool:
        if r.status not in ok_statuses:
            with lock:
                failures.append((what, r.status, r.body))
            return False
        return True

    def editor(user, seed, tag) -> None:
        barrier.wait(timeout=DEADLINE_SECONDS)
        for i in range(ROUNDS):
            message = seed[i % len(seed)]
            r = api.post("/edit_message", {"message_id": message, "message_text": f"{tag} edit {i}"},
                         token=user.token)
            if r.status == 409 and r.code == "MessageDeleted":
                continue
            if check(r, (200,), ("edit", tag, i)):
                with lock:
                    edits_done[message] += 1

    def deleter(user, seed, tag) -> None:
        barrier.wait(timeout=DEADLINE_SECONDS)
        for i in range(ROUNDS):
            message = seed[(i * 5) % len(seed)] if i % 2 else seed[i % len(seed)]
            if i % 3 == 0:  # every third round: delete (again: idempotent)
                if check(api.post("/delete_message", {"message_id": message}, token=user.token), (200,),
                         ("delete", tag, i)):
                    with lock:
                        deleted.add(message)

    def sender(user, tag) -> None:
        barrier.wait(timeout=DEADLINE_SECONDS)
        for i in range(ROUNDS):
            r = api.send(user, alice, f"{tag} {i}") if tag == "bob" else api.send_group(user, group, f"{tag} {i}")
            if check(r, (201,), ("send", tag, i)):
                with lock:
                    sent[r.body["message_id"]] = "direct" if tag == "bob" else "group"

    def reader(user) -> None:
        barrier.wait(timeout=DEADLINE_SECONDS)
        for i in range(ROUNDS):
            received = [e for e in stream(api, user) if e["type"] == "message" and e["sender_id"] != user.id]
            if received:
                last = received[-1]
                params = ({"group_id": last["group_id"]} if last["group_id"]
                          else {"with_user_id": last["sender_id"]})
                check(api.post("/mark_read", {"message_id": last["message_id"], **params}, token=user.token),
                      (200,), ("mark_read", user.name, i))

    barrier: threading.Barrier  # set below, before any thread starts
    jobs = [lambda: editor(alice, alice_seed, "alice"), lambda: deleter(alice, alice_seed, "alice"),
            lambda: editor(carol, carol_seed, "carol"), lambda: deleter(carol, carol_seed, "carol"),
            lambda: sender(bob, "bob"), lambda: sender(dave, "dave")]
    readers = [threading.Thread(target=reader, args=(u,)) for u in (alice, bob)]
    barrier = threading.Barrier(len(jobs) + len(readers))
    for t in readers:
        t.start()
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for f in [pool.submit(job) for job in jobs]:
            f.result(timeout=DEADLINE_SECONDS)
    for t in readers:
        t.join(timeout=DEADLINE_SECONDS)
        assert not t.is_alive()

    assert failures == []
    assert deleted and sum(edits_done.values()) > 0  # the run did both
    streams = {u.id: stream(api, u) for u in (alice, bob, carol, dave)}
    names = {u.id: u.name for u in (alice, bob, carol, dave)}
    current = database_state(mysql_url, list(sent))
    for user_id, events in streams.items():
        who = names[user_id]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), f"{who}: not gapless"
        messages = Counter(e["message_id"] for e in events if e["type"] == "message")
        expected = {m for m, kind in sent.items() if user_id in holders[kind]}
        assert set(messages) == expected, f"{who}: sends missing or foreign"
        assert all(n == 1 for n in messages.values()), f"{who}: a send twice"
        by_message: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
        for e in events:
            if e["type"] in ("message", "edit", "delete"):
                by_message[e["message_id"]].append(e)
        for message_id, mine in by_message.items():
            kinds = [e["type"] for e in mine]
            assert kinds[0] == "message", (who, kinds)
            assert kinds.count("edit") == edits_done[message_id], (who, message_id, kinds)
            assert kinds.count("delete") == (1 if message_id in deleted else 0), (who, message_id, kinds)
            assert "delete" not in kinds[:-1], f"{who}: an event after the deletion: {kinds}"
            # Replaying the events gives the database's state.
            text, is_deleted = None, False
            for e in mine:
                if e["type"] in ("message", "edit"):
                    text = e["text"]
                if e["type"] == "delete" or (e["type"] == "message" and e["deleted"]):
                    text, is_deleted = None, True
            assert (text, is_deleted) == current[message_id], (who, message_id, mine)
        reads = [e for e in events if e["type"] == "read"]
        read_seqs = {}
        for e in reads:  # a marker never moves back: each read names a newer message of its conversation
            seq = next(x["seq"] for x in events if x["type"] == "message" and x["message_id"] == e["message_id"])
            key = e["group_id"] or e["with_user_id"]
            assert seq > read_seqs.get(key, 0), (who, e)
            read_seqs[key] = seq

    def shared_order(a: str, b: str) -> Tuple[List[Tuple[str, str, int]], List[Tuple[str, str, int]]]:
        """The events a's and b's streams share (a message's events, each
        numbered by its occurrence), in each stream's order."""
        def keyed(events):
            seen: Counter = Counter()
            out = []
            for e in events:
                if e["type"] in ("message", "edit", "delete"):
                    seen[(e["message_id"], e["type"])] += 1
                    out.append((e["message_id"], e["type"], seen[(e["message_id"], e["type"])]))
            return out
        ka, kb = keyed(streams[a]), keyed(streams[b])
        common = set(ka) & set(kb)
        return [k for k in ka if k in common], [k for k in kb if k in common]

    ids = list(streams)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            in_a, in_b = shared_order(a, b)
            assert in_a == in_b, f"{names[a]} and {names[b]} saw shared events in different orders"
