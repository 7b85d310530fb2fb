"""How latency scales: reads through the database as the tables grow, and
group sends as the group grows."""
from __future__ import annotations

import random
import time
from typing import Any, Dict, List, Sequence

from bulkload import READER_INBOX, READERS, Loader
from endpoints import poll_once, register
from harness import (
    AUTH_SECRET,
    MYSQL_URL,
    Bench,
    Case,
    admin_connection,
    create_database,
    drop_database,
)

MID = READER_INBOX // 2


# --------------------------------------------------------------------------- reads vs rows


def read_latency_vs_rows(bench: Bench, admin: Any, sizes: Sequence[int], *, rounds: int, calls: int,
                         warmup: int) -> Dict[str, Any]:
    """Cursor and min_timestamp reads on the database path (no Redis) at
    each size, with the EXPLAIN of every query they run. Each size is loaded
    into a fresh database: InnoDB loads an empty table in bulk, which makes
    the 1M load several times faster than adding to a filled one."""
    from chalicelib.auth import TokenSigner

    out: Dict[str, Any] = {"data": f"direct messages only (messages rows = inbox rows); {READERS} readers with"
                                   f" {READER_INBOX} messages each at every size", "sizes": {}}
    signer = TokenSigner([AUTH_SECRET])
    for size in sizes:
        name = create_database(admin, "rows")
        conn = admin_connection(name, local_infile=True)
        conn.autocommit(False)
        try:
            print(f"loading {size:,} messages ...", flush=True)
            loader = Loader(conn)
            load = loader.load(size)
            print(f"  loaded {size:,} messages, {size:,} inbox rows, {len(loader.users):,} users in "
                  f"{load['total_s']:.1f} s (generate {load['generate_s']:.1f}, messages {load['messages_s']:.1f}, "
                  f"inbox {load['inbox_s']:.1f}, users+counters {load['users_s'] + load['inbox_counters_s']:.1f}, "
                  f"analyze {load['analyze_s']:.1f})", flush=True)
            out["users"] = len(loader.users)
            bench.configure(DATABASE_URL=f"{MYSQL_URL}/{name}", REDIS_URL=None)
            tokens = {u: signer.issue(u, u) for u in loader.users}  # bulkload's sessions: one per user, its own id
            cases, expected = _read_cases(bench, loader, tokens)
            for case in cases:  # each read returns what it should, before timing it
                got = len(case.request(0)["json"]["messages"])
                assert got == expected[case.name], (case.name, got, expected[case.name])
            explain = explain_reads(bench, conn, cases)
            results = bench.run(cases, rounds=rounds, calls=calls, warmup=warmup, label=f"{size:,} rows ")
            out["sizes"][str(size)] = {"load": load, "results": results, "explain": explain,
                                       "tables": _table_sizes(conn, name)}
            if size == max(sizes):
                out["purge"] = purge_rate(bench, size)
        finally:
            from chalicelib import wiring

            wiring.reset()  # close the app's connection to the database about to go
            conn.close()
            drop_database(admin, name)
    return out


PURGE_SECONDS = 30.0


def purge_rate(bench: Bench, size: int) -> Dict[str, Any]:
    """The retention purge on the loaded tables (every message is older than
    the horizon), for PURGE_SECONDS of its time budget: rows purged a second."""
    from chalicelib import timebudget, wiring
    from chalicelib.usecases.retention import BATCH
    from tests.support.lambda_events import LambdaContext

    bench.use_env({"RETENTION_DAYS": "30"})
    retention = wiring.service().retention  # rebuilt for the new setting: set-up, neither timed nor budgeted
    timebudget.begin(LambdaContext(remaining_ms=(PURGE_SECONDS + timebudget.MARGIN_SECONDS) * 1000))
    started = time.perf_counter()
    try:
        purged = retention.purge()
    finally:
        timebudget.end()
    seconds = time.perf_counter() - started
    result = {"table_rows": size, "inbox_rows": purged.inbox_rows, "messages": purged.messages,
              "batches": purged.batches, "batch_rows": BATCH, "budget_seconds": PURGE_SECONDS,
              "seconds": round(seconds, 1), "finished": purged.finished,
              "inbox_rows_per_second": round(purged.inbox_rows / seconds)}
    print(f"  purge at {size:,} rows: {purged.inbox_rows:,} inbox rows and {purged.messages:,} messages in "
          f"{seconds:.1f} s ({result['inbox_rows_per_second']:,} rows/s, {purged.batches} batches of {BATCH})",
          flush=True)
    return result


