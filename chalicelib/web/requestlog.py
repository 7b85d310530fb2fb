"""One JSON line per request: what happened and how long it took, in
CloudWatch's Embedded Metric Format, so the line is also the metrics
(latency, statements and round trips by route and status class, and by
cache path for reads) with no API call. Never parameters, bodies or headers
(tokens and message text live there)."""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Callable, Dict, Optional

from ..metering import meter
from .envelope import request_id_of

request_log = logging.getLogger("chalicelib.requests")
request_log.setLevel(logging.INFO)
if not logging.getLogger().handlers:  # Lambda's runtime and the dev server bring their own handler
    _stderr = logging.StreamHandler(sys.stderr)
    _stderr.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("chalicelib").addHandler(_stderr)

METRICS_NAMESPACE = "Messaging"
_METRICS = [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "DbStatements", "Unit": "Count"},
            {"Name": "DbRoundTrips", "Unit": "Count"}, {"Name": "RedisRoundTrips", "Unit": "Count"}]
_DIMENSIONS = [["Service"], ["Service", "Route"], ["Service", "Route", "StatusClass"]]


def log_request(app: Any, request: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice HTTP middleware: the request's line, after its answer."""
    m = meter()
    started = time.perf_counter()
    statements, round_trips, redis = m.db_statements, m.db_round_trips, m.redis_round_trips
    response = get_response(request)
    cache = response.headers.get("X-Cache")
    context = getattr(app, "lambda_context", None)
    _write({
        "Service": getattr(context, "function_name", None) or app.app_name,
        "Route": request.path,
        "StatusClass": f"{response.status_code // 100}xx",
        "Latency": round((time.perf_counter() - started) * 1000, 3),
        "DbStatements": m.db_statements - statements,
        "DbRoundTrips": m.db_round_trips - round_trips,
        "RedisRoundTrips": m.redis_round_trips - redis,
        "request_id": request_id_of(context),
        "method": request.method,
        "status": response.status_code,
    }, cache)
    return response


def log_malformed(*, status: int, request_id: str, error: Optional[str]) -> None:
    """A request the HTTP server could not parse (the development server's):
    its line names no route and quotes nothing of the request."""
    _write({"Service": "devserver", "Route": "(malformed)", "StatusClass": f"{status // 100}xx", "Latency": 0,
            "DbStatements": 0, "DbRoundTrips": 0, "RedisRoundTrips": 0, "request_id": request_id, "method": "-",
            "status": status, "error": error}, None)


def _write(fields: Dict[str, Any], cache: Optional[str]) -> None:
    line: Dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{"Namespace": METRICS_NAMESPACE,
                                   "Dimensions": _DIMENSIONS + ([["Service", "Cache"]] if cache else []),
                                   "Metrics": _METRICS}],
        },
        **fields,
    }
    if cache:
        line["Cache"] = cache
    request_log.info(json.dumps(line))


def log_job(name: str, body: Dict[str, Any]) -> None:
    """A scheduled job's result. The request log's logger: its level is set,
    so the line reaches CloudWatch where the root logger's default would drop INFO."""
    request_log.info("job %s: %s", name, json.dumps(body))
