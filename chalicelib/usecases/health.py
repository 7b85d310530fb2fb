"""Whether the database and the cache answer. /health is public, so a
healthy answer is reused for a few seconds per container: a flood of
anonymous probes costs a healthy database at most one round trip per
container per interval. An unhealthy answer is not reused, so recovery
shows at once."""
from __future__ import annotations

import threading
import time
from typing import Optional, Tuple

from .deps import Deps
from .results import HealthReport

CACHE_SECONDS = 5.0


class Health:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._last: Optional[Tuple[float, HealthReport]] = None
        self._lock = threading.Lock()

    def check(self) -> HealthReport:
        last = self._last
        if last is not None and time.monotonic() - last[0] < CACHE_SECONDS:
            return last[1]
        with self._lock:  # one probe at a time; the others take its answer
            last = self._last
            if last is not None and time.monotonic() - last[0] < CACHE_SECONDS:
                return last[1]
            cache = self._deps.cache
            report = HealthReport(
                database="ok" if self._deps.db.ping() else "unavailable",
                cache="off" if cache is None else "ok" if cache.ping() else "unavailable",
            )
            self._last = (time.monotonic(), report) if report.ok and report.cache != "unavailable" else None
            return report
