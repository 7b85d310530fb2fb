"""Configuration: every environment variable the app reads, read once, here."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, Mapping, Optional

from .contract import MAX_WAIT_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Local state of the embedded default (SQLite file, dev signing secret); git-ignored.
DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_DATABASE_URL = f"sqlite:///{DATA_DIR / 'messaging.sqlite3'}"
# What an attachment may be unless ATTACHMENT_TYPES says otherwise: pictures,
# documents, sound and video a browser shows or plays; nothing it would run
# (no HTML, no SVG).
ATTACHMENT_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "application/pdf",
                    "text/plain", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav", "audio/webm",
                    "video/mp4", "video/webm", "video/quicktime")


def private_dir(path: Path) -> None:
    """`path` as a folder only its owner may enter (data/ holds the local
    database and the development signing secret)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


class ConfigError(ValueError):
    """An environment variable has a value the app cannot run with."""


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds") from None
    if not 0 < value <= 3600:
        raise ConfigError(f"{name} must be more than 0 and at most 3600 seconds")
    return value


def _database_url(env: Mapping[str, str]) -> str:
    """DATABASE_URL, checked for what the app will parse of it later."""
    from urllib.parse import parse_qs, urlsplit

    url = env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    if url.startswith("sqlite:///"):
        if len(url) == len("sqlite:///"):
            raise ConfigError("DATABASE_URL sqlite:/// needs a file path after it")
        return url
    if not url.startswith("mysql://"):
        raise ConfigError("DATABASE_URL must start with mysql:// or sqlite:///")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        raise ConfigError("DATABASE_URL has a malformed host or port (mysql://user:pass@host:3306/db)") from None
    if not parts.path.strip("/"):
        raise ConfigError("DATABASE_URL must name the database (mysql://user:pass@host:3306/db)")
    tls = parse_qs(parts.query).get("tls", ["verify"])[-1]
    if tls not in ("off", "verify"):
        raise ConfigError("DATABASE_URL's tls must be 'off' or 'verify'")
    return url


def _text(env: Mapping[str, str], name: str) -> Optional[str]:
    """A setting's text; None when it is unset or blank."""
    return env.get(name, "").strip() or None


def _url(env: Mapping[str, str], name: str, schemes: tuple) -> Optional[str]:
    raw = _text(env, name)
    if raw and not raw.startswith(schemes):
        raise ConfigError(f"{name} must start with {' or '.join(schemes)}")
    return raw


