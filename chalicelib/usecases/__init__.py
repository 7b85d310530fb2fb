"""The use cases, by area, over one set of dependencies (Deps): the rules the
API promises (who may act as whom, blocking, membership, idempotency, the
cursor, retention) live here and raise domain errors, which only the edge
(chalicelib/web/) maps to HTTP. A use case runs its database work as units
of work (db.Database.run) and treats Redis (the cache, wake-ups, who is
connected, rate limits) as optional. Each area's results are the dataclasses
of results.py."""
from __future__ import annotations

from .accounts import Accounts
from .attaching import Attaching
from .blocking import Blocking
from .browsing import Browsing
from .conversing import Conversing
from .deps import Deps, Limits
from .health import Health
from .live import Live
from .membership import Membership
from .reading import Reading
from .retention import Retention
from .sending import Sending


class UseCases:
    """Every use case of one container, over the same dependencies."""

    def __init__(self, deps: Deps) -> None:
        self.accounts = Accounts(deps)
        self.blocking = Blocking(deps)
        self.membership = Membership(deps)
        self.sending = Sending(deps)
        self.reading = Reading(deps)
        self.conversing = Conversing(deps)
        self.browsing = Browsing(deps)
        self.attaching = Attaching(deps)
        self.health = Health(deps)
        self.live = Live(deps)
        self.retention = Retention(deps)


__all__ = ["Deps", "Limits", "UseCases"]
