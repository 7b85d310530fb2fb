"""Registering users and knowing who calls."""
from __future__ import annotations

import ipaddress
import uuid
from typing import Optional

from ..db import Tx
from ..repositories import InboxCounters, Users
from .deps import Deps
from .results import Registered


class Accounts:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def authenticate(self, authorization: Optional[str]) -> Optional[str]:
        """The caller's user id from a Bearer token; None when auth is off."""
        if not self._deps.auth_enabled:
            return None
        return self._deps.signer.user_from_header(authorization)

    def register(self, *, user_name: str, source_ip: str) -> Registered:
        deps = self._deps
        deps.limit(deps.limits.registrations, f"ip:{source_network(source_ip)}")
        user_id = str(uuid.uuid4())

        def work(tx: Tx) -> None:
            Users(tx).add(user_id=user_id, name=user_name, created_at=deps.now())
            InboxCounters(tx).add(user_id=user_id)

        deps.db.run(work, write=True)
        return Registered(user_id=user_id, user_name=user_name, token=deps.signer.issue(user_id))


def source_network(source_ip: str) -> str:
    """Whom a registration limit counts: an IPv4 address, or an IPv6 /64 (one
    subscriber's whole prefix: an address of its own per request is free)."""
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return source_ip
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
