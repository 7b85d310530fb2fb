"""The use cases, by area, over one set of dependencies (Deps). Each is one
unit of work against the database; the rules the API promises (blocking,
membership, idempotency, the cursor) live here and raise domain errors,
which only the edge (web.py) maps to HTTP."""
from __future__ import annotations

from .accounts import Accounts
from .blocking import Blocking
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
        self.health = Health(deps)
        self.live = Live(deps)
        self.retention = Retention(deps)


__all__ = ["Deps", "Limits", "UseCases"]
