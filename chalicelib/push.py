"""Pushing new messages to live WebSocket connections through API Gateway's
@connections management API (`POST /@connections/{id}`, boto3's
apigatewaymanagementapi): the same code posts locally, to `make run`'s
development server, and deployed.

Posting runs concurrently with a bounded total time and never fails or
retries: a frame that does not arrive is caught up by the client's cursor
(every frame carries its seq, so a client can also drop a duplicate).
Connections the API answers are gone (410) are handed back to be forgotten.

Deployed, the API's Lambda runs in a VPC without internet access, so it does
not post itself: it invokes the `push` Lambda (outside the VPC) asynchronously
through the VPC's Lambda endpoint, and that one posts (LambdaPusher).
"""
from __future__ import annotations

import functools
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, List, Mapping, Protocol, Sequence, Tuple

log = logging.getLogger(__name__)

Target = Tuple[str, str, int]  # user id, connection id, that user's seq of the event
WORKERS = 16


def frame(event: Mapping[str, Any], user_id: str, seq: int) -> str:
    """What one of the user's connections receives for a new event of its
    stream: {"type": "event", "event": ...}; a message the user received
    keeps the frame clients before the stream know, {"type": "message",
    "message": <the /read_messages item>}, with the event beside it."""
    from .usecases.results import read_item, shown_to  # the event's shapes live with the use cases

    own = {**event, "seq": seq}
    if shown_to(own, user_id):
        return json.dumps({"type": "message", "message": read_item(own), "event": own}, separators=(",", ":"))
    return json.dumps({"type": "event", "event": own}, separators=(",", ":"))


def management_url(websocket_url: str) -> str:
    """wss://{api}.execute-api.{region}.amazonaws.com/{stage} -> its https
    management endpoint (ws:// -> http:// for the development server)."""
    scheme, rest = websocket_url.split("://", 1)
    return ("https" if scheme == "wss" else "http") + "://" + rest.rstrip("/")


class Pusher(Protocol):
    """Posts frames to live connections within a time bound, never retrying;
    each method answers the (user id, connection id) pairs found gone."""

    def push(self, event: Mapping[str, Any], targets: Sequence[Target]) -> List[Tuple[str, str]]:
        """A new event's frame to each target, with that target's seq."""

    def post(self, posts: Sequence[Tuple[str, str, str]]) -> List[Tuple[str, str]]:
        """(user id, connection id, data) as they are."""

    def close(self, connection_ids: Sequence[str]) -> None:
        """Close these connections (their session was signed out)."""


class DirectPusher:
    """Posts itself (locally, and in the deployed `push` Lambda)."""

    def __init__(self, endpoint_url: str, *, timeout_seconds: float) -> None:
        self._endpoint = endpoint_url
        self._timeout = timeout_seconds
        self._client: Any = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="push")

    def _api(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3  # in the Lambda runtime; only loaded when pushing
                    from botocore.config import Config

                    self._client = boto3.client(
                        "apigatewaymanagementapi", endpoint_url=self._endpoint,
                        # One attempt: a retried post could arrive twice; the cursor catches up instead.
                        config=Config(connect_timeout=self._timeout, read_timeout=self._timeout,
                                      retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=WORKERS))
        return self._client

    def post(self, posts: Sequence[Tuple[str, str, str]]) -> List[Tuple[str, str]]:
        """Post (user id, connection id, data) within the time bound; the
        (user id, connection id) pairs found gone."""
        if not posts:
            return []
        api = self._api()
        gone_error = api.exceptions.GoneException

        def one(post: Tuple[str, str, str]) -> bool:
            try:
                api.post_to_connection(ConnectionId=post[1], Data=post[2].encode("utf-8"))
                return True
            except gone_error:
                return False

        started = time.monotonic()
        futures = {self._pool.submit(one, post): post for post in posts}
        done, late = wait(futures, timeout=self._timeout)
        gone, failed = [], len(late)
        for future in done:
            try:
                if not future.result():
                    gone.append(futures[future][:2])
            except Exception:  # noqa: BLE001 - a post that failed; the cursor catches up
                failed += 1
        for future in late:
            future.cancel()
        if failed:
            log.warning("push: %d of %d posts failed or were late (%.0f ms)", failed, len(posts),
                        (time.monotonic() - started) * 1000)
        return gone

    def push(self, event: Mapping[str, Any], targets: Sequence[Target]) -> List[Tuple[str, str]]:
        return self.post([(user, connection, frame(event, user, seq)) for user, connection, seq in targets])

    def close(self, connection_ids: Sequence[str]) -> None:
        """DELETE @connections/{id} each, within the time bound; one already gone is closed enough."""
        if not connection_ids:
            return
        api = self._api()

        def one(connection_id: str) -> None:
            try:
                api.delete_connection(ConnectionId=connection_id)
            except api.exceptions.GoneException:
                pass

        futures = [self._pool.submit(one, c) for c in connection_ids]
        done, late = wait(futures, timeout=self._timeout)
        failed = len(late) + sum(1 for f in done if f.exception() is not None)
        if failed:
            log.warning("push: %d of %d connections could not be closed", failed, len(connection_ids))


@functools.lru_cache(maxsize=None)
def _lambda_client(timeout_seconds: float) -> Any:
    """Made once per container (per timeout; there is one)."""
    import boto3
    from botocore.config import Config

    return boto3.client("lambda", config=Config(connect_timeout=timeout_seconds, read_timeout=timeout_seconds,
                                                retries={"max_attempts": 1, "mode": "standard"}))


def invoke_async(function_name: str, payload: Mapping[str, Any], *, timeout_seconds: float) -> None:
    """Invoke a Lambda asynchronously (InvocationType Event); a failure is
    logged, never raised: pushing never fails a send."""
    try:
        _lambda_client(timeout_seconds).invoke(FunctionName=function_name, InvocationType="Event",
                                               Payload=json.dumps(payload, separators=(",", ":")).encode())
    except Exception as exc:  # noqa: BLE001
        log.warning("push: invoking %s failed (%s)", function_name, type(exc).__name__)


class LambdaPusher:
    """Hands the posting to the `push` Lambda, asynchronously (deployed)."""

    MAX_TARGETS_PER_INVOKE = 2000  # keeps each event far below Lambda's asynchronous payload limit

    def __init__(self, function_name: str, endpoint_url: str, *, timeout_seconds: float) -> None:
        self._function = function_name
        self._endpoint = endpoint_url
        self._timeout = timeout_seconds

    def push(self, event: Mapping[str, Any], targets: Sequence[Target]) -> List[Tuple[str, str]]:
        step = self.MAX_TARGETS_PER_INVOKE
        for start in range(0, len(targets), step):
            invoke_async(self._function, {"endpoint": self._endpoint, "item": dict(event),
                                          "targets": [list(t) for t in targets[start:start + step]]},
                         timeout_seconds=self._timeout)
        return []  # the push Lambda has the gone connections forgotten itself

    def post(self, posts: Sequence[Tuple[str, str, str]]) -> List[Tuple[str, str]]:
        invoke_async(self._function, {"endpoint": self._endpoint, "posts": [list(p) for p in posts]},
                     timeout_seconds=self._timeout)
        return []

    def close(self, connection_ids: Sequence[str]) -> None:
        if connection_ids:
            invoke_async(self._function, {"endpoint": self._endpoint, "close": list(connection_ids)},
                         timeout_seconds=self._timeout)
