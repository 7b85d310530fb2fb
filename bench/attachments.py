"""Attachments against S3 (a moto server on loopback): /upload_url, /send
carrying 1 and 3 uploads, /download_url by the recipient, and a plain /send
of the same users beside them, so what the attachments add is visible.

Every upload a send carries is made before that call, untimed: /upload_url,
then the form POSTed to moto as a browser would. The timed /send then asks
the store for each file (CopyObject + HeadObject: `Attaching.ready`).

S3 requests are not in the bench's counters (chalicelib.metering counts the
database and Redis); they are counted here with a botocore `before-send`
hook on the app's own S3 client, per timed call (warm-up calls included:
the count is the same for every call). moto (Python, on loopback) takes
about 4 ms a request on the bench's VM; S3 from a Lambda takes ~10-50 ms
(CopyObject the most), so there each S3 request adds several times more.

`make bench` would run it as
    with attachments.start_s3() as endpoint:
        results["attachments"] = attachments.run(bench, **counts, s3_endpoint=endpoint)
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from endpoints import poll_once, register
from harness import Bench, Case

BUCKET = "bench-attachments"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x01\x02pixels" * 100  # 1,008 bytes, declared as 3 KB
DECLARED_BYTES = 3 * 1024


def _aws_env() -> Dict[str, Optional[str]]:
    """Fake credentials and a region for boto3 (moto takes any); a
    developer's own AWS profile and session token are kept out."""
    from tests.support.s3 import AWS_ENV

    return {**AWS_ENV, "AWS_REGION": AWS_ENV["AWS_DEFAULT_REGION"], "AWS_SESSION_TOKEN": None,
            "AWS_SECURITY_TOKEN": None, "AWS_PROFILE": None}


def _ensure_bucket(endpoint: str) -> None:
    import boto3
    from botocore.exceptions import ClientError

    from tests.support.s3 import AWS_ENV

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=AWS_ENV["AWS_DEFAULT_REGION"],
                      aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    try:
        s3.head_bucket(Bucket=BUCKET)
    except ClientError:
        s3.create_bucket(Bucket=BUCKET)


@contextlib.contextmanager
def start_s3() -> Iterator[str]:
    """A moto server of the bench's own on a free port, with the bench's
    bucket; yields its endpoint and stops it after."""
    from tests.support.s3 import MotoServer

    with tempfile.TemporaryDirectory(prefix="bench-moto-") as folder:
        server = MotoServer(Path(folder) / "moto.log").start()
        try:
            _ensure_bucket(server.endpoint)
            yield server.endpoint
        finally:
            server.stop()


class S3Requests:
    """HTTP requests the app's S3 client sends while a timed call runs
    (botocore's `before-send` fires once per attempt, retries included)."""

    def __init__(self) -> None:
        self.on = False
        self.calls = 0
        self.requests: Dict[str, int] = {}  # by operation
        self._watched: Any = None  # the client hooked (held, so it is never another one at its address)

    def watch(self) -> None:
        """Hook the client of the app's current S3 store (a new one after
        each wiring.reset, made lazily by the store itself)."""
        from chalicelib import wiring

        storage = wiring.service().attaching._deps.storage
        client = storage._s3()  # made now, untimed, as a warm container already has it
        if self._watched is not client:
            client.meta.events.register("before-send.s3", self._sent)
            self._watched = client

    def _sent(self, event_name: str = "", **_: Any) -> None:
        if self.on:
            operation = event_name.rsplit(".", 1)[-1]
            self.requests[operation] = self.requests.get(operation, 0) + 1

    def counted(self, request: Callable[[int], Dict[str, Any]]) -> Callable[[int], Dict[str, Any]]:
        def call(i: int) -> Dict[str, Any]:
            self.on = True
            try:
                return request(i)
            finally:
                self.on = False
                self.calls += 1
        return call

    def per_call(self) -> Dict[str, Any]:
        total = sum(self.requests.values())
        return {"s3_requests_per_call": round(total / self.calls, 2) if self.calls else 0.0,
                "s3_requests_by_operation": dict(sorted(self.requests.items()))}


