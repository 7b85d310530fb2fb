"""A load run: N worker processes, each standing for one Lambda container,
call the Lambda entry point in a loop for a fixed time with a mix of direct
sends, group sends and polls, against one fresh MariaDB database and a
private redis-server; then every inbox is read back through the API and
checked against what the workers were acknowledged. Two variants inject
faults while the load runs: Redis SIGKILLed and restarted, and every
database connection of the load database killed (twice).

Each worker imports the app itself after setting its own environment, so it
has its own settings, connections and Redis back-off, as a container does.
They share this machine's cores with MariaDB and Redis (and each other), so
the throughput is what this one box does, not what Lambda would scale to.
"""
from __future__ import annotations

import bisect

import json
import multiprocessing
import os
import random
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from harness import AUTH_SECRET, MYSQL_URL, ROOT, Bench, admin_connection, create_database, drop_database, percentile

USERS = 600
# (members, how many groups of that size, share of the group sends): small
# groups are common, a 500-member one rare, as in a chat service; the big
# one dominates the deliveries all the same.
GROUPS = ((5, 3, 0.6), (50, 2, 0.3), (500, 1, 0.1))
MIX = (("poll", 0.6), ("send", 0.3), ("send_group", 0.1))
RETRY_AFTER_CAP_SECONDS = 2.0  # a bench, not a client: never sleep longer than this
MAX_ATTEMPTS = 20  # per operation; more means the service did not come back
LAMBDA_TIMEOUT_MS = 25_000  # the API handler's timeout when deployed
PAGE = 1000  # the largest page, for reading the inboxes back
CACHE_SIZE = 100  # the app's default window (CACHE_SIZE unset)
FILLER = "the quick brown fox jumps over the lazy dog"
# The worker log line (as _scan_logs counts it) that shows a worker met the fault.
FAULT_SEEN = {"redis": "cache unavailable", "db": "database connection lost; reconnecting"}


# --------------------------------------------------------------------------- the worker (one container)


