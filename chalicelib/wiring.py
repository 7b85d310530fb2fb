"""The composition root: builds this container's use cases from the settings
on first use, then reuses them (and their connections) for every request.
It wires dependencies and decides start-up steps (the embedded default
migrates itself); it does nothing else."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from secrets import token_urlsafe
from typing import Optional

from . import keys
from .auth import TokenSigner, development_secret
from .cache import InboxCache
from .connections import LocalConnections, RedisConnections
from .db import Database
from .migrate import apply_migrations
from .once import UsedOnce
from .push import DirectPusher, LambdaPusher, Pusher, management_url
from .ratelimit import Limit, RateLimiter
from .redislink import RedisLink
from .secrets import RefreshingSigningSecrets, SecretStore, redis_password
from .sessions import SessionStates
from .settings import DATA_DIR, ConfigError, Settings
from .storage import LocalStorage, S3Storage, Storage
from .usecases import Deps, Limits, UseCases
from .waitslots import WaitSlots
from .wakeups import Wakeups

log = logging.getLogger(__name__)

_lock = threading.Lock()
_service: Optional[UseCases] = None
_db: Optional[Database] = None


def _signer(settings: Settings, secrets: SecretStore) -> TokenSigner:
    if not settings.auth_enabled:
        # Nothing is checked, so nothing this server signs may pass anywhere
        # else: a key of its own, for this process only, never the real one.
        return TokenSigner([token_urlsafe(32)])
    if settings.auth_secret:
        try:
            return TokenSigner(settings.auth_secret.split())  # newest first; older ones still verify
        except ConfigError as error:
            raise ConfigError(f"AUTH_SECRET: {error}") from None
    if settings.auth_secret_arn:
        source = RefreshingSigningSecrets(secrets, settings.auth_secret_arn)
        try:
            return TokenSigner(source.load() or [], reload=lambda: source.load(refresh=True), due=source.due)
        except ConfigError as error:
            raise ConfigError(f"secret {settings.auth_secret_arn} (AUTH_SECRET_ARN): {error}") from None
    if settings.in_lambda:
        raise ConfigError("AUTH_SECRET or AUTH_SECRET_ARN must be set in Lambda")
    log.warning("AUTH_SECRET is unset: signing tokens with a local development secret in %s", DATA_DIR)
    return TokenSigner([development_secret(DATA_DIR)])


def _redis(settings: Settings, secrets: SecretStore) -> Optional[RedisLink]:
    if not settings.redis_url:
        return None
    arn = settings.redis_secret_arn
    return RedisLink.from_url(
        settings.redis_url,
        connect_timeout=settings.redis_connect_timeout,
        timeout=settings.redis_timeout,
        backoff_seconds=settings.cache_backoff_seconds,
        credentials=(lambda refresh: redis_password(arn, secrets.get(arn, refresh=refresh))) if arn else None,
    )


def _limits(settings: Settings) -> Limits:
    def per(name: str, count: int, window_ms: int) -> Optional[Limit]:
        return Limit(name, count, window_ms) if count else None

    return Limits(
        sends=per("sends", settings.rate_limit_sends_per_minute, 60_000),
        reads=per("reads", settings.rate_limit_reads_per_minute, 60_000),
        writes=per("writes", settings.rate_limit_writes_per_minute, 60_000),
        registrations=per("registrations", settings.rate_limit_registrations_per_hour, 3_600_000),
        tickets=per("tickets", settings.rate_limit_tickets_per_minute, 60_000),
        frames=per("frames", settings.rate_limit_frames_per_minute, 60_000),
        failures_per_handle=Limit("sign-in failures", settings.sign_in_failures_per_handle, 15 * 60_000),
        failures_per_source=Limit("sign-in failures", settings.sign_in_failures_per_source, 15 * 60_000),
    )


def _pusher(settings: Settings) -> Optional[Pusher]:
    """Push is offered when clients have a WebSocket URL to connect to."""
    if not settings.websocket_url:
        return None
    endpoint = management_url(settings.websocket_url)
    if settings.push_function:  # deployed: the API's VPC has no way out to @connections
        return LambdaPusher(settings.push_function, endpoint, timeout_seconds=settings.push_timeout_seconds)
    return DirectPusher(endpoint, timeout_seconds=settings.push_timeout_seconds)


def _storage(settings: Settings) -> Optional[Storage]:
    """S3 when a bucket is configured; files under data/ on `make run`; none
    in a Lambda without a bucket (its file system is not shared)."""
    if settings.attachments_bucket:
        return S3Storage(settings.attachments_bucket, endpoint_url=settings.attachments_s3_endpoint,
                         region=settings.aws_region)
    if settings.in_lambda:
        return None
    # Beside the SQLite file (data/ by default; a test's own folder for its server).
    url = settings.database_url
    home = Path(url[len("sqlite:///"):]).parent if url.startswith("sqlite:///") else DATA_DIR
    return LocalStorage(home / "attachments")


def build(settings: Settings) -> UseCases:
    global _db
    if not settings.auth_enabled:
        log.warning("AUTH_MODE=none: authentication is OFF; any caller can act as any user")
    secrets = SecretStore()
    signer = _signer(settings, secrets)  # first: a bad secret fails before anything is touched
    _db = Database(settings, secrets=secrets)
    if _db.kind == "sqlite":
        # The embedded default has no deploy step: it migrates itself, once
        # per process, before any request runs (callers hold _lock).
        apply_migrations(_db)
    link = _redis(settings, secrets)
    return UseCases(Deps(
        wakeups=Wakeups(link),
        long_poll_max_seconds=settings.long_poll_max_seconds,
        wait_slots=WaitSlots(link, per_user=settings.long_poll_max_per_user,
                             per_process=settings.long_poll_max_per_process),
        connections=RedisConnections(link) if link else LocalConnections(),
        pusher=_pusher(settings),
        websocket_url=settings.websocket_url,
        retention_days=settings.retention_days,
        edit_window_hours=settings.edit_window_hours,
        storage=_storage(settings),
        max_attachment_bytes=settings.max_attachment_bytes,
        attachment_types=settings.attachment_types,
        db=_db,
        signer=signer,
        auth_enabled=settings.auth_enabled,
        max_group_members=settings.max_group_members,
        cache=InboxCache(link, size=settings.cache_size, ttl_seconds=settings.cache_ttl_seconds,
                         budget_bytes=settings.cache_window_bytes) if link else None,
        limiter=RateLimiter(link),
        limits=_limits(settings),
        sessions=SessionStates.over(_db, link, local_seconds=settings.session_cache_seconds),
        used_tickets=UsedOnce(keys.ticket, link),
    ))


def service() -> UseCases:
    global _service
    if _service is None:
        with _lock:
            if _service is None:
                _service = build(Settings.from_env())
    return _service


def reset() -> None:
    """Forget the service so the next request rebuilds it from the environment."""
    global _service, _db
    with _lock:
        if _db is not None:
            _db.close()
        _service, _db = None, None
