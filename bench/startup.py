"""Cold start and deployment size: what a new Lambda container pays before
its first answer, and what it has to download."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from typing import Any, Dict, List

from harness import ROOT

# Runs in a fresh interpreter: import the app, then answer two requests.
_CHILD = r"""
import sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import app
timings = {"import_app_ms": (time.perf_counter() - started) * 1000}
import json
events = json.loads(sys.argv[2])

class Context:
    function_name = "bench"
    memory_limit_in_mb = 1024
    aws_request_id = "cold-start"

for n, event in enumerate(events, 1):
    t = time.perf_counter()
    response = app.app(event, Context())
    timings[f"request_{n}_ms"] = (time.perf_counter() - t) * 1000
    timings[f"request_{n}_status"] = response["statusCode"]
    timings[f"request_{n}_x_cache"] = response.get("headers", {}).get("X-Cache")
print(json.dumps(timings))
"""


def _child(env: Dict[str, str], events: List[Dict[str, Any]], *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", _CHILD, str(ROOT), json.dumps(events)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)


def cold_start(env: Dict[str, str], scenarios: Dict[str, List[Dict[str, Any]]], repeats: int) -> Dict[str, Any]:
    """Each scenario is a list of events: the first is the cold request, the
    second the same kind of request warm, for comparison."""
    out: Dict[str, Any] = {"repeats": repeats}
    empty = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        empty.append((time.perf_counter() - t) * 1000)
    out["python_startup_ms"] = round(statistics.median(empty), 1)
    for name, events in scenarios.items():
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            result = json.loads(_child(env, events).stdout)
            result["process_ms"] = (time.perf_counter() - t) * 1000
            runs.append(result)
        summary = {key: round(statistics.median(r[key] for r in runs), 1)
                   for key in ("process_ms", "import_app_ms", "request_1_ms", "request_2_ms")}
        summary["max_request_1_ms"] = round(max(r["request_1_ms"] for r in runs), 1)
        summary["status"] = [runs[0]["request_1_status"], runs[0]["request_2_status"]]
        summary["x_cache"] = [runs[0]["request_1_x_cache"], runs[0]["request_2_x_cache"]]
        out[name] = summary
        print(f"  cold start, first request {name:14s}: process {summary['process_ms']:6.1f} ms = python "
              f"{out['python_startup_ms']:.1f} + import app {summary['import_app_ms']:6.1f} + first request "
              f"{summary['request_1_ms']:6.1f} ms (warm: {summary['request_2_ms']:.2f} ms; X-Cache {summary['x_cache']})",
              flush=True)
    return out


def import_profile(env: Dict[str, str], events: List[Dict[str, Any]], top: int = 8) -> Dict[str, Any]:
    """`python -X importtime` over import + first request (pymysql and redis
    are imported lazily by the first request): the top-level imports by
    cumulative time, and the packages whose own modules cost the most."""
    stderr = _child(env, events, "-X", "importtime").stderr
    top_level: List[Dict[str, Any]] = []
    by_package: Dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, cumulative, name = line[len("import time:"):].split("|")
        if not own.strip().isdigit():
            continue  # the header
        package = name.strip().split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(own) / 1000
        if not name.startswith("  "):  # not nested inside another import
            top_level.append({"module": name.strip(), "cumulative_ms": round(int(cumulative) / 1000, 1)})
    top_level.sort(key=lambda m: -m["cumulative_ms"])
    packages = sorted(({"package": k, "self_ms": round(v, 1)} for k, v in by_package.items()),
                      key=lambda p: -p["self_ms"])[:top]
    print("  importtime, top-level imports (cumulative ms): "
          + ", ".join(f"{m['module']} {m['cumulative_ms']:.0f}" for m in top_level[:5]), flush=True)
    print("  importtime, by package (ms in its own modules): "
          + ", ".join(f"{p['package']} {p['self_ms']:.0f}" for p in packages), flush=True)
    return {"top_level": top_level[:5], "by_package": packages}


def package_size(top: int = 10) -> Dict[str, Any]:
    """Build the deployment zip with `chalice package` (it downloads the
    wheels for requirements.txt) and list what is in it."""
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    with tempfile.TemporaryDirectory() as out_dir:
        t = time.perf_counter()
        done = subprocess.run([chalice, "package", "--stage", "dev", out_dir], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        seconds = time.perf_counter() - t
        if done.returncode != 0:
            print(f"  chalice package failed: {done.stderr.strip()[-300:]}", flush=True)
            return {"error": done.stderr.strip()[-1000:]}
        path = os.path.join(out_dir, "deployment.zip")
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
        size = os.path.getsize(path)
    by_top: Dict[str, List[int]] = {}
    for e in entries:
        head = e.filename.split("/")[0]
        by_top.setdefault(head, [0, 0])
        by_top[head][0] += e.compress_size
        by_top[head][1] += e.file_size
    largest = sorted(entries, key=lambda e: -e.compress_size)[:top]
    out = {
        "zip_bytes": size,
        "entries": len(entries),
        "unzipped_bytes": sum(e.file_size for e in entries),
        "package_seconds": round(seconds, 1),
        "by_top_level": {k: {"zipped_bytes": v[0], "unzipped_bytes": v[1]}
                         for k, v in sorted(by_top.items(), key=lambda kv: -kv[1][0])},
        "largest_entries": [{"name": e.filename, "zipped_bytes": e.compress_size, "unzipped_bytes": e.file_size}
                            for e in largest],
    }
    print(f"  deployment.zip: {size:,} bytes ({size / 1024:.0f} KB), {len(entries)} entries, "
          f"{out['unzipped_bytes'] / 1024:.0f} KB unzipped; built in {seconds:.1f} s", flush=True)
    print("  by top-level entry (zipped KB): " + ", ".join(
        f"{k} {v['zipped_bytes'] / 1024:.0f}" for k, v in list(out["by_top_level"].items())[:6]), flush=True)
    print("  largest files (zipped KB): " + ", ".join(
        f"{e['name']} {e['zipped_bytes'] / 1024:.0f}" for e in out["largest_entries"]), flush=True)
    return out


def run(bench: Any, *, repeats: int) -> Dict[str, Any]:
    """Cold starts against the bench's database and Redis: one whose first
    request is a register, one whose first request is a read that the cache
    answers (a user who polled, then got one message)."""
    from endpoints import poll_once, register
    from harness import lambda_event

    writer, reader = register(bench, "cold-writer"), register(bench, "cold-reader")
    poll_once(bench, reader)
    bench.call("/send", {"sending_user_id": writer["user_id"], "receiving_user_id": reader["user_id"],
                         "message_text": "hello"}, writer["token"])
    read = lambda_event("/read_messages", {"user_id": reader["user_id"], "after": 0}, reader["token"])
    scenarios = {
        "register": [lambda_event("/register", {"user_name": "cold"}), lambda_event("/register", {"user_name": "warm"})],
        "cached read": [read, read],
    }
    env = dict(os.environ)  # the bench's settings: MariaDB, Redis, auth secret
    return {
        "cold_start": cold_start(env, scenarios, repeats),
        "importtime": import_profile(env, scenarios["register"]),
        "package": package_size(),
    }