def _read_cases(bench: Bench, loader: Loader, tokens: Dict[str, str]):
    readers = loader.readers
    rng = random.Random(7)
    active = [u for u in loader.others if loader.last_seq[u] >= 1]

    def read(user: str, **params: Any) -> Dict[str, Any]:
        return bench.call("/read_messages", {"user_id": user, **params}, tokens[user])

    def since(user: str) -> str:
        return loader.sent_at[(user, MID)]

    def random_poll(i: int) -> Dict[str, Any]:
        user = rng.choice(active)
        return read(user, after=loader.last_seq[user] - 1)

    # Calls rotate over the readers, whose inboxes are the same at every size.
    cases = [
        Case(f"cursor page (after={MID}, limit=100)", lambda i: read(readers[i % READERS], after=MID, limit=100)),
        Case("cursor poll, 1 new", lambda i: read(readers[i % READERS], after=READER_INBOX - 1)),
        Case("cursor poll, nothing new", lambda i: read(readers[i % READERS], after=READER_INBOX)),
        Case("min_timestamp page (limit=100)",
             lambda i: read(readers[i % READERS], min_timestamp=since(readers[i % READERS]), limit=100)),
        Case("cursor poll, 1 new, random user", random_poll),
    ]
    expected = {cases[0].name: 100, cases[1].name: 1, cases[2].name: 0, cases[3].name: 100, cases[4].name: 1}
    return cases, expected


def explain_reads(bench: Bench, conn: Any, cases: List[Case]) -> List[Dict[str, Any]]:
    """EXPLAIN each SELECT a read sends, as the app sent it, with its real
    parameters. Every row must use an index: type ALL is a full table scan."""
    explained = []
    for case in cases[:4]:  # the random-user poll runs the same queries as the 1-new poll
        with bench.counters.recording() as sent:
            case.request(0)
        for sql, params in sent:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue  # COMMIT
            with conn.cursor() as cur:
                cur.execute("EXPLAIN " + sql, params)
                columns = [d[0] for d in cur.description]
                rows = [dict(zip(columns, row)) for row in cur.fetchall()]
            explained.append({"read": case.name, "sql": sql, "plan": rows,
                              "full_scan": any(r["type"] == "ALL" for r in rows)})
    conn.commit()
    for e in explained:
        print(f"  EXPLAIN [{e['read']}] {_short(e['sql'])}")
        for r in e["plan"]:
            print(f"    {r['table']:4s} type={r['type']:7s} key={r['key']!s:22s} rows={r['rows']!s:6s} "
                  f"{r['Extra'] or ''}")
    scans = [e for e in explained if e["full_scan"]]
    if scans:
        print(f"  FAIL: {len(scans)} of {len(explained)} queries have an EXPLAIN row of type ALL (full scan)")
    else:
        print(f"  OK: no EXPLAIN row has type ALL ({len(explained)} queries)")
    return explained


def _short(sql: str) -> str:
    """The query without its long select list."""
    start = sql.find(" FROM ")
    return "SELECT ..." + sql[start:] if sql.startswith("SELECT ") and start > 40 else sql


