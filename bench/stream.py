"""The stream's bootstrapping reads at size: one user with 200 conversations
and 100,000 events in the stream, the conversation list and one
conversation's history, both through the database (they have no cache).

The 100,000 messages are written straight into the tables (through the API
they would take minutes), as the app writes them for that user: direct
messages to and from 200 peers, in round-robin, one inbox row each in the
user's stream with its conversation (peer_id), seqs 1..100,000 without gaps.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any, Dict, List

from endpoints import register
from harness import Bench, Case, admin_connection

PEERS = 200
EVENTS = 100_000
BATCH = 5_000
BASE_TIME = datetime(2026, 1, 1)


def load(database: str, user: str, peers: List[str]) -> float:
    started = time.perf_counter()
    conn = admin_connection(database)
    conn.autocommit(False)
    try:
        with conn.cursor() as cur:
            for start in range(0, EVENTS, BATCH):
                messages, inbox = [], []
                for n in range(start, min(EVENTS, start + BATCH)):
                    peer = peers[n % PEERS]
                    mine = n % 3 == 0  # a third sent by the user
                    sender, recipient = (user, peer) if mine else (peer, user)
                    message_id, sent_at = str(uuid.uuid4()), BASE_TIME + timedelta(seconds=n)
                    messages.append((message_id, sender, recipient, f"bulk {n}", sent_at))
                    inbox.append((user, n + 1, message_id, sent_at, peer, int(mine)))
                cur.executemany("INSERT INTO messages (id, sender_id, recipient_id, body, sent_at)"
                                " VALUES (%s, %s, %s, %s, %s)", messages)
                cur.executemany("INSERT INTO inbox (user_id, seq, message_id, sent_at, peer_id, silent)"
                                " VALUES (%s, %s, %s, %s, %s, %s)", inbox)
            cur.execute("UPDATE inbox_counters SET last_seq = %s WHERE user_id = %s", (EVENTS, user))
            conn.commit()
            cur.execute("ANALYZE TABLE inbox, messages")
            cur.fetchall()
    finally:
        conn.close()
    return time.perf_counter() - started


def run(bench: Bench, database: str, *, rounds: int, calls: int, warmup: int) -> Dict[str, Any]:
    reader = register(bench, "has 200 conversations")
    peers = [register(bench, f"peer {n}") for n in range(PEERS)]
    seconds = load(database, reader["user_id"], [p["user_id"] for p in peers])
    print(f"  loaded {EVENTS:,} events in {PEERS} conversations in {seconds:.1f} s", flush=True)
    first = bench.call("/conversations", {}, reader["token"])["json"]
    assert len(first["conversations"]) == 50 and first["next_before"], first
    peer = first["conversations"][0]["id"]
    middle = EVENTS // 2

    cases = [
        Case("conversations (first 50 of 200, 100k events)", lambda i: bench.call("/conversations", {}, reader["token"])),
        Case("conversations (second page)", lambda i: bench.call("/conversations", {"before": first["next_before"]},
                                                                 reader["token"])),
        Case("history (newest 50 of 500)", lambda i: bench.call("/history", {"with_user_id": peer}, reader["token"])),
        Case("history (50 from the middle)", lambda i: bench.call("/history", {
            "with_user_id": peer, "before_seq": middle}, reader["token"])),
        Case("sync (100 from the middle, no cache)", lambda i: bench.call("/sync", {"after": middle},
                                                                          reader["token"]),
             env={"REDIS_URL": None}),
    ]
    results = bench.run(cases, rounds=rounds, calls=calls, warmup=warmup, label="stream ")
    return {"data": f"one user, {PEERS} conversations, {EVENTS:,} events", "load_s": seconds, "results": results}
