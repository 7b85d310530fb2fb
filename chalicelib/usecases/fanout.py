"""After a commit that added an event to some streams: wake those users'
long-polls in this process; with Redis, in one round trip, write the event
through to each stream's cache window (dropping the entries it made stale),
wake every container's long-polls and learn who is connected; then push to
those connections. It may run twice for one event (a send's replay repeats
it): a window keeps one entry per seq, and clients drop what their cursor
has passed."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from .deps import Deps


def publish(deps: Deps, event: Mapping[str, Any], seqs: Mapping[str, int],
            stale: Optional[Mapping[str, Sequence[int]]] = None, version: int = 0) -> None:
    """`event` as /sync shows it (its seq is each user's, from `seqs`), of
    its message's `version` (an entry of an older one is never cached after a newer change)."""
    if not seqs:
        return
    deps.wakeups.notify(seqs)
    live: Optional[Dict[str, List[str]]]
    if deps.cache is not None:
        live = deps.cache.deliver(event, seqs, stale, version)  # None: Redis is down, so no push either
    else:
        live = deps.connections.of(seqs) if deps.pusher is not None else None
    if live and deps.pusher is not None:
        gone = deps.pusher.push(event, [(u, c, seqs[u]) for u, ids in live.items() for c in ids])
        deps.connections.forget(gone)