def run(bench: Bench, *, rounds: int, calls: int, warmup: int, s3_endpoint: str) -> Dict[str, Dict[str, Any]]:
    import httpx

    env: Dict[str, Optional[str]] = {"ATTACHMENTS_BUCKET": BUCKET, "ATTACHMENTS_S3_ENDPOINT": s3_endpoint,
                                     **_aws_env()}
    saved = {name: os.environ.get(name) for name in env}
    _ensure_bucket(s3_endpoint)
    bench.use_env(env)
    form_poster = httpx.Client(timeout=30)
    try:
        alice, bob = register(bench, "attaching alice"), register(bench, "attaching bob")
        for user in (alice, bob):
            poll_once(bench, user)

        def uploaded(user: Dict[str, Any]) -> str:
            """An upload stored in the bucket (the browser's form POST): its attachment id."""
            r = bench.call("/upload_url", {"content_type": "image/png", "size": DECLARED_BYTES,
                                           "file_name": "bench.png"}, user["token"])
            assert r["statusCode"] == 200, r
            upload = r["json"]["upload"]
            stored = form_poster.post(upload["url"], data=upload["fields"],
                                      files={"file": ("bench.png", PNG, "image/png")})
            assert stored.status_code in (200, 201, 204), stored.text
            return r["json"]["attachment_id"]

        def send(attachment_ids: List[str], i: int) -> Dict[str, Any]:
            params = {"sending_user_id": alice["user_id"], "receiving_user_id": bob["user_id"],
                      "message_text": f"with {len(attachment_ids)} files {i}"}
            if attachment_ids:
                params["attachment_ids"] = ",".join(attachment_ids)
            return bench.call("/send", params, alice["token"])

        held = uploaded(alice)
        r = send([held], -1)
        assert r["statusCode"] == 201, r

        pending: Dict[str, List[str]] = {}

        def upload_before(case: str, n: int) -> Callable[[int], None]:
            def before(i: int) -> None:
                pending[case] = [uploaded(alice) for _ in range(n)]
            return before

        def nothing(i: int) -> None:
            pass

        counters: Dict[str, S3Requests] = {}

        def case(name: str, request: Callable[[int], Dict[str, Any]], before: Callable[[int], None],
                 expect: int = 200) -> Case:
            counters[name] = S3Requests()
            counted = counters[name]

            def before_watched(i: int) -> None:
                before(i)
                counted.watch()

            return Case(name, counted.counted(request), expect=expect, before=before_watched, env=env)

        cases = [
            case("upload_url (image/png, 3 KB)", lambda i: bench.call("/upload_url", {
                "content_type": "image/png", "size": DECLARED_BYTES, "file_name": f"bench{i}.png"}, alice["token"]),
                nothing),
            case("send (no attachment)", lambda i: send([], i), nothing, expect=201),
            case("send with 1 attachment (direct)", lambda i: send(pending["one"], i),
                 upload_before("one", 1), expect=201),
            case("send with 3 attachments (direct)", lambda i: send(pending["three"], i),
                 upload_before("three", 3), expect=201),
            case("download_url (recipient)", lambda i: bench.call("/download_url", {"attachment_id": held},
                                                                  bob["token"]), nothing),
        ]
        results = bench.run(cases, rounds=rounds, calls=calls, warmup=warmup, label="attachments ")
        for name, result in results.items():
            result.update(counters[name].per_call())
            print(f"  {name:42s} S3 requests {result['s3_requests_per_call']:5.2f} a call "
                  f"{result['s3_requests_by_operation'] or ''}", flush=True)
        return results
    finally:
        form_poster.close()
        bench.use_env(saved)  # the settings as they were: later parts run without S3 or AWS credentials
