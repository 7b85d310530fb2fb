"""In-process benchmark: calls the Lambda entry point, `app.app(event,
context)`, with API Gateway proxy events, against MariaDB and Redis on
loopback. Prints per-operation latency p50/p99 and, per request, database
statements (the server's own `Questions` counter) and Redis round trips
(counted at the client). Not a test: run `make bench`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MYSQL_URL = os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


class Context:
    function_name = "bench"
    memory_limit_in_mb = 1024

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())


class Counters:
    """Database statements from the server, Redis round trips from the client."""

    def __init__(self, admin: Any) -> None:
        import redis.connection

        self.admin = admin
        self.redis_round_trips = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(conn: Any, *args: Any, **kwargs: Any) -> Any:
            self.redis_round_trips += 1
            return original(conn, *args, **kwargs)

        redis.connection.AbstractConnection.send_packed_command = counting

    def questions(self) -> int:
        with self.admin.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
            return int(cur.fetchone()[1])


class Bench:
    def __init__(self, app: Any, counters: Counters) -> None:
        self.app = app
        self.counters = counters
        self.results: Dict[str, Dict[str, float]] = {}

    def call(self, path: str, params: Dict[str, Any], token: Optional[str] = None, method: str = "POST") -> Dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        event = {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: str(v) for k, v in params.items()} or None,
            "multiValueQueryStringParameters": {k: [str(v)] for k, v in params.items()} or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {"resourcePath": path, "httpMethod": method, "path": path, "stage": "api",
                               "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1"}},
            "body": None,
            "isBase64Encoded": False,
        }
        response = self.app(event, Context())
        response["json"] = json.loads(response["body"]) if response.get("body") else None
        return response

    def measure(self, name: str, request: Callable[[int], Dict[str, Any]], *, calls: int, warmup: int = 30,
                expect: int = 200, before: Optional[Callable[[int], None]] = None) -> Dict[str, float]:
        for i in range(warmup):
            if before:
                before(i)
            assert request(i)["statusCode"] == expect
        latencies: List[float] = []
        q0, r0 = self.counters.questions(), self.counters.redis_round_trips
        cache_states: Dict[str, int] = {}
        for i in range(warmup, warmup + calls):
            if before:  # set-up outside the timing and the counts
                r_before = self.counters.redis_round_trips
                before(i)
                self.counters.redis_round_trips = r_before
            started = time.perf_counter()
            response = request(i)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response["statusCode"] == expect, response
            state = response["headers"].get("X-Cache")
            if state:
                cache_states[state] = cache_states.get(state, 0) + 1
        q1 = self.counters.questions()
        latencies.sort()
        result = {
            "p50_ms": round(statistics.median(latencies), 3),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
            "db_statements_per_call": round((q1 - q0 - 1) / calls, 2),  # less our own SHOW
            "redis_round_trips_per_call": round((self.counters.redis_round_trips - r0) / calls, 2),
            "calls": calls,
        }
        if cache_states:
            result["x_cache"] = cache_states
        self.results[name] = result
        print(f"{name:34s} p50 {result['p50_ms']:7.3f} ms  p99 {result['p99_ms']:7.3f} ms  "
              f"db {result['db_statements_per_call']:5.2f}  redis {result['redis_round_trips_per_call']:4.2f}"
              + (f"  {cache_states}" if cache_states else ""), flush=True)
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = parser.parse_args()

    import pymysql
    import redis

    db_name = f"messaging_bench_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True, ssl_disabled=True)
    admin.cursor().execute(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    os.environ.update({
        "DATABASE_URL": f"{MYSQL_URL}/{db_name}",
        "REDIS_URL": REDIS_URL,
        "AUTH_SECRET": "bench-signing-secret-0123456789abcdef",
        "AUTH_MODE": "token",
    })
    redis_admin = redis.Redis.from_url(REDIS_URL)
    redis_admin.flushdb()
    try:
        from chalicelib.db import Database
        from chalicelib.migrate import apply_migrations
        from chalicelib.settings import Settings

        apply_migrations(Database(Settings.from_env()))
        from app import app

        bench = Bench(app, Counters(admin))
        run_cache_reads(bench, redis_admin, args.calls)
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{db_name}`")
        redis_admin.flushdb()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "results": bench.results,
    }, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def run_cache_reads(bench: Bench, redis_admin: Any, calls: int) -> None:
    from chalicelib import wiring
    from chalicelib.cache import key_for

    users = [bench.call("/register", {"user_name": n})["json"] for n in ("alice", "bob")]
    alice, bob = users
    bench.call("/read_messages", {"user_id": bob["user_id"], "after": 0}, bob["token"])
    for i in range(20):
        bench.call("/send", {"sending_user_id": alice["user_id"], "receiving_user_id": bob["user_id"],
                             "message_text": f"message {i}"}, alice["token"])
    # A poll that finds one new message (after = newest - 1).
    read = lambda i: bench.call("/read_messages", {"user_id": bob["user_id"], "after": 19}, bob["token"])  # noqa: E731
    bench.measure("read_messages (cache hit)", read, calls=calls)
    bench.measure("read_messages (cache miss)", read, calls=calls,
                  before=lambda i: redis_admin.delete(key_for(bob["user_id"])))
    os.environ.pop("REDIS_URL")
    wiring.reset()
    bench.measure("read_messages (no cache)", read, calls=calls)
    os.environ["REDIS_URL"] = REDIS_URL
    wiring.reset()


if __name__ == "__main__":
    sys.exit(main())
