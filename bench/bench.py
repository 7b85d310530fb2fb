"""`make bench`: the project's performance measurement (not a test).

Calls the Lambda entry point in-process, `app.app(event, context)`, with API
Gateway proxy events, against MariaDB and Redis on loopback, and measures:

  endpoints  p50/p99 of every endpoint and of the three ways a read is answered
  stream     /conversations and /history of a user with 200 conversations and 100k events
  attachments  /upload_url, sends with 1 and 3 attachments, /download_url against a
             moto S3 server (real HTTP, its own port), beside a plain send
  distance   endpoints, stream and attachments again, with MariaDB and Redis reached through a
             proxy that holds each direction's bytes for RTT/2 (--rtt-ms, default
             0.5: what a Lambda sees of Aurora and ElastiCache in its AZ); the RTT
             is checked with a PING and a SELECT 1 before anything is measured
  fanout     send_group latency as the group grows (2 .. 10,000 members)
  limits     Redis bytes per recipient of the largest message, the largest page, a held row lock
  delivery   from a send to a waiting long-poll and a WebSocket client, with and without Redis
  startup    cold start in a fresh interpreter, import profile, deployment zip size
  load       N worker processes (one per Lambda container) sending and polling for a
             fixed time, every inbox verified afterwards; also with Redis killed and with
             the database connections killed mid-run
  rows       reads through the database as it grows to 10k, 100k, 1M messages,
             with the EXPLAIN of each query they run

Each latency is measured in interleaved rounds (see harness.Bench.run) with
DB statements and Redis round trips per call. Writes bench/results/latest.json,
the plots in docs/perf/, and prints one markdown table of everything.
`--quick` runs a smaller version in about a minute, plus about one more for
the load part (about three in full).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Dict

import attachments
import delivery
import distance
import endpoints
import limits
import load
import plots
import report
import scaling
import startup
import stream
from harness import (
    AUTH_SECRET,
    MYSQL_URL,
    REDIS_URL,
    ROOT,
    Bench,
    Counters,
    admin_connection,
    create_database,
    drop_database,
)
from scripts.deploy.render.stage import RATE_LIMITS  # the project is on sys.path once harness is imported

MODES: Dict[str, Dict[str, Any]] = {
    "full": {"calls": 300, "rounds": 3, "warmup": 30, "rows": [10_000, 100_000, 1_000_000],
             "groups": [2, 10, 100, 1024, 10000], "repeats": 5,
             "load_workers": [1, 2, 4, 8], "load_seconds": 20, "redis_down_seconds": 3, "delivery_rounds": 200},
    "quick": {"calls": 100, "rounds": 3, "warmup": 10, "rows": [10_000, 100_000],
              "groups": [2, 10, 100, 1024], "repeats": 3,
              "load_workers": [1, 2, 4], "load_seconds": 8, "redis_down_seconds": 2, "delivery_rounds": 50},
}
# The big groups get fewer calls a round, so that part stays near a minute.
FANOUT_CALLS = {1024: 100, 10000: 20}
PARTS = ("endpoints", "stream", "attachments", "distance", "fanout", "limits", "delivery", "startup", "load", "rows")
LOAD_FAULT_WORKERS = 4
LIMIT_NEVER_MET = 1_000_000  # per minute (or hour): the most the settings allow


def at_distance(bench: Bench, main_env: Dict[str, Any], main_db: str, rtt_ms: float,
                counts: Dict[str, int]) -> Dict[str, Any]:
    """The endpoints and the stream's reads with the app's every database and
    Redis byte through the delay proxies (connections included: each new
    one pays its handshake's round trips, as deployed)."""
    mysql_url = f"{MYSQL_URL}/{main_db}"
    with distance.DelayProxy(*distance.mysql_upstream(mysql_url), rtt_ms=rtt_ms) as via_mysql, \
            distance.DelayProxy(*distance.redis_upstream(REDIS_URL), rtt_ms=rtt_ms) as via_redis:
        checked = distance.verified(mysql_url, REDIS_URL, via_mysql, via_redis)
        bench.configure(**{**main_env, "DATABASE_URL": distance.proxied_mysql_url(mysql_url, via_mysql),
                           "REDIS_URL": distance.proxied_redis_url(REDIS_URL, via_redis)})
        try:
            far = {"rtt_ms": rtt_ms, "verified": checked,
                   "endpoints": endpoints.run(bench, **counts),
                   "stream": stream.run(bench, main_db, **counts)}
            print("  attachments (S3 itself on loopback: only the database and Redis are far)", flush=True)
            with attachments.start_s3() as s3:
                far["attachments"] = attachments.run(bench, **counts, s3_endpoint=s3)
            return far
        finally:
            bench.configure(**main_env)  # off the proxies before they stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k/100k rows, groups up to 100, fewer calls")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {PARTS}")
    parser.add_argument("--calls", type=int, help="calls per round (default 300, quick 100)")
    parser.add_argument("--rtt-ms", type=float, default=0.5, help="round-trip time of the distance part")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    parser.add_argument("--plots", default=str(ROOT / "docs" / "perf"), help="folder for the PNGs")
    args = parser.parse_args()
    mode = MODES["quick" if args.quick else "full"]
    if args.calls:
        mode = {**mode, "calls": args.calls}
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")

    import redis

    started = time.perf_counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # The app logs one line per request. As in Lambda, where the runtime's
    # handler ships them, the lines are still formatted and written, but to a
    # file, not over the results.
    logging.basicConfig(filename=out.parent / "app.log", filemode="w", format="%(message)s")
    admin = admin_connection()
    redis_admin = redis.Redis.from_url(REDIS_URL)
    redis_admin.flushdb()
    main_db = create_database(admin, "main")
    from app import app

    bench = Bench(app, Counters(admin), redis_admin)
    # The settings of a deployed stage: MariaDB, Redis, token auth, and its
    # rate limits on (each request takes a token, as deployed), set so high
    # that the bench, one user sending hundreds a second, never meets them.
    main_env = {"DATABASE_URL": f"{MYSQL_URL}/{main_db}", "REDIS_URL": REDIS_URL,
                "AUTH_SECRET": AUTH_SECRET, "AUTH_MODE": "token",
                **{name: str(LIMIT_NEVER_MET) for name in RATE_LIMITS}}
    bench.configure(**main_env)
    results: Dict[str, Any] = {
        "machine": report.machine(admin, redis_admin),
        "run": {"mode": "quick" if args.quick else "full", "parts": parts, **mode,
                "fanout_calls_per_round": FANOUT_CALLS},
    }
    counts = {"rounds": mode["rounds"], "calls": mode["calls"], "warmup": mode["warmup"]}
    try:
        if "endpoints" in parts:
            print("== endpoints", flush=True)
            bench.configure(**main_env)
            results["endpoints"] = endpoints.run(bench, **counts)
        if "stream" in parts:
            print("== the stream at size: conversations and history of a user with 100k events", flush=True)
            bench.configure(**main_env)
            results["stream"] = stream.run(bench, main_db, **counts)
        if "attachments" in parts:
            print("== attachments: upload_url, sends with files, download_url (S3: a moto server)", flush=True)
            with attachments.start_s3() as s3:
                results["attachments"] = attachments.run(bench, **counts, s3_endpoint=s3)
        if "distance" in parts:
            print(f"== at a distance: MariaDB and Redis through a proxy adding {args.rtt_ms} ms a round trip",
                  flush=True)
            results["distance"] = at_distance(bench, main_env, main_db, args.rtt_ms, counts)
            bench.configure(**main_env)
        if "fanout" in parts:
            print("== send_group vs group size", flush=True)
            bench.configure(**main_env)
            results["send_group_vs_group_size"] = scaling.send_group_vs_group_size(
                bench, mode["groups"], calls_by_size=FANOUT_CALLS, **counts)
        if "limits" in parts:
            print("== hardening limits: Redis bytes, the largest page, a held row lock", flush=True)
            bench.configure(**main_env)
            results["limits"] = limits.run(bench, main_db)
        if "delivery" in parts:
            print("== delivery latency: long-poll and WebSocket, with and without Redis", flush=True)
            results["delivery"] = delivery.run(f"{MYSQL_URL}/{main_db}", rounds=mode["delivery_rounds"])
        if "startup" in parts:
            print("== cold start and deployment size", flush=True)
            bench.configure(**main_env)
            results["startup"] = startup.run(bench, repeats=mode["repeats"])
        if "load" in parts:
            print("== load: worker processes in parallel, then every inbox verified; with Redis and the "
                  "database connections killed", flush=True)
            results["load"] = load.run(bench, admin, workers=mode["load_workers"], seconds=mode["load_seconds"],
                                       fault_workers=LOAD_FAULT_WORKERS, redis_down_s=mode["redis_down_seconds"],
                                       log_dir=out.parent)
        drop_database(admin, main_db)  # done with it: free the server's buffer pool for the big tables
        if "rows" in parts:
            print("== read latency vs database size (database path, no cache)", flush=True)
            results["read_latency_vs_rows"] = scaling.read_latency_vs_rows(bench, admin, mode["rows"], **counts)
    finally:
        drop_database(admin, main_db)
        redis_admin.flushdb()
    results["wall_seconds"] = round(time.perf_counter() - started, 1)

    subtitle = (f"{results['machine']['cores']} cores {results['machine']['cpu']}, MariaDB "
                f"{results['machine']['mariadb'].split('-')[0]}, Redis {results['machine']['redis']}, "
                f"{results['machine']['date'][:10]}\nmedian of {mode['rounds']} round p50s, worst round p99")
    plot_dir = Path(args.plots)
    if "endpoints" in results:
        plots.endpoints(results["endpoints"], subtitle, plot_dir / "endpoints.png")
    if "read_latency_vs_rows" in results:
        plots.read_latency_vs_rows(results["read_latency_vs_rows"], subtitle, plot_dir / "read_latency_vs_rows.png")
    if "send_group_vs_group_size" in results:
        plots.send_group_vs_group_size(results["send_group_vs_group_size"], subtitle,
                                       plot_dir / "send_group_vs_group_size.png")
    if "load" in results:
        m = results["machine"]
        plots.load_vs_workers(results["load"], f"{m['cores']} cores {m['cpu']} shared by the workers, MariaDB "
                              f"{m['mariadb'].split('-')[0]} and Redis, {m['date'][:10]}; "
                              f"{mode['load_seconds']} s per point", plot_dir / "load_vs_workers.png")

    results["table_markdown"] = report.table(results)
    results["distance_markdown"] = report.distance_table(results)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(results["table_markdown"])
    if results["distance_markdown"]:
        print()
        print(results["distance_markdown"])
    print(f"\nwrote {out} in {results['wall_seconds']:.0f} s")

    scans = [e for at in results.get("read_latency_vs_rows", {}).get("sizes", {}).values()
             for e in at["explain"] if e["full_scan"]]
    failed = False
    if scans:
        print(f"FAIL: {len(scans)} read queries scan a whole table (EXPLAIN type ALL)")
        failed = True
    if results.get("load", {}).get("result") == "fail":
        print("FAIL: the load run lost, duplicated or misdelivered messages, answered a 5xx other than a"
              " retried 503, or injected a fault no worker met (see the load lines above)")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