@dataclass(frozen=True)
class Settings:
    database_url: str
    db_secret_arn: Optional[str]
    app_db_secret_arn: Optional[str]  # the migrate Lambda: the API's own user, to create and grant
    db_connect_timeout: float
    db_read_timeout: float
    db_write_timeout: float
    redis_url: Optional[str]
    redis_secret_arn: Optional[str]
    redis_connect_timeout: float
    redis_timeout: float
    cache_size: int
    cache_window_bytes: int
    cache_ttl_seconds: int
    cache_backoff_seconds: float
    auth_mode: str
    auth_secret: Optional[str]
    auth_secret_arn: Optional[str]
    max_group_members: int
    rate_limit_sends_per_minute: int  # 0 = off
    rate_limit_reads_per_minute: int
    rate_limit_writes_per_minute: int
    rate_limit_registrations_per_hour: int
    rate_limit_tickets_per_minute: int  # /connect_ticket, per user
    rate_limit_frames_per_minute: int  # WebSocket frames, per connection
    session_cache_seconds: int  # how long a container trusts its own answer that a session is live
    sign_in_failures_per_handle: int  # wrong passwords per handle in 15 minutes (on by default)
    sign_in_failures_per_source: int  # wrong passwords and link codes per source network in 15 minutes
    long_poll_max_seconds: int  # 0 = waiting off
    long_poll_max_per_user: int  # waiting reads one user may hold, across every container
    long_poll_max_per_process: int  # waiting reads one process (container) holds in all
    websocket_url: Optional[str]  # where clients connect for push; None = not offered
    push_function: Optional[str]  # deployed: the Lambda that posts to @connections
    forget_function: Optional[str]  # deployed: the in-VPC Lambda that forgets gone connections
    push_timeout_seconds: float
    retention_days: Optional[int]  # None: keep every message
    edit_window_hours: int  # how long after sending a message can be edited
    attachments_bucket: Optional[str]  # S3; None: files under data/attachments (make run), none deployed
    attachments_s3_endpoint: Optional[str]  # another S3 endpoint (the tests' moto server)
    aws_region: Optional[str]  # the Lambda's (AWS_REGION): presigned URLs name the regional endpoint
    max_attachment_bytes: int
    attachment_types: FrozenSet[str]  # the media types an upload may declare
    in_lambda: bool

    @property
    def auth_enabled(self) -> bool:
        return self.auth_mode == "token"

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if env is None else env
        auth_mode = env.get("AUTH_MODE", "token").strip().lower() or "token"
        if auth_mode not in ("token", "none"):
            raise ConfigError("AUTH_MODE must be 'token' or 'none'")
        in_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
        if in_lambda and auth_mode == "none" and env.get("AUTH_MODE_NONE_IN_LAMBDA", "").strip() != "allow":
            # Anyone could act as anyone: deployed, that takes a second, explicit switch.
            raise ConfigError("AUTH_MODE=none is refused in Lambda unless AUTH_MODE_NONE_IN_LAMBDA=allow is set too")
        return cls(
            database_url=_database_url(env),
            db_secret_arn=_text(env, "DB_SECRET_ARN"),
            app_db_secret_arn=_text(env, "APP_DB_SECRET_ARN"),
            db_connect_timeout=_float(env, "DB_CONNECT_TIMEOUT", 3.0),
            db_read_timeout=_float(env, "DB_READ_TIMEOUT", 10.0),
            db_write_timeout=_float(env, "DB_WRITE_TIMEOUT", 10.0),
            redis_url=_url(env, "REDIS_URL", ("redis://", "rediss://", "unix://")),
            redis_secret_arn=_text(env, "REDIS_SECRET_ARN"),
            redis_connect_timeout=_float(env, "REDIS_CONNECT_TIMEOUT", 0.1),
            redis_timeout=_float(env, "REDIS_TIMEOUT", 0.1),
            cache_size=_int(env, "CACHE_SIZE", 100, 1, 10_000),
            cache_window_bytes=_int(env, "CACHE_WINDOW_BYTES", 65_536, 1_024, 16 * 1024 * 1024),
            cache_ttl_seconds=_int(env, "CACHE_TTL_SECONDS", 600, 1, 30 * 86400),
            cache_backoff_seconds=_float(env, "CACHE_BACKOFF_SECONDS", 2.0),
            auth_mode=auth_mode,
            auth_secret=_text(env, "AUTH_SECRET"),
            auth_secret_arn=_text(env, "AUTH_SECRET_ARN"),
            max_group_members=_int(env, "MAX_GROUP_MEMBERS", 1024, 2, 10_000),
            rate_limit_sends_per_minute=_int(env, "RATE_LIMIT_SENDS_PER_MINUTE", 0, 0, 1_000_000),
            rate_limit_reads_per_minute=_int(env, "RATE_LIMIT_READS_PER_MINUTE", 0, 0, 1_000_000),
            rate_limit_writes_per_minute=_int(env, "RATE_LIMIT_WRITES_PER_MINUTE", 0, 0, 1_000_000),
            rate_limit_registrations_per_hour=_int(env, "RATE_LIMIT_REGISTRATIONS_PER_HOUR", 0, 0, 1_000_000),
            rate_limit_tickets_per_minute=_int(env, "RATE_LIMIT_TICKETS_PER_MINUTE", 0, 0, 1_000_000),
            rate_limit_frames_per_minute=_int(env, "RATE_LIMIT_FRAMES_PER_MINUTE", 0, 0, 1_000_000),
            session_cache_seconds=_int(env, "SESSION_CACHE_SECONDS", 30, 0, 30),
            sign_in_failures_per_handle=_int(env, "SIGN_IN_FAILURES_PER_HANDLE", 10, 1, 1_000),
            sign_in_failures_per_source=_int(env, "SIGN_IN_FAILURES_PER_SOURCE", 50, 10, 100_000),
            long_poll_max_seconds=_int(env, "LONG_POLL_MAX_SECONDS", MAX_WAIT_SECONDS, 0, MAX_WAIT_SECONDS),
            long_poll_max_per_user=_int(env, "LONG_POLL_MAX_PER_USER", 5, 1, 100),
            long_poll_max_per_process=_int(env, "LONG_POLL_MAX_PER_PROCESS", 64, 1, 10_000),
            websocket_url=_url(env, "WEBSOCKET_URL", ("ws://", "wss://")),
            push_function=_text(env, "PUSH_FUNCTION"),
            forget_function=_text(env, "FORGET_FUNCTION"),
            push_timeout_seconds=_float(env, "PUSH_TIMEOUT_SECONDS", 1.0),
            retention_days=_int(env, "RETENTION_DAYS", 0, 1, 36_500) or None,
            edit_window_hours=_int(env, "EDIT_WINDOW_HOURS", 48, 1, 876_000),
            attachments_bucket=_text(env, "ATTACHMENTS_BUCKET"),
            attachments_s3_endpoint=_url(env, "ATTACHMENTS_S3_ENDPOINT", ("http://", "https://")),
            aws_region=_text(env, "AWS_REGION") or _text(env, "AWS_DEFAULT_REGION"),
            max_attachment_bytes=_int(env, "MAX_ATTACHMENT_BYTES", 25 * 1024 * 1024, 1, 5 * 1024 ** 3),
            attachment_types=frozenset(t.strip().lower() for t in (
                _text(env, "ATTACHMENT_TYPES") or ",".join(ATTACHMENT_TYPES)).split(",") if t.strip()),
            in_lambda=in_lambda,
        )
