"""Every wait fits the Lambda invocation's remaining time: with little time
left, a send blocked on a locked row and a database that never answers are
both answered with the app's own 503 and Retry-After before the deadline,
never left for Lambda's timeout (API Gateway's bare 502/504)."""
from __future__ import annotations

import socket
import time
from typing import Iterator

import pytest

from chalicelib import wiring
from chalicelib.auth import TokenSigner
from tests.conftest import TEST_AUTH_SECRET
from tests.support.lambda_events import invoke

REMAINING_MS = 3000  # what the invocation has left when it starts


@pytest.fixture
def lambda_app(app_env) -> Iterator:
    from app import app

    yield app


def _unavailable_in_time(response, elapsed: float) -> None:
    assert response["statusCode"] == 503, response
    assert response["json"]["Code"] == "ServiceUnavailable"
    assert response["headers"]["Retry-After"].isdigit()
    assert elapsed < REMAINING_MS / 1000, elapsed  # answered before the invocation's deadline


@pytest.fixture
def database_url(mysql_url: str) -> str:
    """Row locks that wait are MariaDB's (SQLite takes the whole file)."""
    return mysql_url


def test_a_send_blocked_on_a_locked_counter_row_answers_503_before_the_deadline(lambda_app, mysql_url):
    from tests.support.mysql import connect

    alice = invoke(lambda_app, "/register", {"user_name": "alice"})["json"]
    bob = invoke(lambda_app, "/register", {"user_name": "bob"})["json"]
    holder = connect(mysql_url, autocommit=False)
    try:
        holder.cursor().execute("SELECT last_seq FROM inbox_counters WHERE user_id = %s FOR UPDATE",
                                (bob["user_id"],))
        started = time.monotonic()
        blocked = invoke(lambda_app, "/send", {"sending_user_id": alice["user_id"], "receiving_user_id": bob["user_id"],
                                               "message_text": "waits for the lock", "client_message_id": "k1"},
                         alice["token"], remaining_ms=REMAINING_MS)
        _unavailable_in_time(blocked, time.monotonic() - started)
    finally:
        holder.rollback()
        holder.close()
    # The lock is gone: the retry with the same key sends it, once.
    again = invoke(lambda_app, "/send", {"sending_user_id": alice["user_id"], "receiving_user_id": bob["user_id"],
                                         "message_text": "waits for the lock", "client_message_id": "k1"},
                   alice["token"])
    assert again["statusCode"] == 201, again
    page = invoke(lambda_app, "/read_messages", {"user_id": bob["user_id"], "after": 0}, bob["token"])["json"]
    assert [m["text"] for m in page["messages"]] == ["waits for the lock"]


def test_a_database_that_accepts_but_never_answers_is_a_503_before_the_deadline(monkeypatch):
    from app import app

    for name in ("REDIS_URL", "DB_SECRET_ARN", "AUTH_SECRET_ARN", "DB_READ_TIMEOUT", "DB_CONNECT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)  # the 10 s defaults: only the budget can cut them short
    monkeypatch.setenv("AUTH_SECRET", TEST_AUTH_SECRET)
    user = "00000000-0000-4000-8000-000000000001"
    token = TokenSigner([TEST_AUTH_SECRET]).issue(user, user)
    with socket.socket() as silent:  # the kernel completes the handshake; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        monkeypatch.setenv("DATABASE_URL", f"mysql://root@127.0.0.1:{silent.getsockname()[1]}/messaging")
        wiring.reset()
        try:
            started = time.monotonic()
            response = invoke(app, "/read_messages", {"user_id": user, "after": 0}, token, remaining_ms=REMAINING_MS)
            _unavailable_in_time(response, time.monotonic() - started)
        finally:
            wiring.reset()
