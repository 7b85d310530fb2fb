"""Bearer tokens: HMAC-SHA256 over the user and the session, tagged with a
key id.

A token is `v2.<kid>.<user_id>.<session_id>.<signature>`. It is checked with
the key named by `kid`, so several keys can be accepted at once while the
first one signs: rotation adds a key in front, and dropping an old key
revokes its tokens. The signature needs no database round trip; whether the
session is still live is sessions.py's question. A token issued before
sessions, `v1.<kid>.<user_id>.<signature>`, still verifies: it stands for
the session whose id is the user's own (migration 0004 made one for every
user of then), so it is signed out like any other.

A WebSocket connect ticket is
`w2.<kid>.<user_id>.<session_id>.<expires>.<nonce>.<signature>`, signed by
the same keys over a payload of its own kind (so a token can never pass for
a ticket or back): it names one user and session, expires within
TICKET_SECONDS (it travels in a URL, where a long-lived token would end up
in logs), and its nonce lets it be used once (usecases/live.py).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as _secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

from .errors import Unauthorized
from .params import parse_id
from .settings import ConfigError, private_dir

VERSION = "v2"
LEGACY_VERSION = "v1"  # tokens from before sessions
TICKET_VERSION = "w2"
TICKET_SECONDS = 60  # the longest a connect ticket lives
MIN_SECRET_CHARS = 16


@dataclass(frozen=True)
class Identity:
    """Whom a token speaks for: a user, on one of the user's sessions (devices)."""

    user_id: str
    session_id: str


@dataclass(frozen=True)
class ConnectTicket:
    user_id: str
    session_id: str
    nonce: str  # used once: usecases/live.py
    expires: int  # epoch seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_id(secret: str) -> str:
    """A short public name for a secret that reveals nothing about it."""
    return _b64(hashlib.sha256(b"kid\x00" + secret.encode("utf-8")).digest())[:8]


class TokenSigner:
    def __init__(
        self,
        secrets: Sequence[str],
        *,
        reload: Optional[Callable[[], Optional[Sequence[str]]]] = None,
        due: Optional[Callable[[], Optional[Sequence[str]]]] = None,
    ) -> None:
        """`reload`, if given, is asked for the current secrets when a token
        names an unknown key id (a key added by rotation elsewhere); `due`
        before every issue and verify, for secrets that are due to be
        refreshed (a key removed by rotation). Either may answer None: "not now"."""
        self._reload = reload
        self._due = due
        self._use(secrets)

    def _refresh_if_due(self) -> None:
        if self._due is not None:
            fresh = self._due()
            if fresh:
                self._use(fresh)

    def _use(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ConfigError("no token signing secret configured")
        for secret in secrets:
            if len(secret) < MIN_SECRET_CHARS:
                raise ConfigError(f"each token signing secret must be at least {MIN_SECRET_CHARS} characters")
        self._keys: Dict[str, bytes] = {key_id(s): s.encode("utf-8") for s in secrets}
        self._signing_kid = key_id(secrets[0])

    def _signature(self, kid: str, payload: str) -> bytes:
        return _b64(hmac.new(self._keys[kid], payload.encode("ascii"), hashlib.sha256).digest()).encode("ascii")

    def issue(self, user_id: str, session_id: str) -> str:
        self._refresh_if_due()
        payload = f"{VERSION}.{self._signing_kid}.{user_id}.{session_id}"
        return f"{payload}.{self._signature(self._signing_kid, payload).decode('ascii')}"

    def verify(self, token: str) -> Identity:
        """The user and session a token was issued to; Unauthorized for anything else."""
        self._refresh_if_due()
        parts = token.split(".")
        if len(parts) in (4, 5) and parts[1] not in self._keys and self._reload is not None:
            fresh = self._reload()
            if fresh:
                self._use(fresh)
        legacy = len(parts) == 4 and parts[0] == LEGACY_VERSION
        if not (legacy or (len(parts) == 5 and parts[0] == VERSION)) or parts[1] not in self._keys:
            raise Unauthorized("invalid token")
        kid, ids, signature = parts[1], parts[2:-1], parts[-1]
        try:
            if any(parse_id("token", part) != part for part in ids):
                raise ValueError
        except Exception:
            raise Unauthorized("invalid token") from None
        given = signature.encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(self._signature(kid, ".".join(parts[:-1])), given):
            raise Unauthorized("invalid token")
        return Identity(user_id=ids[0], session_id=ids[-1])  # legacy: the session is the user's own id

    def issue_ticket(self, user_id: str, session_id: str, *, now: Optional[float] = None) -> str:
        self._refresh_if_due()
        kid = self._signing_kid
        expires = int(time.time() if now is None else now) + TICKET_SECONDS
        payload = f"{TICKET_VERSION}.{kid}.{user_id}.{session_id}.{expires}.{_secrets.token_urlsafe(12)}"
        return f"{payload}.{self._ticket_signature(kid, payload)}"

    def verify_ticket(self, ticket: str, *, now: Optional[float] = None) -> ConnectTicket:
        """What a connect ticket names; Unauthorized when it is forged,
        expired or claims to live longer than TICKET_SECONDS."""
        self._refresh_if_due()
        parts = ticket.split(".")
        if len(parts) != 7 or parts[0] != TICKET_VERSION or parts[1] not in self._keys or not parts[4].isdigit():
            raise Unauthorized("invalid connect ticket")
        _, kid, user_id, session_id, expires, nonce, signature = parts
        given = signature.encode("utf-8", "surrogateescape")
        expected = self._ticket_signature(kid, ".".join(parts[:6])).encode("ascii")
        if not hmac.compare_digest(expected, given):
            raise Unauthorized("invalid connect ticket")
        left = int(expires) - (time.time() if now is None else now)
        if left <= 0 or left > TICKET_SECONDS:
            raise Unauthorized("expired connect ticket: ask for a new one")
        try:
            return ConnectTicket(parse_id("ticket", user_id), parse_id("ticket", session_id), nonce, int(expires))
        except Exception:
            raise Unauthorized("invalid connect ticket") from None

    def _ticket_signature(self, kid: str, payload: str) -> str:
        return _b64(hmac.new(self._keys[kid], b"ticket\x00" + payload.encode("utf-8"), hashlib.sha256).digest())

    def identity_from_header(self, authorization: Optional[str]) -> Identity:
        if not authorization:
            raise Unauthorized("missing Authorization: Bearer <token> header", token_given=False)
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        return self.verify(token.strip())


def development_secret(data_dir: Path) -> str:
    """A random secret kept in the git-ignored data folder, so local tokens
    survive restarts of `make run`. Never used in Lambda."""
    path = data_dir / "auth_secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        private_dir(data_dir)
        secret = _secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return secret
