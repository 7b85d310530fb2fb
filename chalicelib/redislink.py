"""The app's one link to Redis: a client made once with explicit timeouts and
no client-side retries, named Lua scripts run by their SHA (loaded again when
a restarted or failed-over Redis forgot them), and a back-off: after any
Redis error the link is skipped for `backoff_seconds`, so a dead Redis costs
no per-request timeout. Every user of Redis (the inbox cache, the rate
limiter) goes through it, so they share one connection pool and one back-off.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar

from . import checks
from .metering import count_redis_round_trip

log = logging.getLogger(__name__)
T = TypeVar("T")

SKIPPED = object()  # what a guarded call gives when Redis was skipped or failed


LUA = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class Script:
    """A Lua script with a name for logs and its KEYS/ARGV written at its head."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    @classmethod
    def load(cls, name: str, *, include: Sequence[str] = ()) -> "Script":
        """lua/<name>.lua, after the shared functions of each lua/<include>.lua."""
        parts = [(LUA / f"{part}.lua").read_text(encoding="utf-8") for part in (*include, name)]
        return cls(name, "\n".join(parts))


class _SecretCredentials:
    """redis-py credential provider: asked once per new connection."""

    def __init__(self, fetch: Callable[[bool], Tuple[Optional[str], str]]) -> None:
        self._fetch = fetch
        self.refresh_next = False

    def get_credentials(self) -> Tuple[str, ...]:
        refresh, self.refresh_next = self.refresh_next, False
        username, password = self._fetch(refresh)
        return (username, password) if username else (password,)


class RedisLink:
    def __init__(
        self, client: Any, *, backoff_seconds: float, credentials: Optional[_SecretCredentials] = None
    ) -> None:
        import redis  # only loaded when Redis is configured

        self._errors = redis.RedisError
        self._pool_full = redis.exceptions.MaxConnectionsError
        self._no_script = redis.exceptions.NoScriptError
        self._auth_error = redis.AuthenticationError
        self.client = client
        self._backoff = backoff_seconds
        self._credentials = credentials
        self._down_until = 0.0
        self._down = False
        self._state_lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connect_timeout: float,
        timeout: float,
        backoff_seconds: float,
        credentials: Optional[Callable[[bool], Tuple[Optional[str], str]]] = None,
    ) -> "RedisLink":
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
            # A new connection's first command waits for the handshake's
            # round trips: RESP2 needs no HELLO, and no CLIENT SETINFO is
            # sent (3 round trips to a first reply instead of 7; the app
            # uses nothing of RESP3).
            protocol=2, driver_info=None,
        )
        return cls(client, backoff_seconds=backoff_seconds, credentials=provider)

    # ------------------------------------------------------------- availability

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def guard(self, call: Callable[[], T]) -> Any:
        """Run `call` (Redis round trips); SKIPPED if Redis is skipped or failed."""
        if not self.available:
            self._skip(checks.take(self))
            return SKIPPED
        try:
            result = call()
        except self._pool_full:
            # This process's own connections are all in use: Redis itself is
            # fine, so no back-off (which would turn the cache and the rate
            # limits off for everyone); only this call goes without.
            log.warning("redis connection pool exhausted; this call skips Redis")
            return SKIPPED
        except self._errors as exc:
            if isinstance(exc, self._auth_error) and self._credentials is not None:
                self._credentials.refresh_next = True  # rotated? the next connection refetches
            with self._state_lock:
                self._down_until = time.monotonic() + self._backoff
                if not self._down:
                    self._down = True
                    log.warning("cache unavailable (%s); skipping it for %.1fs at a time",
                                type(exc).__name__, self._backoff)
            return SKIPPED
        if self._down:
            with self._state_lock:
                if self._down:
                    self._down = False
                    log.warning("cache available again")
        return result

    # ------------------------------------------------------------- round trips

    def _load(self, script: Script) -> None:
        count_redis_round_trip()
        self.client.script_load(script.source)

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """One script call (unguarded: callers wrap it in guard())."""
        return self.run_many(script, [(keys, args)])[0]

    def run_many(self, script: Script, calls: Sequence[Tuple[Sequence[str], Sequence[Any]]]) -> List[Any]:
        """The same script for many key sets, pipelined into one round trip
        with the request's pending checks (checks.py), whose verdicts run first."""
        riders = checks.take(self)
        try:
            results = self._pipelined(riders, [script], lambda pipe: [
                pipe.evalsha(script.sha, len(keys), *keys, *args) for keys, args in calls])
        except BaseException:
            self._skip(riders)
            raise
        for check, reply in zip(riders, results[:len(riders)], strict=True):
            check.verdict(SKIPPED if isinstance(reply, Exception) else reply)
        mine = results[len(riders):]
        failures = [r for r in mine if isinstance(r, Exception)]
        if failures:
            raise failures[0]
        return mine

    def ask(self, riders: Sequence[checks.Check]) -> None:
        """These checks in one round trip of their own (checks.flush)."""
        if not riders:
            return
        results = self.guard(lambda: self._pipelined(riders, [], lambda pipe: None))
        for n, check in enumerate(riders):
            reply = SKIPPED if results is SKIPPED else results[n]
            check.verdict(SKIPPED if isinstance(reply, Exception) else reply)

    def _skip(self, riders: Sequence[checks.Check]) -> None:
        """Redis failed (or is skipped) under these checks: each decides without it."""
        for check in riders:
            check.verdict(SKIPPED)

    def _pipelined(self, riders: Sequence[checks.Check], scripts: Sequence[Script],
                   queue: Callable[[Any], Any]) -> List[Any]:
        """The checks' commands, then `queue`'s, in one round trip; once more
        after loading the scripts if Redis forgot them (a restart or failover)."""
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            for check in riders:
                check.queue(pipe)
            queue(pipe)
            count_redis_round_trip()
            results = pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, self._no_script) for r in results):
                for script in {*scripts, *(s for check in riders for s in check.scripts)}:
                    self._load(script)
                continue
            return list(results)
        raise AssertionError("unreachable")

    def ping(self) -> bool:
        def ping() -> Any:
            count_redis_round_trip()
            return self.client.ping()

        return self.guard(ping) is True