def _worker(index: int, env: Dict[str, str], plan: Dict[str, Any], log_path: str, ready: Any, go: Any,
            start_at: Any, results: Any) -> None:
    """One container: its own environment first, then the app, then the loop."""
    import logging
    import sys

    os.environ.update(env)
    # As in Lambda, the app's request lines are written, to a file here.
    logging.basicConfig(filename=log_path, filemode="w", format="%(levelname)s %(name)s %(message)s")
    sys.path.insert(0, str(ROOT))
    from app import app
    from chalicelib.metering import meter
    from tests.support.lambda_events import LambdaContext, api_gateway_event

    m = meter()
    users: List[Tuple[str, str]] = plan["users"]
    token = dict(users)
    groups: List[Dict[str, Any]] = plan["groups"]
    by_size: Dict[int, List[Dict[str, Any]]] = defaultdict(list)
    for g in groups:
        by_size[g["size"]].append(g)
    size_weights = [(size, share) for size, _, share in GROUPS]
    # Each user's cursor lives in one worker (one device per user).
    mine = [u for n, (u, _) in enumerate(users) if n % plan["workers"] == index]
    cursor = {u: 0 for u in mine}
    rng = random.Random(plan["seed"] * 1000 + index)

    latencies: Dict[str, List[float]] = defaultdict(list)
    statements: Counter = Counter()
    round_trips: Counter = Counter()
    statuses: Dict[str, Counter] = defaultdict(Counter)
    x_cache: Counter = Counter()
    acked: List[Dict[str, Any]] = []
    failed: List[Dict[str, Any]] = []  # operations that ended without an acknowledgement
    poll_gaps: List[Dict[str, Any]] = []
    seen: List[Tuple[str, int, str]] = []  # (user, seq, message_id) each poll returned
    complete: List[Tuple[str, float, int]] = []  # (user, wall clock at start, next_after) of pages without has_more
    counts: Counter = Counter()
    per_second: Counter = Counter()  # requests answered in each second of the run: what a fault did, when
    worst_operation_ms = 0.0

    def call(op: str, path: str, params: Dict[str, Any], user: str) -> Tuple[int, Any, Dict[str, str], float]:
        """One operation: retried after Retry-After on 503 and 429 (sends keep
        their idempotency key); every attempt's latency is recorded. Also
        answers when the last 503 came back (0 if none): a send whose retry
        answers duplicate had committed by then."""
        nonlocal worst_operation_ms
        began = time.perf_counter()
        unknown_at = 0.0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            s0, r0 = m.db_statements, m.redis_round_trips
            t0 = time.perf_counter()
            response = app(api_gateway_event(path, params, token[user]), LambdaContext(LAMBDA_TIMEOUT_MS))
            latencies[op].append((time.perf_counter() - t0) * 1000)
            statements[op] += m.db_statements - s0
            round_trips[op] += m.redis_round_trips - r0
            status = response["statusCode"]
            statuses[op][status] += 1
            counts["requests"] += 1
            per_second[int(time.monotonic() - start_at.value)] += 1
            headers = response.get("headers") or {}
            if status in (429, 503) and attempt < MAX_ATTEMPTS:
                counts[f"retried_{status}"] += 1
                if status == 503:
                    unknown_at = time.time()
                time.sleep(min(float(headers.get("Retry-After") or 1), RETRY_AFTER_CAP_SECONDS))
                continue
            worst_operation_ms = max(worst_operation_ms, (time.perf_counter() - began) * 1000)
            body = json.loads(response["body"]) if response.get("body") else None
            return status, body, headers, unknown_at
        raise AssertionError("unreachable")

    def send() -> None:
        sender, _ = rng.choice(users)
        recipient = sender
        while recipient == sender:
            recipient, _ = rng.choice(users)
        key = f"w{index}-{counts['keys']}"
        counts["keys"] += 1
        text = f"{key} direct {FILLER}"
        status, body, _, unknown_at = call("send", "/send", {
            "sending_user_id": sender, "receiving_user_id": recipient, "message_text": text,
            "client_message_id": key}, sender)
        if status in (200, 201):
            acked.append({"key": key, "message_id": body["message_id"], "kind": "direct", "to": recipient,
                          "committed_by": unknown_at if body["duplicate"] else time.time(),
                          "sender": sender, "text": text, "duplicate": body["duplicate"]})
        else:
            failed.append({"key": key, "op": "send", "status": status, "body": body})

    def send_group() -> None:
        size = rng.choices([s for s, _ in size_weights], [w for _, w in size_weights])[0]
        group = rng.choice(by_size[size])
        sender = rng.choice(group["members"])
        key = f"w{index}-{counts['keys']}"
        counts["keys"] += 1
        text = f"{key} group {FILLER}"
        status, body, _, unknown_at = call("send_group", "/send_group", {
            "sending_user_id": sender, "group_id": group["group_id"], "message_text": text,
            "client_message_id": key}, sender)
        if status in (200, 201):
            acked.append({"key": key, "message_id": body["message_id"], "kind": "group", "to": group["group_id"],
                          "committed_by": unknown_at if body["duplicate"] else time.time(),
                          "sender": sender, "text": text, "duplicate": body["duplicate"],
                          "recipients": body["recipients"]})
        else:
            failed.append({"key": key, "op": "send_group", "status": status, "body": body})

    def poll() -> None:
        user = rng.choice(mine)
        after = cursor[user]
        began = time.time()  # one clock for all processes: compared with other workers' acknowledgements
        # A device polls its whole stream (/sync), as the clients do: a page continues the cursor, gapless.
        status, body, headers, _ = call("poll", "/sync", {"user_id": user, "after": after}, user)
        if status != 200:
            failed.append({"op": "poll", "status": status, "body": body})
            return
        x_cache[headers.get("X-Cache")] += 1
        seqs = [item["seq"] for item in body["events"]]
        if seqs != list(range(after + 1, after + 1 + len(seqs))):
            poll_gaps.append({"user": user, "after": after, "seqs": seqs[:10], "x_cache": headers.get("X-Cache")})
        seen.extend((user, item["seq"], item.get("message_id")) for item in body["events"])
        cursor[user] = body["next_after"]
        if not body["has_more"]:
            complete.append((user, began, body["next_after"]))

    ops = {"poll": poll, "send": send, "send_group": send_group}
    names, weights = [n for n, _ in MIX], [w for _, w in MIX]
    # Warm up (untimed): the first connections, redis-py's import, the scripts' SHAs.
    for _ in range(3):
        app(api_gateway_event("/health", {}, None, "GET"), LambdaContext(LAMBDA_TIMEOUT_MS))
    ready.put(index)
    go.wait()
    while time.monotonic() < start_at.value:
        time.sleep(0.001)
    deadline = start_at.value + plan["seconds"]
    while time.monotonic() < deadline:
        ops[rng.choices(names, weights)[0]]()  # an operation begun before the deadline ends with its retries
    results.put({
        "index": index,
        "elapsed_s": time.monotonic() - start_at.value,
        "latencies": dict(latencies),
        "statements": dict(statements),
        "round_trips": dict(round_trips),
        "statuses": {op: dict(c) for op, c in statuses.items()},
        "x_cache": dict(x_cache),
        "acked": acked,
        "failed": failed,
        "poll_gaps": poll_gaps,
        "seen": seen,
        "complete": complete,
        "cursors": cursor,
        "counts": dict(counts),
        "per_second": dict(per_second),
        "worst_operation_ms": worst_operation_ms,
    })


