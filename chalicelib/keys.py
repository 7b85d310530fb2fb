"""Every Redis key and pub/sub channel the app uses, named here and nowhere
else. The braces are a hash tag: every key of one user sits in one cluster
slot, so a script can touch a user's window and connections together.

    inbox:{<user_id>}          hash: the user's cache window (cache.py)
    ws:{<user_id>}             sorted set: live WebSocket connection id -> expiry, ms (connections.py)
    wsconn:{<connection_id>}   string: the connection's user, for $disconnect (connections.py)
    wake:{<user_id>}           channel: a delivery to the user committed (wakeups.py)
    waits:{<user_id>}          sorted set: the user's waiting reads, token -> expiry, ms (waitslots.py)
    rl:{<subject>}:<limit>     hash: a token bucket (ratelimit.py)
    sess:{<session_id>}        string: "1" live or "0" signed out, a cache of the database's (sessions.py)
    ticket:{<nonce>}           string: a connect ticket already used (usecases/live.py)
    chg:{<message_id>}         string: the version of the message's newest edit or deletion (cache.py)

A Redis ACL user for the app needs keys `~inbox:*` `~ws:*` `~wsconn:*`
`~rl:*` `~waits:*` `~sess:*` `~ticket:*` `~chg:*` and channels `&wake:*`.
"""
from __future__ import annotations

from typing import Callable


def _tagged(kind: str, tag: str) -> str:
    """`kind:{tag}`: the braces make `tag` the cluster hash slot's input."""
    return f"{kind}:{{{tag}}}"


def format_of(key: Callable[[str], str]) -> str:
    """A key function's names with %s for the id, for a Lua script that names
    the keys of many users itself (string.format): a group's fan-out passes
    each user's id once rather than three names."""
    return key("%s")


def window(user_id: str) -> str:
    return _tagged("inbox", user_id)


def connections(user_id: str) -> str:
    return _tagged("ws", user_id)


def connection_owner(connection_id: str) -> str:
    return _tagged("wsconn", connection_id)


def wake_channel(user_id: str) -> str:
    return _tagged("wake", user_id)


def bucket(subject: str, limit: str) -> str:
    return f"{_tagged('rl', subject)}:{limit}"


def waits(user_id: str) -> str:
    return _tagged("waits", user_id)


def session(session_id: str) -> str:
    return _tagged("sess", session_id)


def ticket(nonce: str) -> str:
    return _tagged("ticket", nonce)


def changes(message_id: str) -> str:
    return _tagged("chg", message_id)
