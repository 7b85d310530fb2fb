"""Write-through Redis cache of each user's newest inbox entries.

One Redis hash per user, `inbox:{<user_id>}` (the braces are a hash tag, so
every key of a user sits in one cluster slot). Its fields:

    m        the newest seq known to exist for the user
    b        "1" once a refill from the database made the window authoritative
    t        the ticket of a pending refill
    l        no entry below this seq is held (the window's low-water mark)
    z        the bytes of the entries held
    <seq>    that inbox entry as UTF-8 JSON, for seqs in [l, m]

A window holds at most `size` entries and `budget` bytes, the newest first:
beyond either it simply covers fewer seqs (an entry of 4,096 emoji is about
16 KB), which is still exact, just more misses.

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

A group message is stored in each recipient's window, not once: one copy
per window keeps every read to one key, one cluster slot and one round
trip, and the byte budget bounds what one sender can make a window hold.

Redis is optional: any Redis error is a miss (see redislink.RedisLink).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .metering import count_redis_round_trip
from .redislink import SKIPPED, RedisLink, Script

TICKET_TTL_SECONDS = 60

# The window's two trims, shared by the scripts that write entries. Entries
# are only ever held in [low, held]; each returns the new low and bytes, and
# the caller writes them (l, z) with its own HSET.
_WINDOW = """
-- Below the newest `size` seqs up to `top`: at most `size` seqs, one HDEL.
local function trim_to_size(key, low, held, top, size, bytes)
  local floor = top - size + 1
  local drop = {}
  for s = low, math.min(floor - 1, held) do drop[#drop + 1] = tostring(s) end
  for _, f in ipairs(drop) do bytes = bytes - redis.call('HSTRLEN', key, f) end
  if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end
  return math.max(low, floor), bytes
end
-- Over `budget` bytes: the oldest go first (an entry already written counts).
local function trim_to_budget(key, low, top, budget, bytes)
  while bytes > budget and low <= top do
    bytes = bytes - redis.call('HSTRLEN', key, tostring(low))
    redis.call('HDEL', key, tostring(low))
    low = low + 1
  end
  return low, bytes
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

DELIVER = Script("inbox_deliver", _WINDOW + """
-- KEYS: each recipient's window, inbox:{<user>}; its live WebSocket
-- connections, ws:{<user>} (zset: connection id -> expiry in ms, see
-- connections.py), share the hash tag and so the slot, and are named from it
-- here rather than passed: a group of 10,000 makes every argument count.
-- ARGV: size, ttl, budget, the entry's JSON after its seq, the recipients'
-- seqs as one comma-separated text (in KEYS order).
-- After a commit, for one message: wakes each recipient's long-polls, adds
-- the entry to each window that exists, and returns, flat, the position,
-- count and ids of every recipient that has live connections (most have none).
local size, ttl, budget, tail = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out, i = {}, 0
for seq_s in string.gmatch(ARGV[5], '[^,]+') do
  i = i + 1
  local key = KEYS[i]
  local tag = string.sub(key, 7)  -- inbox:{<user>} -> {<user>}
  redis.call('PUBLISH', 'wake:' .. tag, seq_s)
  local live = redis.call('ZRANGEBYSCORE', 'ws:' .. tag, now, '+inf')
  if #live > 0 then
    out[#out + 1] = i
    out[#out + 1] = #live
    for _, id in ipairs(live) do out[#out + 1] = id end
  end
  -- m, l, z and t, b: all nil means the window does not exist (writers never create one)
  local meta = redis.call('HMGET', key, 'm', 'l', 'z', 't', 'b')
  if meta[1] or meta[4] or meta[5] then
    local seq, newest = tonumber(seq_s), tonumber(meta[1] or 0)
    if seq > newest - size then
      local entry = '{"seq":' .. seq_s .. tail
      local bytes = tonumber(meta[3] or 0) + #entry - redis.call('HSTRLEN', key, seq_s)
      local low = tonumber(meta[2] or seq)
      if seq < low then low = seq end
      local top = math.max(newest, seq)
      -- seq is at or above the floor, so the size trim never drops it; the
      -- entry and the window's bounds then go in one HSET.
      low, bytes = trim_to_size(key, low, newest, top, size, bytes)
      redis.call('HSET', key, seq_s, entry, 'm', top, 'l', low, 'z', bytes)
      if bytes > budget then
        low, bytes = trim_to_budget(key, low, top, budget, bytes)
        redis.call('HSET', key, 'l', low, 'z', bytes)
      end
      redis.call('EXPIRE', key, ttl)
    end
  end
end
return out
""")
# Recipients per DELIVER call: a call runs atomically, so a huge group is cut
# into calls that each keep Redis busy briefly; all go in one round trip.
DELIVER_CHUNK = 1000

REFILL = Script("inbox_refill", _WINDOW + """
-- KEYS[1] the user's window; ARGV: ticket, newest, size, ttl, budget, then seq, entry pairs.
-- Lands a database read only if its miss's ticket is still there; never lowers `m`.
local key = KEYS[1]
local meta = redis.call('HMGET', key, 't', 'm', 'l', 'z')
if meta[1] ~= ARGV[1] then return 0 end
local size = tonumber(ARGV[3])
local newest = math.max(tonumber(meta[2] or 0), tonumber(ARGV[2]))
local low = tonumber(meta[3] or (newest + 1))
local bytes = tonumber(meta[4] or 0)
for i = 6, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > newest - size then
    bytes = bytes + #ARGV[i + 1] - redis.call('HSTRLEN', key, ARGV[i])
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
    if seq < low then low = seq end
  end
end
low, bytes = trim_to_size(key, low, newest, newest, size, bytes)
low, bytes = trim_to_budget(key, low, newest, tonumber(ARGV[5]), bytes)
redis.call('HSET', key, 'm', newest, 'l', low, 'z', bytes, 'b', '1')
redis.call('HDEL', key, 't')
redis.call('EXPIRE', key, ARGV[4])
return 1
""")


def key_for(user_id: str) -> str:
    return f"inbox:{{{user_id}}}"


def entry_json(item: Mapping[str, Any]) -> str:
    """The cached form of one /read_messages item: compact UTF-8 JSON (an
    escaped emoji would take 12 bytes instead of 4)."""
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def entry_tail(item: Mapping[str, Any]) -> str:
    """An entry's JSON after its seq: serialized once per message, the seq
    spliced in per recipient, giving the same text entry_json gives."""
    rest = {k: v for k, v in item.items() if k != "seq"}
    return "," + entry_json(rest)[1:] if rest else "}"


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
            lambda: self._link.run(READ, [key_for(user_id)], [after, limit, ticket, TICKET_TTL_SECONDS]))
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
        self._link.guard(lambda: self._link.run(REFILL, [key_for(user_id)], args))

    def deliver(self, item: Mapping[str, Any], seqs: Mapping[str, int]) -> Optional[Dict[str, List[str]]]:
        """After the commit, in one round trip: one message's entry into each
        recipient's window, each recipient's long-polls woken, and each
        recipient's live WebSocket connections returned (None when Redis was
        skipped or failed). `item` is the message as /read_messages returns
        it, `seqs` each recipient's seq of it."""
        if not seqs:
            return {}
        users, tail = list(seqs), entry_tail(item)
        chunks = [users[start:start + DELIVER_CHUNK] for start in range(0, len(users), DELIVER_CHUNK)]
        calls = [([key_for(u) for u in chunk],
                  [self._size, self._ttl, self._budget, tail, ",".join(str(seqs[u]) for u in chunk)])
                 for chunk in chunks]
        replies = self._link.guard(lambda: self._link.run_many(DELIVER, calls))
        if replies is SKIPPED:
            return None
        live: Dict[str, List[str]] = {}
        for chunk, reply in zip(chunks, replies):
            at = 0
            while at < len(reply):  # position (1-based), count, ids ...
                position, count = int(reply[at]), int(reply[at + 1])
                live[chunk[position - 1]] = [c.decode() for c in reply[at + 2:at + 2 + count]]
                at += 2 + count
        return live

    def forget(self, user_ids: Sequence[str]) -> bool:
        """Drop these users' windows (they are rebuilt from the database on
        their next read); False when Redis could not be reached."""
        keys = [key_for(u) for u in set(user_ids)]
        if not keys:
            return True

        def delete() -> None:
            count_redis_round_trip()
            self._link.client.delete(*keys)

        return self._link.guard(delete) is not SKIPPED

    def ping(self) -> bool:
        return self._link.ping()
