"""Cold start and deployment size: what a new Lambda container pays before
its first answer, and what it has to download.

Three kinds of cold start, each in a fresh interpreter:
  * the project tree with the .venv (the scenario names alone, e.g.
    "register"), with whatever bytecode their __pycache__ folders hold: the
    .venv's packages were compiled by pip at install; the project's modules
    are compiled once and reused, unless PYTHONDONTWRITEBYTECODE is set
    (then only those that happen to have a fresh .pyc are not compiled
    again): a developer's machine, not a Lambda;
  * "<scenario>, zip without bytecode": the same files with every .pyc
    removed and PYTHONDONTWRITEBYTECODE=1 (/var/task is read-only): what a
    new container would pay if the package shipped none, everything
    compiled from source;
  * "<scenario>, zip with bytecode": the zip as `make deploy` builds it,
    with the .pyc scripts/deploy/bytecode.py compiles into it (hash-based:
    a zip's mtimes are 1980-01-01, never the sources'): what a new
    container of a deployment pays.
The standard library keeps its compiled files in every case (the Lambda
runtime ships them). For the zip's files the child's sys.path is Lambda's:
the files, the standard library, and the runtime's own packages (boto3 &
co., linked from the .venv), not the .venv's site-packages, whose other
packages (e.g. cryptography, which pymysql imports when it finds it) a
Lambda does not have.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from harness import ROOT

# Runs in a fresh interpreter: import the app, then answer two requests.
# With a third argument (a deployment's files), Lambda's sys.path: the code,
# the standard library, and the runtime's AWS SDK, none of the .venv.
_CHILD = r"""
import sys, time
loaded = set(sys.modules)  # by the interpreter's own start (site, .pth files)
if len(sys.argv) > 3:
    sys.path[:] = [p for p in sys.path if "site-packages" not in p] + [sys.argv[3]]
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
# What the cold start loaded: boto3 & co. must wait for the first attachment;
# and, of the rest, the top-level packages found neither in the code's own
# folder nor in the standard library (from a zip: whatever it lacks).
import os
own = os.path.realpath(sys.argv[1]) + os.sep
std = os.path.realpath(os.path.dirname(os.__file__)) + os.sep  # lib/python3.x, lib-dynload in it
top = {name.split(".")[0]: getattr(m, "__file__", None) for name, m in list(sys.modules.items()) if name not in loaded}
timings["aws_sdk_imported"] = sorted(t for t in top if t in ("boto3", "botocore", "s3transfer"))
timings["imported_from_elsewhere"] = sorted(
    t for t, f in top.items() if f and not (os.path.realpath(f).startswith(own) or (
        os.path.realpath(f).startswith(std) and os.sep + "site-packages" + os.sep not in os.path.realpath(f))))
print(json.dumps(timings))
"""

BUDGET_MS = 150  # import + first request of a new container, with the bytecode the package ships
NO_BYTECODE = "zip without bytecode"
COMPILED = "zip with bytecode"


# What the Lambda Python runtime has besides the standard library (not in the zip).
LAMBDA_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


def _child(env: Dict[str, str], events: List[Dict[str, Any]], *flags: str,
           code: Path = ROOT) -> subprocess.CompletedProcess:
    """The child, with `code` (the project, or an extracted deployment.zip)
    first on sys.path and as its working directory; for a deployment's
    files, the .venv replaced by the Lambda runtime's packages beside them."""
    runtime = [str(code.parent / "lambda-runtime")] if code != ROOT else []
    return subprocess.run([sys.executable, *flags, "-c", _CHILD, str(code), json.dumps(events), *runtime],
                          env=env, cwd=code, capture_output=True, text=True, timeout=120, check=True)


def lambda_runtime(into: Path) -> Path:
    """The Lambda runtime's own packages (boto3 & co.), linked from the
    .venv: importable as there, so a cold start that imports them shows it."""
    import importlib.util

    into.mkdir(parents=True, exist_ok=True)
    for name in LAMBDA_RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        source = Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin)
        (into / source.name).symlink_to(source)
    return into


