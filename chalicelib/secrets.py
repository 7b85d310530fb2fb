"""Secrets from AWS Secrets Manager: fetched once per container and cached,
fetched again when a credential is refused (so rotation needs no redeploy)."""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .settings import ConfigError

log = logging.getLogger(__name__)

# How often an unknown token key id may trigger a refetch of the signing secrets.
SIGNING_REFRESH_SECONDS = 60.0
# How long fetched signing secrets are used before they are fetched again: the
# longest a secret removed from AUTH_SECRET_ARN keeps working in a warm container.
SIGNING_MAX_AGE_SECONDS = 300.0


def _boto3_fetch() -> Callable[[str], str]:
    import boto3  # in the Lambda runtime; only loaded when an ARN is configured
    from botocore.config import Config

    client = boto3.client(
        "secretsmanager",
        config=Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"}),
    )
    return lambda arn: client.get_secret_value(SecretId=arn)["SecretString"]


class SecretStore:
    def __init__(self, fetch: Optional[Callable[[str], str]] = None) -> None:
        self._fetch = fetch
        self._values: Dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, arn: str, *, refresh: bool = False) -> str:
        with self._lock:
            if refresh or arn not in self._values:
                if self._fetch is None:
                    self._fetch = _boto3_fetch()
                self._values[arn] = self._fetch(arn)
            return self._values[arn]


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _fields(arn: str, value: str, *names: str) -> Dict[str, str]:
    """The named string fields of a JSON-object secret, or ConfigError naming
    the secret and the field (never the value)."""
    data = _json_or_text(value)
    if not isinstance(data, dict):
        raise ConfigError(f"secret {arn} must be a JSON object with {', '.join(repr(n) for n in names)}")
    for name in names:
        if not isinstance(data.get(name), str) or not data[name]:
            raise ConfigError(f"secret {arn} has no string field {name!r}")
    return data


def database_credentials(arn: str, value: str) -> Tuple[str, str]:
    """(username, password) of an RDS-managed master secret."""
    data = _fields(arn, value, "username", "password")
    return data["username"], data["password"]


def redis_password(arn: str, value: str) -> Tuple[Optional[str], str]:
    """(username or None, password) from a plain auth token or a JSON secret
    {"auth_token"} or {"username", "password"}."""
    data = _json_or_text(value)
    if isinstance(data, str):
        if not data.strip():
            raise ConfigError(f"secret {arn} is empty")
        return None, data
    if isinstance(data, dict) and isinstance(data.get("auth_token"), str) and data["auth_token"]:
        return data.get("username"), data["auth_token"]
    data = _fields(arn, value, "password")
    return data.get("username"), data["password"]


def signing_secrets(arn: str, value: str) -> List[str]:
    """Token signing secrets, newest first: whitespace-separated text, or JSON
    {"secrets": [...]}."""
    data = _json_or_text(value)
    if isinstance(data, str):
        found = data.split()
    elif isinstance(data, dict) and isinstance(data.get("secrets"), list):
        found = data["secrets"]
    else:
        raise ConfigError(f"secret {arn} must be whitespace-separated secrets or a JSON object with 'secrets'")
    if not found or not all(isinstance(x, str) for x in found):
        raise ConfigError(f"secret {arn} holds no signing secret (or one that is not a string)")
    return list(found)


class RefreshingSigningSecrets:
    """Signing secrets behind an ARN, fetched again (a) every
    SIGNING_MAX_AGE_SECONDS, so a secret removed by rotation stops verifying
    and signing within that time, and (b) when a token names an unknown key
    id, at most once every SIGNING_REFRESH_SECONDS, so a key added elsewhere
    is picked up at once."""

    def __init__(self, store: SecretStore, arn: str, *, clock: Optional[Callable[[], float]] = None) -> None:
        self._store, self._arn = store, arn
        self._clock = clock or time.monotonic
        self._fetched_at = self._clock()

    def load(self, *, refresh: bool = False) -> Optional[List[str]]:
        """The secrets; with refresh, fetched again unless that happened
        within SIGNING_REFRESH_SECONDS (then None: "not now")."""
        now = self._clock()
        if refresh and now - self._fetched_at < SIGNING_REFRESH_SECONDS:
            return None
        self._fetched_at = now
        return signing_secrets(self._arn, self._store.get(self._arn, refresh=refresh))

    def due(self) -> Optional[List[str]]:
        """Fresh secrets when the ones in use are older than SIGNING_MAX_AGE_SECONDS.
        A failed fetch keeps the current ones and is tried again a minute later."""
        if self._clock() - self._fetched_at < SIGNING_MAX_AGE_SECONDS:
            return None
        try:
            return self.load(refresh=True)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - Secrets Manager unreachable: keep what we have
            self._fetched_at = self._clock() - SIGNING_MAX_AGE_SECONDS + SIGNING_REFRESH_SECONDS
            log.warning("could not refresh the signing secrets from %s (%s); using the current ones",
                        self._arn, type(exc).__name__)
            return None
