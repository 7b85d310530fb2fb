"""Write-through Redis cache of each user's newest inbox entries.

One Redis hash per user, `inbox:{<user_id>}` (the braces are a hash tag, so
every key of a user sits in one cluster slot). Its fields:

    m        the newest seq known to exist for the user
    b        "1" once a refill from the database made the window authoritative
    t        the ticket of a pending refill
    <seq>    that inbox entry as JSON, for seqs in (m - size, m]

Seqs are gapless per user, so a read of (after, after + limit] is provably
complete when `b` is set and every seq from after + 1 up to min(after +
limit, m) is present: then it is a hit and the database is not touched.
Writers only add to keys that exist and only raise `m`, so writes arriving out
of order leave a visible gap, never a wrong answer. A refill only lands if
the ticket its miss left is still there: an eviction or expiry in between
drops the ticket and the refill with it, so a refill built from an older
database read can never overwrite newer knowledge. Each operation is one
named Lua script, one round trip (a group fan-out pipelines all its
recipients into one round trip).

Redis is optional: any Redis error is a miss (see redislink.RedisLink).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .redislink import SKIPPED, RedisLink, Script

TICKET_TTL_SECONDS = 60

# Shared by the scripts that raise `m`: drop the entries that fall out of the
# window when the newest seq goes from old to new (they lie in (old - size, new - size]).
_RAISE_NEWEST = """
local function raise_newest(key, old, new, size)
  for s = math.max(old - size + 1, 1), math.min(new - size, old) do
    redis.call('HDEL', key, tostring(s))
  end
  redis.call('HSET', key, 'm', new)
end
"""

READ = Script("inbox_read", """
-- KEYS[1] the user's window; ARGV: after, limit, ticket, ticket_ttl.
-- Returns {newest, entry...} for a provably complete page, else leaves the
-- ticket for a refill and returns false.
local key = KEYS[1]
local after, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local meta = redis.call('HMGET', key, 'b', 'm')
if meta[1] == '1' then
  local newest = tonumber(meta[2])
  local upper = math.min(after + limit, newest)
  local out = {newest}
  if upper > after then
    local fields = {}
    for s = after + 1, upper do fields[#fields + 1] = tostring(s) end
    local values = redis.call('HMGET', key, unpack(fields))
    for i = 1, #fields do
      if not values[i] then out = nil break end
      out[i + 1] = values[i]
    end
  end
  if out then return out end
end
redis.call('HSET', key, 't', ARGV[3])
if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[4]) end
return false
""")

ADD = Script("inbox_add", _RAISE_NEWEST + """
-- KEYS[1] the user's window; ARGV: seq, entry, size, ttl.
-- Adds a committed entry to a window that exists; returns 1 if it was stored.
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
local seq, size = tonumber(ARGV[1]), tonumber(ARGV[3])
local newest = tonumber(redis.call('HGET', key, 'm') or 0)
if seq <= newest - size then return 0 end
redis.call('HSET', key, ARGV[1], ARGV[2])
if seq > newest then raise_newest(key, newest, seq, size) end
redis.call('EXPIRE', key, ARGV[4])
return 1
""")

REFILL = Script("inbox_refill", _RAISE_NEWEST + """
-- KEYS[1] the user's window; ARGV: ticket, newest, size, ttl, then seq, entry pairs.
-- Lands a database read only if its miss's ticket is still there; never lowers `m`.
local key = KEYS[1]
if redis.call('HGET', key, 't') ~= ARGV[1] then return 0 end
local size = tonumber(ARGV[3])
local old = tonumber(redis.call('HGET', key, 'm') or 0)
local newest = math.max(old, tonumber(ARGV[2]))
if newest > old then raise_newest(key, old, newest, size) else redis.call('HSET', key, 'm', newest) end
for i = 5, #ARGV, 2 do
  if tonumber(ARGV[i]) > newest - size then redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end
redis.call('HSET', key, 'b', '1')
redis.call('HDEL', key, 't')
redis.call('EXPIRE', key, ARGV[4])
return 1
""")


def key_for(user_id: str) -> str:
    return f"inbox:{{{user_id}}}"


def entry_json(item: Mapping[str, Any]) -> str:
    """The cached form of one /read_messages item."""
    return json.dumps(item, separators=(",", ":"))


def _entries_for(item: Mapping[str, Any], seqs: Mapping[str, int]) -> Dict[str, str]:
    """Each recipient's entry of one message: serialized once, only the
    leading seq differs per recipient (the same text entry_json gives)."""
    rest = {k: v for k, v in item.items() if k != "seq"}
    tail = "," + entry_json(rest)[1:] if rest else "}"
    return {user_id: f'{{"seq":{seq}{tail}' for user_id, seq in seqs.items()}


@dataclass(frozen=True)
class Hit:
    newest: int
    items: List[Dict[str, Any]]  # the page, in seq order


@dataclass(frozen=True)
class Miss:
    ticket: Optional[str]  # None when Redis could not be asked


class InboxCache:
    def __init__(self, link: RedisLink, *, size: int, ttl_seconds: int) -> None:
        self._link = link
        self._size = size
        self._ttl = ttl_seconds

    def read(self, *, user_id: str, after: int, limit: int) -> "Hit | Miss":
        ticket = uuid.uuid4().hex
        reply = self._link.guard(
            lambda: self._link.run(READ, [key_for(user_id)], [after, limit, ticket, TICKET_TTL_SECONDS]))
        if reply is SKIPPED:
            return Miss(ticket=None)
        if reply is None:  # the script's false: not provably complete
            return Miss(ticket=ticket)
        return Hit(newest=int(reply[0]), items=[json.loads(v) for v in reply[1:]])

    def refill(self, *, user_id: str, ticket: str, newest: int, items: Sequence[Mapping[str, Any]]) -> None:
        args: List[Any] = [ticket, newest, self._size, self._ttl]
        for item in items[-self._size:]:
            args += [item["seq"], entry_json(item)]
        self._link.guard(lambda: self._link.run(REFILL, [key_for(user_id)], args))

    def add(self, item: Mapping[str, Any], seqs: Mapping[str, int]) -> None:
        """After the commit: one message's entry into each recipient's window
        (`item` is the message as /read_messages returns it, `seqs` each
        recipient's seq of it)."""
        if not seqs:
            return
        calls = [([key_for(user_id)], [seqs[user_id], entry, self._size, self._ttl])
                 for user_id, entry in _entries_for(item, seqs).items()]
        self._link.guard(lambda: self._link.run_many(ADD, calls))

    def ping(self) -> bool:
        return self._link.ping()