def cold_start(env: Dict[str, str], scenarios: Dict[str, List[Dict[str, Any]]], repeats: int,
               code: Path = ROOT, suffix: str = "", out: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Each scenario is a list of events: the first is the cold request, the
    second the same kind of request warm, for comparison. With `code` and
    `suffix`, the same from other files, added to `out` as "<name>, <suffix>"."""
    if out is None:
        out = {"repeats": repeats, "budget_ms": BUDGET_MS}
        empty = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
            empty.append((time.perf_counter() - t) * 1000)
        out["python_startup_ms"] = round(statistics.median(empty), 1)
    for scenario, events in scenarios.items():
        name = f"{scenario}, {suffix}" if suffix else scenario
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            result = json.loads(_child(env, events, code=code).stdout)
            result["process_ms"] = (time.perf_counter() - t) * 1000
            result["import_and_request_1_ms"] = result["import_app_ms"] + result["request_1_ms"]
            runs.append(result)
        summary: Dict[str, Any] = {key: round(statistics.median(r[key] for r in runs), 1) for key in (
            "process_ms", "import_app_ms", "request_1_ms", "request_2_ms", "import_and_request_1_ms")}
        summary["max_request_1_ms"] = round(max(r["request_1_ms"] for r in runs), 1)
        summary["max_import_and_request_1_ms"] = round(max(r["import_and_request_1_ms"] for r in runs), 1)
        summary["within_budget"] = summary["import_and_request_1_ms"] <= BUDGET_MS
        summary["status"] = [runs[0]["request_1_status"], runs[0]["request_2_status"]]
        summary["x_cache"] = [runs[0]["request_1_x_cache"], runs[0]["request_2_x_cache"]]
        summary["aws_sdk_imported"] = sorted({m for r in runs for m in r["aws_sdk_imported"]})
        summary["imported_from_elsewhere"] = runs[0]["imported_from_elsewhere"]
        out[name] = summary
        print(f"  cold start, first request {name:34s}: process {summary['process_ms']:6.1f} ms = python "
              f"{out['python_startup_ms']:.1f} + import app {summary['import_app_ms']:6.1f} + first request "
              f"{summary['request_1_ms']:6.1f} ms (import + first request {summary['import_and_request_1_ms']:.1f} ms,"
              f" budget {BUDGET_MS}; warm: {summary['request_2_ms']:.2f} ms; X-Cache {summary['x_cache']}"
              + (f"; AWS SDK imported: {summary['aws_sdk_imported']}" if summary["aws_sdk_imported"] else "")
              + ")", flush=True)
    return out


def import_profile(env: Dict[str, str], events: List[Dict[str, Any]], top: int = 8, code: Path = ROOT,
                   label: str = "") -> Dict[str, Any]:
    """`python -X importtime` over import + first request (pymysql and redis
    are imported lazily by the first request): the top-level imports by
    cumulative time, and the packages whose own modules cost the most."""
    stderr = _child(env, events, "-X", "importtime", code=code).stderr
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
    print(f"  importtime{label}, top-level imports (cumulative ms): "
          + ", ".join(f"{m['module']} {m['cumulative_ms']:.0f}" for m in top_level[:5]), flush=True)
    print(f"  importtime{label}, by package (ms in its own modules): "
          + ", ".join(f"{p['package']} {p['self_ms']:.0f}" for p in packages), flush=True)
    return {"top_level": top_level[:5], "by_package": packages}


def build_package(out_dir: Path) -> Dict[str, Any]:
    """`chalice package` of the dev stage into `out_dir` as `make deploy`
    runs it (with the compiled bytecode scripts/deploy/bytecode.py adds; it
    downloads the wheels for requirements.txt): {"zip": path, "seconds": s}
    or {"error": ...}."""
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    from scripts.deploy.chalice_deploy import chalice_command

    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    t = time.perf_counter()
    done = subprocess.run(chalice_command(chalice, "package", "dev", str(out_dir)), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        print(f"  chalice package failed: {done.stderr.strip()[-300:]}", flush=True)
        return {"error": done.stderr.strip()[-1000:]}
    return {"zip": out_dir / "deployment.zip", "seconds": seconds}


def package_size(built: Optional[Dict[str, Any]] = None, top: int = 10) -> Dict[str, Any]:
    """What is in the deployment zip (built here unless given)."""
    if built is None:
        with tempfile.TemporaryDirectory() as out_dir:
            built = build_package(Path(out_dir))
            return package_size(built, top) if "error" not in built else {"error": built["error"]}
    if "error" in built:
        return {"error": built["error"]}
    path, seconds = built["zip"], built["seconds"]
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
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        built = build_package(Path(folder) / "package")
        result = {
            "cold_start": cold_start(env, scenarios, repeats),
            "importtime": import_profile(env, scenarios["register"]),
            "package": package_size(built),
        }
        if "error" in built:
            return result
        fresh = {**env, "PYTHONDONTWRITEBYTECODE": "1"}  # as /var/task: nothing is written
        lambda_runtime(Path(folder) / "lambda-runtime")
        plain = extracted(built["zip"], Path(folder) / "plain", compiled=False)
        cold_start(fresh, scenarios, repeats, code=plain, suffix=NO_BYTECODE, out=result["cold_start"])
        result["importtime_no_bytecode"] = import_profile(fresh, scenarios["register"], code=plain,
                                                          label=f" ({NO_BYTECODE})")
        compiled = extracted(built["zip"], Path(folder) / "compiled", compiled=True)
        result["compiled_bytecode"] = _size_of_bytecode(compiled)
        cold_start(fresh, scenarios, repeats, code=compiled, suffix=COMPILED, out=result["cold_start"])
    for suffix in (NO_BYTECODE, COMPILED):
        worst = max((c for name, c in result["cold_start"].items() if name.endswith(suffix)),
                    key=lambda c: c["import_and_request_1_ms"])
        print(f"  cold start budget, {suffix}: import + first request {worst['import_and_request_1_ms']:.0f} ms "
              f"(median, slowest scenario) against {BUDGET_MS} ms: "
              f"{'within' if worst['within_budget'] else 'OVER'}", flush=True)
    return result


def extracted(zip_path: Path, into: Path, *, compiled: bool) -> Path:
    """The deployment zip's files as Lambda unpacks them into /var/task:
    with the bytecode the package ships, or with none (as a package built
    without it would be)."""
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(into)
    if not compiled:
        for cache in list(into.rglob("__pycache__")):
            shutil.rmtree(cache)
    return into


def _size_of_bytecode(folder: Path) -> Dict[str, Any]:
    """What shipping the .pyc would add to the zip."""
    files = list(folder.rglob("*.pyc"))
    unzipped = sum(f.stat().st_size for f in files)
    with tempfile.TemporaryFile() as scratch:
        with zipfile.ZipFile(scratch, "w", zipfile.ZIP_DEFLATED) as z:
            for f in files:
                z.write(f, f.relative_to(folder))
        zipped = scratch.tell()
    print(f"  compiled bytecode: {len(files)} .pyc, {unzipped / 1024:.0f} KB, {zipped / 1024:.0f} KB more in the zip",
          flush=True)
    return {"pyc_files": len(files), "unzipped_bytes": unzipped, "zipped_bytes": zipped}
