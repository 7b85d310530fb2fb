"""After a commit that added an event to some streams: wake those users'
long-polls in this process; with Redis, in one round trip, write the event
through to each stream's cache window (dropping the entries it made stale),
wake every container's long-polls and learn who is connected; then push to
those connections. It may run twice for one event (a send's replay repeats
it): a window keeps one entry per seq, and clients drop what their cursor
has passed."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..cache import Delivery
from .deps import Deps


def publish(deps: Deps, event: Mapping[str, Any], seqs: Mapping[str, int],
            stale: Optional[Mapping[str, Sequence[int]]] = None, version: int = 0) -> None:
    """`event` as /sync shows it (its seq is each user's, from `seqs`), of
    its message's `version` (an entry of an older one is never cached after a newer change)."""
    publish_all(deps, [Delivery(event, seqs, stale or {}, version)])


def publish_all(deps: Deps, deliveries: Sequence[Delivery]) -> None:
    """publish() of several events (a read and its receipt, a deleted
    account's leaves), in Redis's one round trip."""
    deliveries = [d for d in deliveries if d.seqs]
    if not deliveries:
        return
    deps.wakeups.notify([user for d in deliveries for user in d.seqs])
    lives: Optional[List[Dict[str, List[str]]]]
    if deps.cache is not None:
        lives = deps.cache.deliver_all(deliveries)  # None: Redis is down, so no push either
    else:
        lives = [deps.connections.of(d.seqs) for d in deliveries] if deps.pusher is not None else None
    if lives is None or deps.pusher is None:
        return
    for d, live in zip(deliveries, lives, strict=True):
        if live:
            gone = deps.pusher.push(d.item, [(u, c, d.seqs[u]) for u, ids in live.items() for c in ids])
            deps.connections.forget(gone)
