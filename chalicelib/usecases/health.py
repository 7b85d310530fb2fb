"""Whether the database and the cache answer."""
from __future__ import annotations

from .deps import Deps
from .results import HealthReport


class Health:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def check(self) -> HealthReport:
        cache = self._deps.cache
        return HealthReport(
            database="ok" if self._deps.db.ping() else "unavailable",
            cache="off" if cache is None else "ok" if cache.ping() else "unavailable",
        )
