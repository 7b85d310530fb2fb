"""Secrets from AWS Secrets Manager: fetched once per container and cached,
fetched again when a credential is refused (so rotation needs no redeploy)."""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

# How often an unknown token key id may trigger a refetch of the signing secrets.
SIGNING_REFRESH_SECONDS = 60.0


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


def database_credentials(value: str) -> Tuple[str, str]:
    """(username, password) of an RDS-managed master secret."""
    data = _json_or_text(value)
    return data["username"], data["password"]


def redis_password(value: str) -> Tuple[Optional[str], str]:
    """(username or None, password) from a plain auth token or a JSON secret."""
    data = _json_or_text(value)
    if isinstance(data, str):
        return None, data
    return data.get("username"), data.get("auth_token") or data["password"]


def signing_secrets(value: str) -> List[str]:
    """Token signing secrets, newest first: whitespace-separated text, or JSON
    {"secrets": [...]}."""
    data = _json_or_text(value)
    return list(data["secrets"]) if isinstance(data, dict) else data.split()


class RefreshingSigningSecrets:
    """Signing secrets behind an ARN; an unknown key id refetches them, at most
    once a minute, so a key added by rotation is picked up without a restart."""

    def __init__(self, store: SecretStore, arn: str) -> None:
        self._store, self._arn = store, arn
        self._fetched_at = 0.0

    def load(self, *, refresh: bool = False) -> Optional[List[str]]:
        now = time.monotonic()
        if refresh and now - self._fetched_at < SIGNING_REFRESH_SECONDS:
            return None
        self._fetched_at = now
        return signing_secrets(self._store.get(self._arn, refresh=refresh))
