"""The measuring harness: API Gateway events, counters, and interleaved rounds.

Every request goes through the Lambda entry point, `app.app(event, context)`,
in this process, exactly as API Gateway's proxy integration would call it.
"""
from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project (app, chalicelib) next to the bench modules
# The test suite's MariaDB user (scripts/ensure-services.sh), unless told otherwise;
# imported only then, as the suite's module fails without that user's file.
if os.environ.get("BENCH_MYSQL_URL"):
    MYSQL_URL = os.environ["BENCH_MYSQL_URL"]
else:
    from tests.support.mysql import TEST_MYSQL_URL as MYSQL_URL  # noqa: E402 - after the path insert
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
AUTH_SECRET = "bench-signing-secret-0123456789abcdef"


from tests.support.lambda_events import api_gateway_event as lambda_event  # noqa: E402 - after the path insert
from tests.support.lambda_events import invoke  # noqa: E402


# --------------------------------------------------------------------------- databases


def admin_connection(database: Optional[str] = None, **options: Any) -> Any:
    import pymysql

    from chalicelib.dialects import parse_mysql_url

    t = parse_mysql_url(MYSQL_URL)
    options = {"autocommit": True, "ssl_disabled": True, "charset": "utf8mb4", **options}
    return pymysql.connect(host=t.host, port=t.port, user=t.user, password=t.password, database=database,
                           unix_socket=t.unix_socket, **options)


def create_database(admin: Any, label: str) -> str:
    """A fresh database with the app's own migrations applied; returns its name."""
    from chalicelib.db import Database
    from chalicelib.migrate import apply_migrations
    from chalicelib.settings import Settings

    name = f"messaging_bench_{label}_{uuid.uuid4().hex[:6]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    db = Database(Settings.from_env({"DATABASE_URL": f"{MYSQL_URL}/{name}"}))
    try:
        apply_migrations(db)
    finally:
        db.close()
    return name


def drop_database(admin: Any, name: str) -> None:
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


# --------------------------------------------------------------------------- counters


