"""One typed method per endpoint of the messaging API, over httpx.

Errors are raised as ApiError (or a subclass per `Code`), carrying the
server's Code and Message. A call that is safe to repeat is retried on a
network error, 429 and 503, honouring Retry-After, with capped exponential
backoff; every call has explicit connect and read timeouts.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import httpx

DEFAULT_API = "http://127.0.0.1:8000"


class ApiError(Exception):
    """The server refused the call: its status, Code and Message."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: Optional[float] = None,
                 body: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after
        self.body = body or {}


class Offline(ApiError):
    """The server could not be reached (or did not answer in time)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "Offline", message)


class Unauthorized(ApiError):
    pass


class RateLimited(ApiError):
    pass


class ServiceUnavailable(ApiError):
    pass


class CursorAhead(ApiError):
    @property
    def newest_seq(self) -> int:
        return int(self.body.get("newest_seq", 0))


_BY_CODE = {"Unauthorized": Unauthorized, "RateLimited": RateLimited, "ServiceUnavailable": ServiceUnavailable,
            "CursorAhead": CursorAhead}
# Codes that say the call itself is wrong: retrying cannot help.
PERMANENT = {"BadRequest", "Unauthorized", "Forbidden", "Blocked", "NotAMember", "UserNotFound", "GroupNotFound",
             "GroupFull", "IdempotencyConflict", "PayloadTooLarge", "UnsupportedMediaType", "NotFound",
             "MethodNotAllowed", "CursorAhead"}


@dataclass(frozen=True)
class Registered:
    user_id: str
    user_name: str
    token: str


@dataclass(frozen=True)
class Sent:
    message_id: str
    sent_at: str
    duplicate: bool
    recipients: Optional[int] = None


@dataclass(frozen=True)
class Page:
    messages: List[Dict[str, Any]]
    next_after: int
    has_more: bool


@dataclass(frozen=True)
class Ticket:
    ticket: str
    expires_in: int
    url: Optional[str]  # None: the server offers no WebSocket


class Client:
    def __init__(self, api: str = DEFAULT_API, token: Optional[str] = None, *, timeout: float = 10.0,
                 connect_timeout: float = 3.0, retries: int = 4, backoff_cap: float = 30.0) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.retries = retries
        self.backoff_cap = backoff_cap
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._http = httpx.Client(base_url=self.api, timeout=self._timeout)

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ the endpoints

    def register(self, user_name: str) -> Registered:
        body = self._post("/register", {"user_name": user_name}, safe=False)
        return Registered(body["user_id"], body["user_name"], body["token"])

    def block(self, blocking_user_id: str, blocked_user_id: str, to_block: bool = True) -> bool:
        body = self._post("/block", {"blocking_user_id": blocking_user_id, "blocked_user_id": blocked_user_id,
                                     "to_block": int(to_block)})
        return bool(body["blocked"])

    def send(self, sending_user_id: str, receiving_user_id: str, message_text: str, *,
             client_message_id: Optional[str] = None, retries: Optional[int] = None) -> Sent:
        body = self._post("/send", {"sending_user_id": sending_user_id, "receiving_user_id": receiving_user_id,
                                    "message_text": message_text}, key=client_message_id,
                          safe=client_message_id is not None, retries=retries)
        return Sent(body["message_id"], body["sent_at"], body["duplicate"])

    def create_group(self, group_name: str) -> str:
        return self._post("/create_group", {"group_name": group_name}, safe=False)["group_id"]

    def update_group(self, user_id: str, group_id: str, to_be_added: bool = True) -> bool:
        body = self._post("/update_group", {"user_id": user_id, "group_id": group_id,
                                            "to_be_added": int(to_be_added)})
        return bool(body["member"])

    def send_group(self, sending_user_id: str, group_id: str, message_text: str, *,
                   client_message_id: Optional[str] = None, retries: Optional[int] = None) -> Sent:
        body = self._post("/send_group", {"sending_user_id": sending_user_id, "group_id": group_id,
                                          "message_text": message_text}, key=client_message_id,
                          safe=client_message_id is not None, retries=retries)
        return Sent(body["message_id"], body["sent_at"], body["duplicate"], body["recipients"])

    def read_messages(self, user_id: str, *, after: Optional[int] = None, min_timestamp: Optional[str] = None,
                      limit: Optional[int] = None, wait: Optional[int] = None) -> Page:
        params: Dict[str, Any] = {"user_id": user_id}
        for name, value in (("after", after), ("min_timestamp", min_timestamp), ("limit", limit), ("wait", wait)):
            if value is not None:
                params[name] = value
        # A long-poll may take `wait` seconds before it answers.
        body = self._post("/read_messages", params, read_timeout=self._timeout.read + (wait or 0))
        return Page(body["messages"], body["next_after"], body["has_more"])

    def connect_ticket(self, user_id: str) -> Ticket:
        body = self._post("/connect_ticket", {"user_id": user_id})
        return Ticket(body["ticket"], body["expires_in"], body["url"])

    def health(self) -> Dict[str, Any]:
        try:
            r = self._http.get("/health")
        except httpx.TransportError as exc:
            raise Offline(f"cannot reach {self.api} ({type(exc).__name__})") from None
        return r.json()

    # ------------------------------------------------------------------ one call

    def _post(self, path: str, params: Dict[str, Any], *, key: Optional[str] = None, safe: bool = True,
              retries: Optional[int] = None, read_timeout: Optional[float] = None) -> Dict[str, Any]:
        """POST with the parameters as a JSON body. `safe`: repeating the call
        cannot do it twice (reads, idempotent writes, sends with a key), so
        network errors and 503s are retried; 429s always are (nothing was done)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        timeout = self._timeout if read_timeout is None else httpx.Timeout(read_timeout, connect=self._timeout.connect)
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                r = self._http.post(path, json=params, headers=headers, timeout=timeout)
            except httpx.TransportError as exc:
                if safe and not last:
                    self._sleep(attempt, None)
                    continue
                raise Offline(f"cannot reach {self.api} ({type(exc).__name__})") from None
            if r.status_code < 400:
                return r.json()
            error = _error(r)
            retryable = error.status == 429 or (safe and error.status == 503)
            if retryable and not last:
                self._sleep(attempt, error.retry_after)
                continue
            raise error
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: Optional[float]) -> None:
        time.sleep(backoff(attempt, retry_after, base=0.25, cap=self.backoff_cap))


def backoff(attempt: int, retry_after: Optional[float] = None, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds before retry `attempt` (0, 1, ...): capped exponential with jitter,
    so many clients do not come back at once, and never sooner than Retry-After."""
    delay = min(cap, base * 2 ** attempt) * random.uniform(0.5, 1.0)
    return min(cap, max(delay, retry_after or 0))


def _error(r: httpx.Response) -> ApiError:
    try:
        body = r.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("Code") or f"HTTP{r.status_code}"
    message = body.get("Message") or r.reason_phrase
    retry_after = r.headers.get("Retry-After")
    return _BY_CODE.get(code, ApiError)(r.status_code, code, message,
                                        retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
                                        body=body)
