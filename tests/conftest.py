"""Shared fixtures. Integration tests run once per backend: the embedded
SQLite default and a real MariaDB (a fresh database per run, dropped after)."""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Optional
from urllib.parse import quote, urlencode

import pytest
from chalice.config import Config
from chalice.local import LocalChalice, LocalGateway, LocalGatewayException
from chalice.test import HTTPResponse

TEST_AUTH_SECRET = "test-signing-secret-0123456789abcdef"


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """A new, migrated MariaDB database for this run."""
    from tests.support.mysql import fresh_database

    with fresh_database("messaging_test") as (url, _):
        yield url


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A redis-server of the run's own (the suite never needs the one on 6379)."""
    from tests.support.servers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("session-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'messaging.sqlite3'}"


@pytest.fixture(params=["sqlite", "mysql"], scope="session")
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def app_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dict[str, str]]:
    """The app's environment for one test; the service is rebuilt from it."""
    from chalicelib import wiring

    env = {"DATABASE_URL": database_url, "AUTH_SECRET": TEST_AUTH_SECRET, "AUTH_MODE": "token"}
    for name in ("REDIS_URL", "MAX_GROUP_MEMBERS", "DB_SECRET_ARN", "AUTH_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    yield env
    wiring.reset()


@dataclass
class Resp:
    status: int
    body: Any
    headers: Dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> Optional[str]:
        return self.body.get("Code") if isinstance(self.body, dict) else None


@dataclass(frozen=True)
class User:
    id: str
    name: str
    token: str


class Api:
    """Thin helper over chalice.test.Client speaking the API's conventions."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def post(self, path: str, params: Optional[Dict[str, Any]] = None, *, token: Optional[str] = None,
             json_body: Any = None, form: Optional[Dict[str, Any]] = None, raw_body: Optional[bytes] = None,
             headers: Optional[Dict[str, str]] = None) -> Resp:
        url = path + ("?" + urlencode(params, doseq=True, quote_via=quote) if params else "")
        hdrs = dict(headers or {})
        body = b""
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            hdrs.setdefault("Content-Type", "application/json")
            body = json.dumps(json_body).encode()
        elif form is not None:
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
            body = urlencode(form, doseq=True).encode()
        elif raw_body is not None:
            body = raw_body
        r = self.client.http.post(url, headers=hdrs, body=body)
        return Resp(r.status_code, json.loads(r.body) if r.body else None, dict(r.headers))

    def get(self, path: str) -> Resp:
        r = self.client.http.get(path)
        return Resp(r.status_code, json.loads(r.body) if r.body else None, dict(r.headers))

    # -- the use cases, asserting success -----------------------------------

    def register(self, name: str = "alice") -> User:
        r = self.post("/register", {"user_name": name})
        assert r.status == 201, r
        return User(r.body["user_id"], r.body["user_name"], r.body["token"])

    def send(self, sender: User, recipient: User, text: str = "hi", **extra: Any) -> Resp:
        return self.post("/send", {"sending_user_id": sender.id, "receiving_user_id": recipient.id,
                                   "message_text": text, **extra}, token=sender.token)

    def create_group(self, creator: User, name: str = "bambis") -> str:
        r = self.post("/create_group", {"group_name": name}, token=creator.token)
        assert r.status == 201, r
        return r.body["group_id"]

    def join(self, user: User, group_id: str, to_be_added: int = 1) -> Resp:
        return self.post("/update_group", {"user_id": user.id, "group_id": group_id, "to_be_added": to_be_added},
                         token=user.token)

    def send_group(self, sender: User, group_id: str, text: str = "hello_group", **extra: Any) -> Resp:
        return self.post("/send_group", {"sending_user_id": sender.id, "group_id": group_id,
                                         "message_text": text, **extra}, token=sender.token)

    def block(self, blocker: User, blocked: User, to_block: int = 1) -> Resp:
        return self.post("/block", {"blocking_user_id": blocker.id, "blocked_user_id": blocked.id,
                                    "to_block": to_block}, token=blocker.token)

    def read(self, user: User, **params: Any) -> Resp:
        if "min_timestamp" not in params:
            params.setdefault("after", 0)
        return self.post("/read_messages", {"user_id": user.id, **params}, token=user.token)

    def read_all(self, user: User, after: int = 0, limit: int = 1000) -> list:
        """Every message after `after`, page by page, through the cursor."""
        messages = []
        while True:
            r = self.read(user, after=after, limit=limit)
            assert r.status == 200, r
            messages += r.body["messages"]
            after = r.body["next_after"]
            if not r.body["has_more"]:
                return messages

    def sync_all(self, user: User, after: int = 0) -> list:
        """Every event of the user's stream after `after`, through /sync."""
        events = []
        while True:
            r = self.post("/sync", {"after": after, "limit": 1000}, token=user.token)
            assert r.status == 200, r
            events += r.body["events"]
            after = r.body["next_after"]
            if not r.body["has_more"]:
                return events


@pytest.fixture
def api(app_env: Dict[str, str]) -> Iterator[Api]:
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        yield Api(client)


# --------------------------------------------------------------------------- many threads at once
# chalice.test.Client swaps the process-wide os.environ per request, which
# races between threads, and a plain Chalice app keeps `current_request` in
# one attribute. Threads therefore go through chalice.local.LocalGateway
# (what `chalice local` runs per request thread) on an app that, for the
# test, has the thread-local `current_request` of `chalice local`.


class GatewayHttp:
    """The `client.http` interface of chalice.test.Client, without its
    os.environ swapping, so several threads can use it at once."""

    def __init__(self, app: Any) -> None:
        self._gateway = LocalGateway(app, Config.create())

    def request(self, method: str, path: str, headers: Dict[str, str] = None, body: bytes = b"") -> HTTPResponse:
        try:
            response = self._gateway.handle_request(method=method, path=path, headers=headers or {}, body=body)
        except LocalGatewayException as e:
            return HTTPResponse(headers=e.headers, body=e.body or b"", status_code=e.CODE)
        return HTTPResponse.create_from_dict(response)

    def post(self, path: str, **kwargs: Any) -> HTTPResponse:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> HTTPResponse:
        return self.request("GET", path, **kwargs)


class GatewayClient:
    def __init__(self, app: Any) -> None:
        self.http = GatewayHttp(app)


@contextmanager
def thread_local_requests(app: Any) -> Iterator[None]:
    original = app.__class__
    app.__class__ = type("ThreadLocalRequestChalice", (LocalChalice, original), {})
    try:
        yield
    finally:
        app.__class__ = original


@pytest.fixture
def tapi(api):
    """The `api` helper (same environment and backend), callable from many threads."""
    from app import app

    with thread_local_requests(app):
        yield type(api)(GatewayClient(app))


