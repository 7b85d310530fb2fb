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
database read can never overwrite newer knowledge. Everything runs in one
Lua script, one round trip per request (a group fan-out pipelines all its
recipients into one round trip).

Redis is optional: any Redis error is a miss, and after one the cache is
skipped for `backoff` seconds so a dead Redis adds no per-request timeout.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

TICKET_TTL_SECONDS = 60
_SKIPPED = object()  # what a guarded call gives when Redis was skipped or failed

_SCRIPT = """
local key, op = KEYS[1], ARGV[1]

-- Raise the newest seq from old to new and drop the entries that fall out of
-- the window (they all lie in (old - size, new - size]).
local function raise_newest(old, new, size)
  for s = math.max(old - size + 1, 1), math.min(new - size, old) do
    redis.call('HDEL', key, tostring(s))
  end
  redis.call('HSET', key, 'm', new)
end

if op == 'read' then
  -- ARGV: after, limit, ticket, ticket_ttl
  local after, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
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
  redis.call('HSET', key, 't', ARGV[4])
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[5]) end
  return false
elseif op == 'add' then
  -- ARGV: seq, entry, size, ttl
  if redis.call('EXISTS', key) == 0 then return 0 end
  local seq, size = tonumber(ARGV[2]), tonumber(ARGV[4])
  local newest = tonumber(redis.call('HGET', key, 'm') or 0)
  if seq <= newest - size then return 0 end
  redis.call('HSET', key, ARGV[2], ARGV[3])
  if seq > newest then raise_newest(newest, seq, size) end
  redis.call('EXPIRE', key, ARGV[5])
  return 1
elseif op == 'refill' then
  -- ARGV: ticket, newest, size, ttl, then seq, entry pairs
  if redis.call('HGET', key, 't') ~= ARGV[2] then return 0 end
  local size = tonumber(ARGV[4])
  local old = tonumber(redis.call('HGET', key, 'm') or 0)
  local newest = math.max(old, tonumber(ARGV[3]))
  if newest > old then raise_newest(old, newest, size) else redis.call('HSET', key, 'm', newest) end
  for i = 6, #ARGV, 2 do
    if tonumber(ARGV[i]) > newest - size then redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
  end
  redis.call('HSET', key, 'b', '1')
  redis.call('HDEL', key, 't')
  redis.call('EXPIRE', key, ARGV[5])
  return 1
end
return redis.error_reply('unknown op')
"""
_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()


class _SecretCredentials:
    """redis-py credential provider: asked once per new connection."""

    def __init__(self, fetch: Callable[[bool], Tuple[Optional[str], str]]) -> None:
        self._fetch = fetch
        self.refresh_next = False

    def get_credentials(self) -> Tuple[str, ...]:
        refresh, self.refresh_next = self.refresh_next, False
        username, password = self._fetch(refresh)
        return (username, password) if username else (password,)


def key_for(user_id: str) -> str:
    return f"inbox:{{{user_id}}}"


@dataclass(frozen=True)
class Hit:
    newest: int
    entries: List[str]  # JSON of each entry, in seq order


@dataclass(frozen=True)
class Miss:
    ticket: Optional[str]  # None when Redis could not be asked