# --------------------------------------------------------------------------- set-up, through the API


def _set_up(bench: Bench, seed: int) -> Dict[str, Any]:
    rng = random.Random(seed)
    started = time.perf_counter()
    users = []
    for n in range(USERS):
        r = bench.call("/register", {"user_name": f"load{n}"})
        assert r["statusCode"] == 201, r
        users.append((r["json"]["user_id"], r["json"]["token"]))
    token = dict(users)
    groups = []
    for size, how_many, _ in GROUPS:
        for k in range(how_many):
            r = bench.call("/create_group", {"group_name": f"{size} members #{k}"}, users[0][1])
            assert r["statusCode"] == 201, r
            group_id = r["json"]["group_id"]
            members = [u for u, _ in rng.sample(users, size)]
            for u in members:
                r = bench.call("/update_group", {"user_id": u, "group_id": group_id, "to_be_added": 1}, token[u])
                assert r["statusCode"] == 200, r
            groups.append({"group_id": group_id, "size": size, "members": members})
    # Active users have polled: their cache windows exist, so sends write through.
    for u, t in users:
        assert bench.call("/read_messages", {"user_id": u, "after": 0}, t)["statusCode"] == 200
    return {"users": users, "groups": groups, "set_up_s": round(time.perf_counter() - started, 1)}


# --------------------------------------------------------------------------- faults, from a thread of the parent


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def _restart_redis(server: Any, t0: float, at: float, down_s: float, events: List[str]) -> None:
    _sleep_until(t0 + at)
    server.stop()  # SIGKILL: no shutdown, nothing saved (it saves nothing anyway)
    events.append(f"Redis SIGKILLed at {time.monotonic() - t0:.1f} s")
    time.sleep(down_s)
    server.start()  # the same port, empty: every window and loaded script is gone
    events.append(f"Redis started again at {time.monotonic() - t0:.1f} s")


def _kill_connections(database: str, t0: float, moments: Sequence[float], events: List[str]) -> None:
    import pymysql

    admin = admin_connection()  # this thread's own; the test user may kill its own connections
    try:
        for at in moments:
            _sleep_until(t0 + at)
            with admin.cursor() as cur:
                cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (database,))
                ids = [row[0] for row in cur.fetchall()]
                killed = 0
                for thread_id in ids:
                    try:
                        cur.execute(f"KILL CONNECTION {int(thread_id)}")
                        killed += 1
                    except pymysql.err.OperationalError:  # 1094: it ended meanwhile
                        pass
            events.append(f"killed {killed} connections at {time.monotonic() - t0:.1f} s")
    finally:
        admin.close()


# --------------------------------------------------------------------------- verification, through the API


def _read_all(bench: Bench, user: str, token: str, path: str = "/read_messages",
              key: str = "messages") -> List[Dict[str, Any]]:
    """Everything after cursor 0: the messages the user received (/read_messages), or its whole stream (/sync)."""
    items: List[Dict[str, Any]] = []
    after = 0
    while True:
        r = bench.call(path, {"user_id": user, "after": after, "limit": PAGE}, token)
        assert r["statusCode"] == 200, r
        items += r["json"][key]
        after = r["json"]["next_after"]
        if not r["json"]["has_more"]:
            return items


