"""Write-through Redis cache of each user's newest stream entries (events).

One Redis hash per user, its window (keys.window). Its fields:

    m        the newest seq known to exist for the user
    b        "1" once a refill from the database made the window authoritative
    t        the ticket of a pending refill
    l        no entry below this seq is held (the window's low-water mark)
    z        the bytes of the entries held
    e        when a delivery last pushed the window's expiry back (ms; see inbox_deliver.lua)
    <seq>    that stream entry (the /sync event) as UTF-8 JSON, for seqs in [l, m]

A window holds at most `size` entries and `budget` bytes, the newest first:
beyond either it simply covers fewer seqs (an entry of 4,096 emoji is about
16 KB), which is still exact, just more misses.

Seqs are gapless per user, so a read of (after, after + limit] is provably
complete when `b` is set and every seq from after + 1 up to min(after +
limit, m) is present: then it is a hit and the database is not touched.
An entry always shows its message's current state: an edit or a deletion
drops the message's earlier entries from every window that holds them (and
any pending refill's ticket), so the next read of them misses and refills
from the database; the text of a deleted message is left nowhere. A
change also records the message's new version (messages.version) under
keys.changes for a day, and a write of an entry from an older version (a
delivery delayed past a later change, even past a refill that read the new
state) is not made: a write that arrives late never brings old text back.
Writers only add to keys that exist and only raise `m`, so writes arriving out
of order leave a visible gap, never a wrong answer. A refill only lands if
the ticket its miss left is still there: an eviction or expiry in between
drops the ticket and the refill with it, so a refill built from an older
database read can never overwrite newer knowledge. Each operation is one
Lua script (lua/inbox_*.lua), one round trip (a group fan-out pipelines all
its recipients into one round trip).

A group message is stored in each recipient's window, not once: one copy
per window keeps every read to one key, one cluster slot and one round
trip, and the byte budget bounds what one sender can make a window hold.

Redis is optional: any Redis error is a miss (see redislink.RedisLink).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import keys
from .metering import count_redis_round_trip
from .redislink import SKIPPED, RedisLink, Script

TICKET_TTL_SECONDS = 60
CHANGE_TTL_SECONDS = 24 * 3600  # far longer than any delivery is late

READ = Script.load("inbox_read")
DELIVER = Script.load("inbox_deliver", include=["window"])
REFILL = Script.load("inbox_refill", include=["window"])
# Each recipient's window, connections and wake channel, as DELIVER names them.
_DELIVER_FORMATS = [keys.format_of(keys.window), keys.format_of(keys.connections), keys.format_of(keys.wake_channel)]
_CHANGES_FORMAT = keys.format_of(keys.changes)
# Recipients per DELIVER call: a call runs atomically, so a huge group is cut
# into calls that each keep Redis busy briefly; all go in one round trip.
DELIVER_CHUNK = 1000


def entry_json(item: Mapping[str, Any]) -> str:
    """The cached form of one event: compact UTF-8 JSON (an escaped emoji
    would take 12 bytes instead of 4)."""
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def entry_tail(item: Mapping[str, Any]) -> str:
    """An entry's JSON after its seq: serialized once per message, the seq
    spliced in per recipient, giving the same text entry_json gives."""
    rest = {k: v for k, v in item.items() if k != "seq"}
    return "," + entry_json(rest)[1:] if rest else "}"


@dataclass(frozen=True)
class Delivery:
    """One event for its recipients (InboxCache.deliver)."""

    item: Mapping[str, Any]  # the event as /sync shows it
    seqs: Mapping[str, int]  # each recipient's seq of it
    stale: Mapping[str, Sequence[int]]  # each recipient's entries it makes stale
    version: int = 0  # the version of its message it shows


@dataclass(frozen=True)
class Hit:
    newest: int
    items: List[Dict[str, Any]]  # the page, in seq order


@dataclass(frozen=True)
class Miss:
    ticket: Optional[str]  # None when Redis could not be asked


class InboxCache:
    def __init__(self, link: RedisLink, *, size: int, ttl_seconds: int, budget_bytes: int) -> None:
        self._link = link
        self._size = size
        self._ttl = ttl_seconds
        self._budget = budget_bytes

    def read(self, *, user_id: str, after: int, limit: int) -> "Hit | Miss":
        ticket = uuid.uuid4().hex
        reply = self._link.guard(
            lambda: self._link.run(READ, [keys.window(user_id)], [after, limit, ticket, TICKET_TTL_SECONDS]))
        if reply is SKIPPED:
            return Miss(ticket=None)
        if reply is None:  # the script's false: not provably complete
            return Miss(ticket=ticket)
        return Hit(newest=int(reply[0]), items=[json.loads(v) for v in reply[1:]])

    def refill(self, *, user_id: str, ticket: str, newest: int, items: Sequence[Mapping[str, Any]]) -> None:
        args: List[Any] = [ticket, newest, self._size, self._ttl, self._budget]
        room = self._budget
        for item in reversed(items[-self._size:]):  # the newest entries that fit the budget
            entry = entry_json(item)
            room -= len(entry.encode())
            if room < 0:
                break
            args += [item["seq"], entry]
        self._link.guard(lambda: self._link.run(REFILL, [keys.window(user_id)], args))

    def deliver_all(self, deliveries: Sequence["Delivery"]) -> Optional[List[Dict[str, List[str]]]]:
        """After the commit, in one round trip for all: each event's entry
        into each of its recipients' windows (the entries it makes stale
        dropped first), each recipient's long-polls woken, and each one's live
        WebSocket connections returned, per event (None when Redis was
        skipped or failed)."""
        chunks: List[Tuple[int, List[str]]] = []  # (which delivery, its recipients in this call)
        calls: List[Tuple[List[str], List[Any]]] = []
        for n, d in enumerate(deliveries):
            users, tail = list(d.seqs), entry_tail(d.item)
            # Entries that show a message's text, and the changes that replace it.
            kind = d.item.get("type")
            message = d.item.get("message_id") if kind in ("message", "edit", "delete") else None
            change = "1" if kind in ("edit", "delete") else "0"
            for start in range(0, len(users), DELIVER_CHUNK):
                chunk = users[start:start + DELIVER_CHUNK]
                chunks.append((n, chunk))
                calls.append(([], [self._size, self._ttl, self._budget, tail, ",".join(chunk),
                                   ",".join(str(d.seqs[u]) for u in chunk), *_DELIVER_FORMATS,
                                   ",".join(";".join(map(str, d.stale.get(u, ()))) for u in chunk), message or "",
                                   d.version, change, _CHANGES_FORMAT, CHANGE_TTL_SECONDS]))
        if not calls:
            return [{} for _ in deliveries]
        replies = self._link.guard(lambda: self._link.run_many(DELIVER, calls))
        if replies is SKIPPED:
            return None
        live: List[Dict[str, List[str]]] = [{} for _ in deliveries]
        for (n, chunk), reply in zip(chunks, replies, strict=True):
            at = 0
            while at < len(reply):  # position (1-based), count, ids ...
                position, count = int(reply[at]), int(reply[at + 1])
                live[n][chunk[position - 1]] = [c.decode() for c in reply[at + 2:at + 2 + count]]
                at += 2 + count
        return live

    def forget(self, user_ids: Sequence[str]) -> bool:
        """Drop these users' windows (they are rebuilt from the database on
        their next read); False when Redis could not be reached."""
        windows = [keys.window(u) for u in set(user_ids)]
        if not windows:
            return True

        def delete() -> None:
            count_redis_round_trip()
            self._link.client.delete(*windows)

        return self._link.guard(delete) is not SKIPPED

    def ping(self) -> bool:
        return self._link.ping()