class InboxCache:
    def __init__(
        self,
        client: Any,
        *,
        size: int,
        ttl_seconds: int,
        backoff_seconds: float,
        credentials: Optional[_SecretCredentials] = None,
    ) -> None:
        import redis  # only loaded when a cache is configured

        self._errors = redis.RedisError
        self._no_script = redis.exceptions.NoScriptError
        self._client = client
        self._size = size
        self._ttl = ttl_seconds
        self._backoff = backoff_seconds
        self._down_until = 0.0
        self._down = False
        self._state_lock = threading.Lock()
        self._auth_error = redis.AuthenticationError
        self._credentials = credentials

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        size: int,
        ttl_seconds: int,
        connect_timeout: float,
        timeout: float,
        backoff_seconds: float,
        credentials: Optional[Callable[[bool], Tuple[Optional[str], str]]] = None,
    ) -> "InboxCache":
        """`credentials(refresh)` gives (username or None, password) for each
        new connection, when they come from a secret rather than the URL."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        provider = _SecretCredentials(credentials) if credentials else None
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=timeout,
            # No client-side retries: a failure opens the back-off instead.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            credential_provider=provider,
        )
        return cls(
            client, size=size, ttl_seconds=ttl_seconds, backoff_seconds=backoff_seconds, credentials=provider
        )

    # ------------------------------------------------------------- availability

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _guard(self, call: Callable[[], T]) -> Any:
        """Run one Redis round trip; _SKIPPED if Redis is skipped or failed."""
        if not self.available:
            return _SKIPPED
        try:
            result = call()
        except self._errors as exc:
            if isinstance(exc, self._auth_error) and self._credentials is not None:
                self._credentials.refresh_next = True  # rotated? the next connection refetches
            with self._state_lock:
                self._down_until = time.monotonic() + self._backoff
                if not self._down:
                    self._down = True
                    log.warning("cache unavailable (%s); skipping it for %.1fs at a time", type(exc).__name__, self._backoff)
            return _SKIPPED
        if self._down:
            with self._state_lock:
                if self._down:
                    self._down = False
                    log.warning("cache available again")
        return result

    def _eval(self, user_id: str, *args: Any) -> Any:
        return self._evalsha(_SHA, _SCRIPT, key_for(user_id), *args)

    def _evalsha(self, sha: str, script: str, key: str, *args: Any) -> Any:
        try:
            return self._client.evalsha(sha, 1, key, *args)
        except self._no_script:  # a restarted or failed-over Redis forgot it
            self._client.script_load(script)
            return self._client.evalsha(sha, 1, key, *args)

    def run_script(self, sha: str, script: str, key: str, *args: Any) -> Any:
        """Another one-key script on this connection and back-off (rate limits);
        None when Redis is skipped or failed."""
        reply = self._guard(lambda: self._evalsha(sha, script, key, *args))
        return None if reply is _SKIPPED else reply

    # ------------------------------------------------------------- operations

    def read(self, *, user_id: str, after: int, limit: int) -> "Hit | Miss":
        ticket = uuid.uuid4().hex
        reply = self._guard(lambda: self._eval(user_id, "read", after, limit, ticket, TICKET_TTL_SECONDS))
        if reply is _SKIPPED:
            return Miss(ticket=None)
        if reply is None:  # the script's false: not provably complete
            return Miss(ticket=ticket)
        return Hit(newest=int(reply[0]), entries=[v.decode() for v in reply[1:]])

    def refill(self, *, user_id: str, ticket: str, newest: int, entries: Sequence[Tuple[int, str]]) -> None:
        args: List[Any] = ["refill", ticket, newest, self._size, self._ttl]
        for seq, entry in entries[-self._size:]:
            args += [seq, entry]
        self._guard(lambda: self._eval(user_id, *args))

    def add(self, deliveries: Dict[str, Tuple[int, str]]) -> None:
        """Write each recipient's new entry (seq, JSON) after the commit."""
        if not deliveries:
            return

        def run() -> None:
            for attempt in (1, 2):
                pipe = self._client.pipeline(transaction=False)
                for user_id, (seq, entry) in deliveries.items():
                    pipe.evalsha(_SHA, 1, key_for(user_id), "add", seq, entry, self._size, self._ttl)
                results = pipe.execute(raise_on_error=False)
                failures = [r for r in results if isinstance(r, Exception)]
                if not failures:
                    return
                if attempt == 1 and all(isinstance(r, self._no_script) for r in failures):
                    self._client.script_load(_SCRIPT)
                    continue
                raise failures[0]

        self._guard(run)

    def ping(self) -> bool:
        return self._guard(self._client.ping) is True
