"""The machine a run was made on, and one markdown table of everything."""
from __future__ import annotations

import os
import platform
import time
from typing import Any, Dict, List


def machine(admin: Any, redis_admin: Any) -> Dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    with admin.cursor() as cur:
        cur.execute("SELECT VERSION(), @@innodb_buffer_pool_size")
        mariadb, pool = cur.fetchone()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "mariadb": mariadb,
        # What the 1M-row parts depend on most: whether the tables fit in it.
        "innodb_buffer_pool_mb": int(pool) // 2**20,
        "redis": redis_admin.info("server")["redis_version"],
    }


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _row(name: str, r: Dict[str, Any]) -> str:
    return (f"| {name} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} | {r['db_statements_per_call']:g} "
            f"in {r['db_round_trips_per_call']:g} "
            f"| {r['redis_round_trips_per_call']:g} |")


def table(results: Dict[str, Any]) -> str:
    m, run = results["machine"], results["run"]
    header = (f"Benchmark {m['date']}: {m['cores']} cores, {m['cpu']}, {m['os']}, Python {m['python']}, "
              f"MariaDB {m['mariadb']}, Redis {m['redis']} (loopback). Mode {run['mode']}: "
              f"{run['rounds']} interleaved rounds of {run['calls']} calls (unless noted) after {run['warmup']} "
              f"warm-up calls; p50 = median of the round p50s, p99 = worst round p99.")
    lines: List[str] = [
        header,
        "",
        "| measurement | p50 | p99 | DB statements in round trips/call | Redis round trips/call |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.get("endpoints", {}).items():
        lines.append(_row(name, r))
    for name, r in results.get("stream", {}).get("results", {}).items():
        lines.append(_row(name, r))
    for name, r in results.get("attachments", {}).items():
        lines.append(_row(f"{name}, {r['s3_requests_per_call']:g} S3 requests", r))
    rows = results.get("read_latency_vs_rows")
    if rows:
        for size, at in rows["sizes"].items():
            for name, r in at["results"].items():
                lines.append(_row(f"read, no cache, {int(size):,} msgs: {name}", r))
    fanout = results.get("send_group_vs_group_size")
    if fanout:
        for size, r in fanout["sizes"].items():
            n = r["recipients"]
            calls = "" if r["calls"] == run["rounds"] * run["calls"] else f"; {r['calls']} calls"
            lines.append(_row(f"send_group, {size} members ({n} recipient{'s' * (n != 1)}{calls})", r))
        for name, r in fanout.get("changes_at_1024", {}).items():
            lines.append(_row(name, r))
    lim = results.get("limits")
    if lim:
        rb, page, lock = lim["redis_bytes_largest_message"], lim["largest_page"], lim["held_row_lock"]
        lines.append(f"| Redis bytes per recipient, largest message (4,096 emoji) | "
                     f"{rb['window_bytes_added_per_recipient']:,} bytes added to the window | entry "
                     f"{rb['entry_bytes_utf8']:,} bytes as UTF-8 (was {rb['entry_bytes_escaped_json_as_before']:,}"
                     f" as escaped JSON) | | |")
        lines.append(f"| largest page (100 largest messages waiting, limit=100) | {page['messages']} messages, "
                     f"{page['body_bytes']:,} bytes | Lambda payload {page['lambda_payload_bytes']:,} bytes, "
                     f"has_more {str(page['has_more']).lower()} | | |")
        lines.append(f"| send blocked on a held row lock, {lock['lambda_remaining_seconds']} s invocation | "
                     f"{lock['status']} after {lock['seconds_to_answer']:.2f} s | Retry-After {lock['retry_after']} | | |")
    for variant, paths in results.get("delivery", {}).items():
        for path, r in paths.items():
            lines.append(f"| delivery to a waiting {path.replace('_', '-')} client, {variant} (from the send's "
                         f"response / from issuing it) | {r['from_response']['p50_ms']:.2f} / "
                         f"{r['from_send']['p50_ms']:.2f} ms | {r['from_response']['p99_ms']:.2f} / "
                         f"{r['from_send']['p99_ms']:.2f} ms | | |")
    start = results.get("startup", {})
    cold = start.get("cold_start")
    if cold:
        for name in (k for k, v in cold.items() if isinstance(v, dict)):
            c = cold[name]
            lines.append(f"| cold start, {name}: import app / first request / process total "
                         f"(median of {cold['repeats']}) | {c['import_app_ms']:.0f} / {c['request_1_ms']:.0f} / "
                         f"{c['process_ms']:.0f} ms | max first request {c['max_request_1_ms']:.0f} ms | | |")
    package = start.get("package")
    if package and "zip_bytes" in package:
        biggest = ", ".join(f"{k} {v['zipped_bytes'] / 1024:.0f} KB"
                            for k, v in list(package["by_top_level"].items())[:4])
        lines.append(f"| deployment.zip (`chalice package`) | {package['zip_bytes']:,} bytes "
                     f"({package['zip_bytes'] / 1024:.0f} KB), {package['entries']} files | {biggest} | | |")
    load = results.get("load")
    if load:
        lines += _load_rows(load)
    if rows:
        loads = ", ".join(f"{int(s):,} msgs {at['load']['total_s']:.1f} s" for s, at in rows["sizes"].items())
        lines.append(f"| bulk load into empty tables ({rows['users']:,} users, LOAD DATA) | {loads} | | | |")
        purge = rows.get("purge")
        if purge:
            # The budget is what the purge was allowed; `seconds` what it took.
            lines.append(f"| retention purge at {purge['table_rows']:,} rows (batches of {purge['batch_rows']:,}, "
                         f"{purge['budget_seconds']:g} s budget) | {purge['inbox_rows_per_second']:,} inbox rows/s | "
                         f"{purge['inbox_rows']:,} rows, {purge['messages']:,} messages in {purge['seconds']} s | | |")
        plans = [e for at in rows["sizes"].values() for e in at["explain"]]
        scans = sum(e["full_scan"] for e in plans)
        lines.append(f"| EXPLAIN of the read queries | {len(plans)} plans, {scans} with type ALL | | | |")
    return "\n".join(lines)


def distance_table(results: Dict[str, Any]) -> str:
    """Each endpoint on loopback beside the same at the distance part's RTT,
    with the round trips that make the difference."""
    far = results.get("distance")
    if not far:
        return ""
    v, rtt = far["verified"], far["rtt_ms"]
    lines = [f"At {rtt:g} ms: MariaDB and Redis through the bench's delay proxy (bench/delayproxy.c), checked before "
             f"measuring: a Redis PING {v['redis_ping']['direct']['median_ms']:.3f} ms direct, "
             f"{v['redis_ping']['proxied']['median_ms']:.3f} ms through it; a MySQL SELECT 1 "
             f"{v['mysql_select_1']['direct']['median_ms']:.3f} / {v['mysql_select_1']['proxied']['median_ms']:.3f} ms"
             f" (+{v['redis_ping']['injected_ms']:.3f} / +{v['mysql_select_1']['injected_ms']:.3f} ms); a new MySQL "
             f"connection {v['mysql_connect']['proxied']['median_ms']:.2f} ms, a new Redis client's first PING "
             f"{v['redis_first_ping']['proxied']['median_ms']:.2f} ms through it.",
             "",
             f"| measurement | p50 loopback | p50 at {rtt:g} ms | p99 at {rtt:g} ms "
             f"| DB statements in round trips/call | Redis round trips/call |",
             "|---|---|---|---|---|---|"]
    near = {**results.get("endpoints", {}), **results.get("stream", {}).get("results", {}),
            **results.get("attachments", {})}
    for name, r in {**far["endpoints"], **far["stream"]["results"], **far.get("attachments", {})}.items():
        loop = _ms(near[name]["p50_ms"]) if name in near else ""
        lines.append(f"| {name} | {loop} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} | "
                     f"{r['db_statements_per_call']:g} in {r['db_round_trips_per_call']:g} "
                     f"| {r['redis_round_trips_per_call']:g} |")
    return "\n".join(lines)


def _triple(r: Dict[str, Any], key: str) -> str:
    """send / send_group / poll values of one run, in one cell (latencies with the unit once)."""
    values = [r["ops"][op][key] for op in ("send", "send_group", "poll")]
    if key.endswith("_ms"):
        return " / ".join(_ms(v)[:-3] for v in values) + " ms"
    return " / ".join(f"{v:g}" for v in values)


def _short_polls(r: Dict[str, Any]) -> str:
    """Cache staleness the clients saw: complete pages that lacked a committed message."""
    v = r["verification"]
    if not v.get("short_polls"):
        return ""
    return (f"; {v['short_polls']} of {v['complete_polls']:,} complete polls from the cache lacked a committed "
            f"message (for up to {v['short_poll_worst_lag_s']:.1f} s)")


def _load_rows(load: Dict[str, Any]) -> List[str]:
    lines = []
    shared = f"{load['cores']} cores shared with MariaDB and Redis"
    for n, r in load["runs"].items():
        verdict = "verified" if r["pass"] else "**FAILED verification**"
        lines.append(f"| load, {n} worker{'s' * (n != '1')} ({shared}), {load['seconds']:g} s: "
                     f"{r['requests_per_s']:,.0f} req/s, {r['deliveries_per_s']:,.0f} deliveries/s, {verdict}{_short_polls(r)}; "
                     f"send / send_group / poll | {_triple(r, 'p50_ms')} | {_triple(r, 'p99_ms')} "
                     f"| {_triple(r, 'db_statements_per_call')} | {_triple(r, 'redis_round_trips_per_call')} |")
    names = {"redis_restart": "Redis SIGKILLed and restarted", "db_connections_killed": "database connections killed twice"}
    for name, r in load["faults"].items():
        v = r["verification"]
        outcome = ("PASS: nothing lost, duplicated or misdelivered" if r["pass"]
                   else f"**FAIL**: {len(v['violations'])} violations, {r['other_5xx']} other 5xx, "
                        f"{r['failed_operations']} failed operations"
                        f"{'' if r['fault_met'] else ', no worker met the fault'}")
        lines.append(f"| load, {r['workers']} workers, {names.get(name, name)}: {outcome}; {r['retried_503']} 503s "
                     f"retried ({r['answered_duplicate_on_retry']} answered duplicate), "
                     f"{r['requests_per_s']:,.0f} req/s; worst request {_ms(r['worst_request_ms'])}, worst operation "
                     f"with retries {_ms(r['worst_operation_ms'])}{_short_polls(r)}; send / send_group / poll "
                     f"| {_triple(r, 'p50_ms')} | {_triple(r, 'p99_ms')} "
                     f"| {_triple(r, 'db_statements_per_call')} | {_triple(r, 'redis_round_trips_per_call')} |")
    return lines