def _after(items: List[Dict[str, Any]], cursor: int) -> List[Dict[str, Any]]:
    """The items (in seq order) past a cursor."""
    return items[bisect.bisect_right([i["seq"] for i in items], cursor):]


def _verify(bench: Bench, admin: Any, database: str, env: Dict[str, str], plan: Dict[str, Any],
            outs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Every inbox read back with the cursor on the database path (the
    system of record), checked against the acknowledgements; then the
    cache's answer for each user's newest page compared with it."""
    violations: List[str] = []
    members = {g["group_id"]: set(g["members"]) for g in plan["groups"]}
    acked = [a for o in outs for a in o["acked"]]
    failed = {f["key"]: f for o in outs for f in o["failed"] if "key" in f}
    by_id: Dict[str, Dict[str, Any]] = {}
    for a in acked:
        if a["message_id"] in by_id:
            violations.append(f"message {a['message_id']} acknowledged for two keys: {by_id[a['message_id']]['key']}"
                              f" and {a['key']}")
        by_id[a["message_id"]] = a

    # Each user's stream holds every event (its own sends, the joins of its
    # groups' members too) under gapless seqs; /read_messages shows the
    # messages it received among them, in the same seqs.
    bench.configure(**{**env, "REDIS_URL": None})
    inbox = {u: _read_all(bench, u, t) for u, t in plan["users"]}
    streams = {u: _read_all(bench, u, t, "/sync", "events") for u, t in plan["users"]}
    for u, events in streams.items():
        seqs = [e["seq"] for e in events]
        if seqs != list(range(1, len(seqs) + 1)):
            missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
            violations.append(f"user {u}: stream seqs are not 1..n: {len(seqs)} events, missing {missing[:10]}")
        received = [(e["seq"], e["message_id"]) for e in events if e["type"] == "message" and e["sender_id"] != u]
        if received != [(i["seq"], i["message_id"]) for i in inbox[u]]:
            violations.append(f"user {u}: /read_messages does not show the messages its stream received")
    with admin.cursor() as cur:
        cur.execute(f"SELECT user_id, last_seq FROM `{database}`.inbox_counters")
        last_seq = {u: int(s) for u, s in cur.fetchall()}
        cur.execute(f"SELECT COUNT(*) FROM `{database}`.inbox")
        inbox_rows = int(cur.fetchone()[0])
        cur.execute(f"SELECT COUNT(*) FROM `{database}`.messages")
        message_rows = int(cur.fetchone()[0])
    for u, events in streams.items():
        if last_seq.get(u) != len(events):
            violations.append(f"user {u}: counter says {last_seq.get(u)}, the stream read back has {len(events)}")

    landed: Dict[str, Counter] = defaultdict(Counter)
    for u, items in inbox.items():
        for item in items:
            landed[item["message_id"]][u] += 1
            a = by_id.get(item["message_id"])
            if a is not None and (item["text"], item["sender_id"], item["kind"]) != (a["text"], a["sender"], a["kind"]):
                violations.append(f"message {a['key']} in {u}'s inbox differs from what was sent")
    deliveries = 0
    for a in acked:
        expected = {a["to"]} if a["kind"] == "direct" else members[a["to"]] - {a["sender"]}
        deliveries += len(expected)
        got = landed.get(a["message_id"], Counter())
        lost, extra = expected - set(got), set(got) - expected
        twice = [u for u, c in got.items() if c > 1]
        if lost:
            violations.append(f"LOST: acknowledged {a['kind']} message {a['key']} (duplicate {a['duplicate']}) is missing"
                              f" from {len(lost)} of {len(expected)} inboxes")
        if extra:
            violations.append(f"{a['kind']} message {a['key']} is in {len(extra)} inboxes it was not sent to")
        if twice:
            violations.append(f"DUPLICATE: {a['kind']} message {a['key']} is twice in {len(twice)} inboxes")
        if a["kind"] == "group" and a["recipients"] != len(expected):
            violations.append(f"group message {a['key']} answered recipients={a['recipients']}, the group has"
                              f" {len(expected)} members besides the sender")
    for message_id, where in landed.items():
        if message_id not in by_id:
            text = next(i["text"] for i in inbox[next(iter(where))] if i["message_id"] == message_id)
            key = text.split()[0]
            why = (f"its request failed with {failed[key]['status']}" if key in failed
                   else "no request that sent it was acknowledged or failed")
            violations.append(f"UNACKNOWLEDGED message {key} is in {sum(where.values())} inboxes: {why}")
    read_back = sum(len(items) for items in inbox.values())
    # Each message has its sender's own row beside its recipients'.
    if not inbox_rows - len(acked) == deliveries == read_back:
        violations.append(f"inbox rows {inbox_rows} (less {len(acked)} of senders), deliveries acknowledged"
                          f" {deliveries}, read back {read_back}")
    if message_rows != len(acked):
        violations.append(f"messages rows {message_rows}, acknowledged messages {len(acked)}")
    for o in outs:
        for gap in o["poll_gaps"]:
            violations.append(f"a poll's page did not continue the cursor: {gap}")
        wrong = [(u, s, mid) for u, s, mid in o["seen"] if s > len(streams[u]) or streams[u][s - 1].get("message_id") != mid]
        if wrong:
            violations.append(f"{len(wrong)} polled entries differ from the inbox at their seq, e.g. {wrong[:3]}")

    # A page that says it is complete (no has_more) holds every message
    # committed before the poll began: by the database's READ COMMITTED, and
    # the cache's promise to answer only what it provably holds in full. A
    # message is known committed when its send was answered, or, when a
    # retry answered duplicate, when the 503 before that retry came back.
    # Only a window that missed the message's cache write can fall short.
    short_polls: List[float] = []
    for o in outs:
        for u, began, next_after in o["complete"]:
            oldest = min((by_id[i["message_id"]]["committed_by"] for i in _after(inbox[u], next_after)
                          if i["message_id"] in by_id), default=float("inf"))
            if oldest < began:
                short_polls.append(began - oldest)

    # The cache's answer for each user's newest page and from its poller's
    # last cursor (what its next poll gets), against the database's.
    bench.configure(**env)
    cursors = {u: c for o in outs for u, c in o["cursors"].items()}
    answers: Counter = Counter()
    stale: List[Tuple[str, int]] = []
    stale_at_end: List[Tuple[str, int]] = []
    for u, t in plan["users"]:
        after = max(0, len(streams[u]) - CACHE_SIZE)  # the newest page: the window's seqs
        want = _after(inbox[u], after)
        r = bench.call("/read_messages", {"user_id": u, "after": after, "limit": CACHE_SIZE}, t)
        got, path = r["json"]["messages"], r["headers"].get("X-Cache")
        if got == want:
            answers[path] += 1
        elif path == "hit" and got == want[:len(got)]:
            stale.append((u, len(want) - len(got)))  # a window that missed the newest entries
        else:
            violations.append(f"user {u}: the {path} answer for seqs > {after} differs from the database's")
        after = cursors[u]
        while True:
            r = bench.call("/read_messages", {"user_id": u, "after": after}, t)
            page, path = r["json"], r["headers"].get("X-Cache")
            want = [i for i in _after(inbox[u], after) if i["seq"] <= page["next_after"]]
            if page["messages"] != want:
                violations.append(f"user {u}: the {path} answer for seqs > {after} differs from the database's")
                break
            after = page["next_after"]
            if not page["has_more"]:
                break
        if _after(inbox[u], after):
            stale_at_end.append((u, len(_after(inbox[u], after))))
    return {
        "ok": not violations,
        "violations": violations,
        "acknowledged": len(acked),
        "deliveries": deliveries,
        "inbox_rows": inbox_rows,
        "message_rows": message_rows,
        "newest_page_answers": dict(answers),
        # Documented: a message whose cache write failed or was skipped (the
        # back-off) is not seen from a window that still holds every older
        # one, until a later message reaches it or CACHE_TTL_SECONDS pass.
        "stale_windows": len(stale),
        "stale_window_entries_missing": sum(n for _, n in stale),
        "complete_polls": sum(len(o["complete"]) for o in outs),
        "short_polls": len(short_polls),  # complete pages that lacked an acknowledged message
        "short_poll_worst_lag_s": round(max(short_polls, default=0.0), 2),
        "next_poll_short": len(stale_at_end),  # users whose next poll after the run would still lack some
    }


# --------------------------------------------------------------------------- one run


def _collect(queue: Any, procs: List[Any], count: int, timeout_s: float, what: str) -> List[Any]:
    """`count` items from the workers' queue; fails at once if a worker died."""
    import queue as queues

    items: List[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(items) < count:
        try:
            items.append(queue.get(timeout=0.5))
        except queues.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"load workers: {what}: {len(items)} of {count} (exit codes {dead})") from None
    return items


def _scan_logs(paths: Sequence[Path]) -> Dict[str, Any]:
    """What the workers' logs say happened to their connections."""
    found: Counter = Counter()
    unhandled: List[str] = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("INFO chalicelib.requests"):
                continue
            if "database connection lost" in line:
                found["database connection lost; reconnecting"] += 1
            elif "cache unavailable" in line:
                found["cache unavailable"] += 1
            elif "cache available again" in line:
                found["cache available again"] += 1
            elif "unhandled error" in line:
                found["unhandled error"] += 1
                if len(unhandled) < 5:
                    unhandled.append(line)
            else:
                found["other: " + line[:120]] += 1
    return {"lines": dict(found), "unhandled": unhandled}


def _summarize(outs: List[Dict[str, Any]]) -> Dict[str, Any]:
    elapsed = max(o["elapsed_s"] for o in outs)
    ops: Dict[str, Any] = {}
    for op, _ in MIX:
        lat = sorted(x for o in outs for x in o["latencies"].get(op, []))
        if not lat:
            continue
        ops[op] = {"requests": len(lat), "p50_ms": round(statistics.median(lat), 3),
                   "p99_ms": round(percentile(lat, 0.99), 3), "max_ms": round(lat[-1], 1),
                   "db_statements_per_call": round(sum(o["statements"].get(op, 0) for o in outs) / len(lat), 2),
                   "redis_round_trips_per_call": round(sum(o["round_trips"].get(op, 0) for o in outs) / len(lat), 2)}
    statuses: Dict[str, Counter] = defaultdict(Counter)
    counts: Counter = Counter()
    x_cache: Counter = Counter()
    for o in outs:
        for op, c in o["statuses"].items():
            statuses[op].update({str(k): v for k, v in c.items()})
        counts.update(o["counts"])
        x_cache.update(o["x_cache"])
    acked = [a for o in outs for a in o["acked"]]
    deliveries = sum(1 if a["kind"] == "direct" else a["recipients"] for a in acked)
    requests = counts["requests"]
    per_second: Counter = Counter()
    for o in outs:
        per_second.update(o["per_second"])
    # 5xx that are not a 503 (which are retried): each is a failure.
    other_5xx = sum(n for c in statuses.values() for s, n in c.items() if s.startswith("5") and s != "503")
    return {
        "elapsed_s": round(elapsed, 2),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "messages_acknowledged": len(acked),
        "messages_per_s": round(len(acked) / elapsed, 1),
        "deliveries": deliveries,
        "deliveries_per_s": round(deliveries / elapsed, 1),
        "ops": ops,
        "statuses": {op: dict(c) for op, c in statuses.items()},
        "retried_503": counts["retried_503"],
        "retried_429": counts["retried_429"],
        "answered_duplicate_on_retry": sum(a["duplicate"] for a in acked),  # keys are unique: only retries replay
        "other_5xx": other_5xx,
        "failed_operations": sum(len(o["failed"]) for o in outs),
        "failed_examples": [f for o in outs for f in o["failed"]][:5],
        "worst_request_ms": round(max((r["max_ms"] for r in ops.values()), default=0.0), 1),
        "worst_operation_ms": round(max(o["worst_operation_ms"] for o in outs), 1),  # with its retries and waits
        "x_cache": dict(x_cache),
        "requests_per_second": [per_second.get(s, 0) for s in range(int(elapsed) + 1)],
    }


def _run_once(bench: Bench, admin: Any, *, label: str, workers: int, seconds: float, seed: int, fault: Optional[str],
              log_dir: Path, redis_down_s: float) -> Dict[str, Any]:
    from chalicelib import wiring
    from tests.support.servers import RedisServer

    # Other processes on this box (a test suite, say) take cores from the run: recorded, to read the figures by.
    load_average = round(os.getloadavg()[0], 2)
    database = create_database(admin, "load")
    events: List[str] = []
    procs: List[Any] = []
    with tempfile.TemporaryDirectory() as work:
        redis = RedisServer(Path(work)).start()
        # The prod stage's settings (token auth, Redis, the app's defaults for
        # the rest) but no rate limits: the bench's few users send far more
        # than a person would.
        env = {"DATABASE_URL": f"{MYSQL_URL}/{database}", "REDIS_URL": redis.url, "AUTH_SECRET": AUTH_SECRET,
               "AUTH_MODE": "token", "RATE_LIMIT_SENDS_PER_MINUTE": "0", "RATE_LIMIT_READS_PER_MINUTE": "0",
               "RATE_LIMIT_WRITES_PER_MINUTE": "0", "RATE_LIMIT_REGISTRATIONS_PER_HOUR": "0"}
        try:
            bench.configure(**env)
            plan = _set_up(bench, seed)
            wiring.reset()  # the parent's connections are not part of the load
            # Spawn, not fork: a fresh interpreter per container. It also re-runs
            # bench.py's imports (matplotlib among them), before the start: untimed.
            ctx = multiprocessing.get_context("spawn")
            ready, results, go, start_at = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
            worker_plan = {"users": plan["users"], "groups": plan["groups"], "workers": workers, "seconds": seconds,
                           "seed": seed}
            logs = [log_dir / f"load-{label}-worker{i}.log" for i in range(workers)]
            procs = [ctx.Process(target=_worker, args=(i, env, worker_plan, str(logs[i]), ready, go, start_at, results),
                                 daemon=True) for i in range(workers)]
            for p in procs:
                p.start()
            _collect(ready, procs, workers, 120, "ready")
            start_at.value = time.monotonic() + 0.2
            injector = None
            if fault == "redis":
                injector = threading.Thread(target=_restart_redis,
                                            args=(redis, start_at.value, seconds / 3, redis_down_s, events))
            elif fault == "db":
                injector = threading.Thread(target=_kill_connections,
                                            args=(database, start_at.value, (seconds / 3, 2 * seconds / 3), events))
            if injector:
                injector.start()
            go.set()
            outs = _collect(results, procs, workers, seconds + 300, "results")
            for p in procs:
                p.join(timeout=30)
            if injector:
                injector.join()
            summary = _summarize(outs)
            verification = _verify(bench, admin, database, env, plan, outs)
        finally:
            for p in procs:
                if p.is_alive():
                    p.kill()  # only ours, by handle
            wiring.reset()  # close the parent's connection to the database about to go
            redis.stop()
            drop_database(admin, database)
    result = {"workers": workers, "fault": fault, "events": events, "set_up_s": plan["set_up_s"],
              "load_average_before": load_average, **summary,
              "verification": verification, "logs": _scan_logs(logs)}
    # A fault run that no worker noticed proves nothing about the fault: it fails too.
    result["fault_met"] = fault is None or result["logs"]["lines"].get(FAULT_SEEN[fault], 0) > 0
    result["pass"] = (verification["ok"] and summary["other_5xx"] == 0 and summary["failed_operations"] == 0
                      and summary["retried_429"] == 0 and result["fault_met"])
    _print_run(label, result)
    return result


def _print_run(label: str, r: Dict[str, Any]) -> None:
    ops = "  ".join(f"{op} p50 {o['p50_ms']:.2f} p99 {o['p99_ms']:.1f} ms" for op, o in r["ops"].items())
    v = r["verification"]
    print(f"  {label:22s} {r['requests_per_s']:7.1f} req/s  {r['deliveries_per_s']:8.1f} deliveries/s  {ops}", flush=True)
    print(f"  {'':22s} {r['requests']} requests, {r['messages_acknowledged']} messages, {r['deliveries']} deliveries"
          f" in {r['elapsed_s']:.1f} s; 503s retried {r['retried_503']} (answered duplicate {r['answered_duplicate_on_retry']}),"
          f" 429s {r['retried_429']}, other 5xx {r['other_5xx']}, failed {r['failed_operations']};"
          f" worst request {r['worst_request_ms']:.0f} ms, worst operation {r['worst_operation_ms']:.0f} ms;"
          f" X-Cache {r['x_cache']}; load average before {r['load_average_before']}", flush=True)
    for event in r["events"]:
        print(f"  {'':22s} fault: {event}", flush=True)
    if r["events"]:
        print(f"  {'':22s} requests in each second: {r['requests_per_second']}", flush=True)
    if r["logs"]["lines"]:
        print(f"  {'':22s} worker logs: {r['logs']['lines']}", flush=True)
    print(f"  {'':22s} cache: {v['short_polls']} of {v['complete_polls']} complete poll pages lacked a message "
          f"committed before the poll began; after the run {v['stale_windows']} newest-page and "
          f"{v['next_poll_short']} next-poll reads fell short", flush=True)
    if v["short_polls"] or v["stale_windows"] or v["next_poll_short"]:
        # Not a lost message (the database has it), but a cache answer short of it.
        print(f"  {'':22s} !!! WARNING: cache windows missed committed messages, for up to "
              f"{v['short_poll_worst_lag_s']:.2f} s that polls saw (a window heals when a later message reaches "
              f"it, else after CACHE_TTL_SECONDS)", flush=True)
    if r["pass"]:
        print(f"  {'':22s} PASS: every acknowledged message is in exactly its inboxes, once; seqs gapless; "
              f"{v['deliveries']} deliveries = inbox rows less the senders' own", flush=True)
        return
    print(f"  {'':22s} !!!!!!!! FAIL: {len(v['violations'])} violations, {r['other_5xx']} other 5xx, "
          f"{r['failed_operations']} failed operations{'' if r['fault_met'] else ', no worker met the fault'}",
          flush=True)
    for line in v["violations"][:20] + [json.dumps(f) for f in r["failed_examples"]] + r["logs"]["unhandled"]:
        print(f"  {'':22s} !!! {line}", flush=True)


# --------------------------------------------------------------------------- the part


def run(bench: Bench, admin: Any, *, workers: Sequence[int], seconds: float, fault_workers: int,
        redis_down_s: float, log_dir: Path) -> Dict[str, Any]:
    cores = os.cpu_count()
    print(f"  this machine has {cores} cores: the workers, MariaDB and Redis all share them", flush=True)
    print(f"  {USERS} users; groups {', '.join(f'{n} x {s} members' for s, n, _ in GROUPS)}; mix "
          f"{', '.join(f'{w:.0%} {op}' for op, w in MIX)}; {seconds:g} s per run", flush=True)
    saved = {k: bench.base_env.get(k) for k in ("DATABASE_URL", "REDIS_URL", "AUTH_SECRET", "AUTH_MODE")}
    log_dir.mkdir(parents=True, exist_ok=True)
    out: Dict[str, Any] = {"cores": cores, "users": USERS, "groups": [list(g) for g in GROUPS], "mix": dict(MIX),
                           "seconds": seconds, "runs": {}, "faults": {}}
    try:
        for n in workers:
            out["runs"][str(n)] = _run_once(bench, admin, label=f"{n} worker{'s' * (n != 1)}", workers=n,
                                            seconds=seconds, seed=n, fault=None, log_dir=log_dir,
                                            redis_down_s=redis_down_s)
        out["faults"]["redis_restart"] = _run_once(
            bench, admin, label=f"{fault_workers} workers, Redis kill", workers=fault_workers, seconds=seconds,
            seed=101, fault="redis", log_dir=log_dir, redis_down_s=redis_down_s)
        out["faults"]["db_connections_killed"] = _run_once(
            bench, admin, label=f"{fault_workers} workers, DB kills", workers=fault_workers, seconds=seconds,
            seed=102, fault="db", log_dir=log_dir, redis_down_s=redis_down_s)
    finally:
        bench.configure(**saved)
    every = list(out["runs"].values()) + list(out["faults"].values())
    out["result"] = "pass" if all(r["pass"] for r in every) else "fail"
    print(f"  load: {out['result'].upper()} ({sum(r['pass'] for r in every)} of {len(every)} runs pass)", flush=True)
    return out