def _table_sizes(conn: Any, database: str) -> Dict[str, Dict[str, float]]:
    with conn.cursor() as cur:
        cur.execute("SELECT table_name, table_rows, data_length, index_length FROM information_schema.tables"
                    " WHERE table_schema = %s AND table_name IN ('messages', 'inbox')", (database,))
        sizes = {t: {"rows_estimate": int(r), "data_mb": round(d / 1e6, 1), "index_mb": round(i / 1e6, 1)}
                 for t, r, d, i in cur.fetchall()}
    conn.commit()
    return sizes


# --------------------------------------------------------------------------- send_group vs group size


def add_members(bench: Bench, group_id: str, user_ids: Sequence[str]) -> None:
    """Members written straight into the tables. Joined through the API,
    each join tells every member so far: 10,000 joins would write 50 million
    events of set-up."""
    from chalicelib.dialects import parse_mysql_url

    database = parse_mysql_url(bench.base_env["DATABASE_URL"] or "").database
    with bench.counters.admin.cursor() as cur:
        cur.executemany(f"INSERT INTO `{database}`.group_members (group_id, user_id, joined_at) VALUES (%s, %s, NOW(6))",
                        [(group_id, u) for u in user_ids])
        cur.execute(f"UPDATE `{database}`.chat_groups SET member_count = %s WHERE id = %s", (len(user_ids), group_id))


def send_group_vs_group_size(bench: Bench, sizes: Sequence[int], *, rounds: int, calls: int, warmup: int,
                             calls_by_size: Dict[int, int]) -> Dict[str, Any]:
    """One group per size, all drawn from one pool of users who have each
    polled once, so every recipient has a cache window to write through to.
    The sender is a member: recipients = size - 1."""
    bench.configure(MAX_GROUP_MEMBERS="10000")  # the biggest group allowed
    started = time.perf_counter()
    users = [register(bench, f"fan{n}") for n in range(max(sizes))]
    for user in users:
        poll_once(bench, user)
    sender = users[0]
    groups = {}
    for size in sizes:
        group = bench.call("/create_group", {"group_name": f"size {size}"}, sender["token"])["json"]["group_id"]
        add_members(bench, group, [u["user_id"] for u in users[:size]])
        groups[size] = group
    print(f"  set up {len(users)} users and {len(sizes)} groups in {time.perf_counter() - started:.1f} s", flush=True)

    def sender_of(size: int):
        def send(i: int) -> Dict[str, Any]:
            return bench.call("/send_group", {"sending_user_id": sender["user_id"], "group_id": groups[size],
                                              "message_text": f"fan-out {i}"}, sender["token"])
        return send

    cases = [Case(f"send_group, {size} members", sender_of(size), expect=201, calls=calls_by_size.get(size))
             for size in sizes]
    for size, case in zip(sizes, cases):
        assert case.request(0)["json"]["recipients"] == size - 1
    results = bench.run(cases, rounds=rounds, calls=calls, warmup=warmup, label="send_group ")
    out: Dict[str, Any] = {"sizes": {str(size): {**results[case.name], "recipients": size - 1}
                                     for size, case in zip(sizes, cases)}}
    # An edit or a deletion reaches every stream that holds the message: at
    # 1,024 members it should cost about what the send did.
    if 1024 in groups:
        latest: Dict[str, str] = {}

        def sent(i: int) -> None:
            latest["id"] = sender_of(1024)(i)["json"]["message_id"]

        changes = [
            Case("edit_message, 1024 members", lambda i: bench.call("/edit_message", {
                "message_id": latest["id"], "message_text": f"edited {i}"}, sender["token"]), before=sent,
                calls=calls_by_size.get(1024)),
            Case("delete_message, 1024 members", lambda i: bench.call("/delete_message", {
                "message_id": latest["id"]}, sender["token"]), before=sent, calls=calls_by_size.get(1024)),
        ]
        out["changes_at_1024"] = bench.run(changes, rounds=rounds, calls=calls, warmup=warmup, label="changes ")
    return out
