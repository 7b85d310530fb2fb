"""S3 for the attachment tests: a moto server of the run's own (server mode,
so the app's boto3 and a plain HTTP client such as httpx reach it the way
they reach S3), on a free port, and a fresh bucket per test.

moto answers S3's API (presigned POST and GET, HeadObject, DeleteObjects)
but does NOT enforce a POST policy's conditions: what the policy pins is
checked by decoding it, and what the app does with a non-conforming object
by putting one in the bucket directly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest

from tests.support.devserver import stop_group
from tests.support.servers import free_port, wait_until

# moto accepts any credentials; boto3 only needs some, and a region.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
STARTUP_DEADLINE_SECONDS = 30


def _binary() -> list:
    script = Path(sys.executable).with_name("moto_server")
    return [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]


class MotoServer:
    """`moto_server` on a free port of 127.0.0.1; `endpoint` once it answers."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: Optional[subprocess.Popen] = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {self.process.returncode}: {self.log()}")
        try:  # moto's own API: answers once the server serves requests
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def start(self) -> "MotoServer":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*_binary(), "-H", "127.0.0.1", "-p", str(self.port)], env={**os.environ, **AWS_ENV},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(self._answers, STARTUP_DEADLINE_SECONDS, f"moto_server on port {self.port} did not answer")
        except BaseException:
            self.stop()
            raise
        return self

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=AWS_ENV["AWS_DEFAULT_REGION"],
                            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, signal.SIGTERM)
            self.process = None


@dataclass(frozen=True)
class Bucket:
    name: str
    endpoint: str
    s3: Any  # a boto3 S3 client on the moto server

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.name, Key=key)
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def keys(self) -> list:
        answer = self.s3.list_objects_v2(Bucket=self.name)
        return sorted(o["Key"] for o in answer.get("Contents", []))

    @property
    def settings(self) -> Dict[str, str]:
        """The app's environment for this bucket."""
        return {"ATTACHMENTS_BUCKET": self.name, "ATTACHMENTS_S3_ENDPOINT": self.endpoint, **AWS_ENV}


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> Iterator[Bucket]:
    """A new, empty bucket for one test; emptied and removed after it."""
    s3 = moto_server.client()
    name = f"attachments-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield Bucket(name, moto_server.endpoint, s3)
    for key in Bucket(name, moto_server.endpoint, s3).keys():
        s3.delete_object(Bucket=name, Key=key)
    s3.delete_bucket(Bucket=name)
