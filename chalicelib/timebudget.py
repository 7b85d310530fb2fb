"""How long the current request may still wait: the Lambda invocation's
remaining time less a margin, so every wait (connecting, a statement, a lock,
a retry) ends in time for the app to answer its own 503 with Retry-After
before Lambda's timeout cuts the invocation off (which API Gateway would
answer with a bare 502/504). Set per request by the edge, per thread."""
from __future__ import annotations

import math
import threading
import time
from typing import Any

# Kept for answering: the error path, the response and Lambda's own overhead.
MARGIN_SECONDS = 1.0

_local = threading.local()


def begin(context: Any) -> None:
    """Start the request's budget from its Lambda context (none: no deadline)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    _local.deadline = None if remaining is None else time.monotonic() + remaining() / 1000 - MARGIN_SECONDS


def left() -> float:
    """Seconds this request may still wait (infinite outside a request)."""
    deadline = getattr(_local, "deadline", None)
    return math.inf if deadline is None else deadline - time.monotonic()


def cap(seconds: float) -> float:
    """`seconds`, or less when the request has less left (never below 0)."""
    return max(0.0, min(seconds, left()))


def end() -> None:
    _local.deadline = None