class Counters:
    """Database statements and Redis round trips of the app, from the same
    counters its request log line reports (chalicelib.metering): each
    statement, multi-row insert and COMMIT, each Redis command, script call
    or pipeline. The server's global `Questions` counter is kept as a
    cross-check (it also counts anyone else using the server)."""

    def __init__(self, admin: Any) -> None:
        from chalicelib.metering import meter

        self.admin = admin
        self._meter = meter()  # the bench calls the app in this thread

    @property
    def statements(self) -> int:
        return self._meter.db_statements

    @property
    def db_round_trips(self) -> int:
        return self._meter.db_round_trips

    @property
    def redis_round_trips(self) -> int:
        return self._meter.redis_round_trips

    def server_questions(self) -> int:
        with self.admin.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
            return int(cur.fetchone()[1])

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Set-up work between timed calls does not count."""
        saved = self._meter.db_statements, self._meter.db_round_trips, self._meter.redis_round_trips
        yield
        self._meter.db_statements, self._meter.db_round_trips, self._meter.redis_round_trips = saved

    @contextlib.contextmanager
    def recording(self) -> Iterator[List[Tuple[str, Sequence[Any]]]]:
        """(SQL, parameters) of every statement the app sends meanwhile."""
        from chalicelib.metering import recording

        sent: List[Tuple[str, Sequence[Any]]] = []
        stop = recording(sent)
        try:
            yield sent
        finally:
            stop()


# --------------------------------------------------------------------------- measuring


@dataclass
class Case:
    """One thing to measure. `request(i)` makes call number i (numbered
    across warm-up and rounds, so toggles and names continue)."""

    name: str
    request: Callable[[int], Dict[str, Any]]
    expect: int = 200
    before: Optional[Callable[[int], None]] = None  # untimed, uncounted set-up before each call
    env: Dict[str, Optional[str]] = field(default_factory=dict)  # settings for this case (None = unset)
    calls: Optional[int] = None  # per round, when not the bench's default
    made: int = 0

    def next(self) -> int:
        self.made += 1
        return self.made - 1


def percentile(ordered: List[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Bench:
    def __init__(self, app: Any, counters: Counters, redis_admin: Any) -> None:
        self.app = app
        self.counters = counters
        self.redis = redis_admin  # the bench's own client, for set-up (e.g. evicting a window)
        self.base_env: Dict[str, Optional[str]] = {}

    def call(self, path: str, params: Dict[str, Any], token: Optional[str] = None, method: str = "POST") -> Dict[str, Any]:
        return invoke(self.app, path, params, token, method=method)

    # ----------------------------------------------------------------- settings

    def configure(self, **env: Optional[str]) -> None:
        """Change the settings every case starts from."""
        self.base_env.update(env)
        self.use_env({})

    def use_env(self, overrides: Dict[str, Optional[str]]) -> None:
        """Apply base settings plus overrides; rebuild the app's service (as a
        new Lambda container would) only when something changed."""
        from chalicelib import wiring

        wanted = {**self.base_env, **overrides}
        changed = False
        for name, value in wanted.items():
            if os.environ.get(name) != value:
                changed = True
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        if changed:
            wiring.reset()

    # ----------------------------------------------------------------- rounds

    def run(self, cases: List[Case], *, rounds: int, calls: int, warmup: int, label: str = "") -> Dict[str, Dict[str, Any]]:
        """Measure every case in `rounds` interleaved rounds (round 1 of each
        case, then round 2 of each, ...), so a slow minute of this noisy VM
        hits all cases alike. Reports the median of the round p50s and the
        worst round p99."""
        per_case: Dict[str, List[Dict[str, Any]]] = {case.name: [] for case in cases}
        for r in range(rounds):
            print(f"  {label}round {r + 1}/{rounds}", flush=True)
            for case in cases:
                per_case[case.name].append(self._round(case, case.calls or calls, warmup))
        self.use_env({})
        results = {case.name: _combine(per_case[case.name]) for case in cases}
        for name, result in results.items():
            print("  " + format_result(name, result), flush=True)
        return results

    def _round(self, case: Case, calls: int, warmup: int) -> Dict[str, Any]:
        self.use_env(case.env)
        for _ in range(warmup):
            i = case.next()
            if case.before:
                with self.counters.paused():
                    case.before(i)
            response = case.request(i)
            assert response["statusCode"] == case.expect, (case.name, response)
        latencies: List[float] = []
        cache_states: Dict[str, int] = {}
        statements, round_trips = self.counters.statements, self.counters.redis_round_trips
        db_round_trips = self.counters.db_round_trips
        questions = self.counters.server_questions()
        for _ in range(calls):
            i = case.next()
            if case.before:
                with self.counters.paused():
                    case.before(i)
            started = time.perf_counter()
            response = case.request(i)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response["statusCode"] == case.expect, (case.name, response)
            state = response["headers"].get("X-Cache")
            if state:
                cache_states[state] = cache_states.get(state, 0) + 1
        questions = self.counters.server_questions() - questions - 1  # less the first SHOW
        latencies.sort()
        return {
            "p50_ms": statistics.median(latencies),
            "p99_ms": percentile(latencies, 0.99),
            "calls": calls,
            "statements": self.counters.statements - statements,
            "db_round_trips": self.counters.db_round_trips - db_round_trips,
            "redis_round_trips": self.counters.redis_round_trips - round_trips,
            "server_questions": questions,
            "x_cache": cache_states,
        }


def _combine(rounds: List[Dict[str, Any]]) -> Dict[str, Any]:
    calls = sum(r["calls"] for r in rounds)
    x_cache: Dict[str, int] = {}
    for r in rounds:
        for state, n in r["x_cache"].items():
            x_cache[state] = x_cache.get(state, 0) + n
    result = {
        "p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 3),
        "p99_ms": round(max(r["p99_ms"] for r in rounds), 3),
        "round_p50_ms": [round(r["p50_ms"], 3) for r in rounds],
        "round_p99_ms": [round(r["p99_ms"], 3) for r in rounds],
        "calls": calls,
        "db_statements_per_call": round(sum(r["statements"] for r in rounds) / calls, 2),
        "db_round_trips_per_call": round(sum(r["db_round_trips"] for r in rounds) / calls, 2),
        "redis_round_trips_per_call": round(sum(r["redis_round_trips"] for r in rounds) / calls, 2),
        # Global server counter: equals the above unless other clients were busy.
        "server_questions_per_call": round(sum(r["server_questions"] for r in rounds) / calls, 2),
    }
    if x_cache:
        result["x_cache"] = x_cache
    return result


def format_result(name: str, r: Dict[str, Any]) -> str:
    rounds = "/".join(f"{p:.2f}" for p in r["round_p50_ms"])
    line = (f"{name:42s} p50 {r['p50_ms']:8.3f} ms  p99 {r['p99_ms']:8.3f} ms  "
            f"db {r['db_statements_per_call']:6.2f} in {r['db_round_trips_per_call']:5.2f} round trips  "
            f"redis {r['redis_round_trips_per_call']:5.2f}  (round p50s {rounds})")
    if r.get("x_cache"):
        line += f"  X-Cache {r['x_cache']}"
    return line
