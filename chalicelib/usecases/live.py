"""Live delivery over WebSocket: connect tickets, connecting and
disconnecting, keep-alive pings. Pushing a new message happens after a
send's commit (sending.py); this is the connection side."""
from __future__ import annotations

import time
from typing import Optional

from ..auth import TICKET_SECONDS, Identity
from ..connections import FULL, MAX_CONNECTIONS_PER_USER, UNAVAILABLE
from ..errors import BadRequest, RateLimited, ServiceUnavailable, Unauthorized
from .deps import Deps
from .results import Ticket

PONG = '{"type":"pong"}'


class Live:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    @property
    def websocket_url(self) -> Optional[str]:
        """Where clients connect for pushes; None when this server offers none."""
        return self._deps.websocket_url if self._deps.pusher is not None else None

    def ticket(self, *, caller: Optional[Identity], user_id: str) -> Ticket:
        """A short-lived, single-use ticket naming the caller and its session, for the WebSocket URL."""
        self._deps.act_as(caller.user_id if caller else None, "user_id", user_id)
        self._deps.limit(self._deps.limits.tickets, user_id)
        session_id = caller.session_id if caller else user_id  # auth off: no sessions to sign out
        return Ticket(ticket=self._deps.signer.issue_ticket(user_id, session_id), expires_in=TICKET_SECONDS,
                      url=self.websocket_url)

    def connect(self, *, ticket: Optional[str], connection_id: str) -> str:
        """$connect: the ticket's user, now registered for pushes; Unauthorized
        (the connection is refused) for a missing, forged, expired or used
        ticket, or one whose session was signed out."""
        if not ticket:
            raise Unauthorized("missing ticket: connect with ?ticket=<a ticket from POST /connect_ticket>",
                               token_given=False)
        deps = self._deps
        named = deps.signer.verify_ticket(ticket)
        if not deps.used_tickets.first_use(named.nonce, seconds=named.expires - int(time.time()) + 1):
            raise Unauthorized("this connect ticket was used already: ask for a new one")
        if deps.auth_enabled and not deps.session_states().live(named.session_id):
            raise Unauthorized("this device was signed out: sign in again")
        user_id = named.user_id
        added = deps.connections.add(user_id, connection_id, named.session_id)
        if added == FULL:
            # API Gateway's $connect can refuse only with a status: 429, and
            # the client long-polls instead (its waits are capped too).
            raise RateLimited(f"this user already has {MAX_CONNECTIONS_PER_USER} live connections, the most allowed;"
                              " close one or read with wait", retry_after_seconds=60)
        if added == UNAVAILABLE:
            # Unregistered, it would never be pushed to: refuse, the client long-polls instead.
            raise ServiceUnavailable("live delivery is unavailable right now; read with wait instead")
        return user_id

    def disconnect(self, *, connection_id: str) -> None:
        self._deps.connections.remove(connection_id)

    def forget(self, gone) -> None:
        """(user id, connection id) pairs that posting found gone."""
        self._deps.connections.forget(gone)

    def message(self, *, connection_id: str, body: str) -> None:
        """A frame from the client: only a keep-alive ping, answered with a
        pong. Frames are limited per connection: each one costs an invocation
        here and, for the pong, one of the push function."""
        self._deps.limit(self._deps.limits.frames, f"ws:{connection_id}")
        if body.strip() not in ('{"action":"ping"}', '{"action": "ping"}', "ping"):
            raise BadRequest("body", 'the only message a client sends is {"action":"ping"}')
        if self._deps.pusher is not None:
            self._deps.pusher.post([("", connection_id, PONG)])
