"""A setting or secret the app cannot run with fails clearly: one log line
names the variable or secret and the rule, never its value, and the request
answers 500 with a request id."""
from __future__ import annotations

import json
import logging
from typing import Iterator

import pytest

from chalicelib import wiring
from chalicelib.settings import ConfigError, Settings
from tests.conftest import TEST_AUTH_SECRET
from tests.support.lambda_events import invoke
from tests.support.secretsmanager import SecretsManager

DB_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:messaging-db-AbCdEf"


@pytest.fixture
def secrets_manager(monkeypatch) -> Iterator[SecretsManager]:
    server = SecretsManager().start()
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()


def _first_request_fails_with_one_config_line(app, caplog) -> tuple:
    """A request on a service built from the environment as set: it answers
    500 with a request id and logs one configuration-error line; both returned."""
    wiring.reset()
    caplog.set_level(logging.INFO)
    try:
        response = invoke(app, "/register", {"user_name": "shir"})
    finally:
        wiring.reset()
    assert response["statusCode"] == 500 and response["json"]["Code"] == "InternalServerError", response
    request_id = response["json"]["Message"].rsplit(" ", 1)[1]
    [line] = [r.getMessage() for r in caplog.records if "configuration error" in r.getMessage()]
    return request_id, line


@pytest.mark.parametrize("secret, field", [
    (json.dumps(["admin", "hunter2-password"]), "a JSON object"),
    (json.dumps({"username": "admin", "pass": "hunter2-password"}), "'password'"),
])
def test_a_database_secret_of_the_wrong_shape_logs_its_arn_and_field_and_answers_500(
        secrets_manager, monkeypatch, caplog, mysql_url, secret, field):
    from app import app

    secrets_manager.secrets[DB_ARN] = secret
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "messaging-test")
    monkeypatch.setenv("DATABASE_URL", mysql_url)
    monkeypatch.setenv("DB_SECRET_ARN", DB_ARN)
    monkeypatch.setenv("AUTH_SECRET", TEST_AUTH_SECRET)
    monkeypatch.delenv("REDIS_URL", raising=False)
    request_id, line = _first_request_fails_with_one_config_line(app, caplog)
    assert line.startswith(f"configuration error request_id={request_id}: secret {DB_ARN}") and field in line, line
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "hunter2" not in logged and "admin" not in logged
    assert secrets_manager.requests == [DB_ARN]


def test_auth_mode_none_is_refused_in_lambda_without_the_second_switch():
    lambda_env = {"AWS_LAMBDA_FUNCTION_NAME": "messaging-prod", "AUTH_MODE": "none"}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(lambda_env)
    assert "AUTH_MODE_NONE_IN_LAMBDA=allow" in str(err.value)
    assert not Settings.from_env({**lambda_env, "AUTH_MODE_NONE_IN_LAMBDA": "allow"}).auth_enabled
    assert not Settings.from_env({"AUTH_MODE": "none"}).auth_enabled  # locally: one switch is enough


@pytest.mark.parametrize("name, value, rule", [
    ("DB_READ_TIMEOUT", "ten-secret-seconds", "DB_READ_TIMEOUT must be a number of seconds"),
    ("CACHE_SIZE", "99999999", "CACHE_SIZE must be between 1 and 10000"),
    ("AUTH_MODE", "sekrit-mode", "AUTH_MODE must be 'token' or 'none'"),
])
def test_a_bad_setting_is_named_with_its_rule_and_never_its_value(name, value, rule):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: value})
    assert str(err.value) == rule and value not in str(err.value)


def test_in_lambda_a_bad_setting_makes_the_first_request_log_one_line_and_answer_500_with_a_request_id(
        monkeypatch, caplog, tmp_path):
    from app import app

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "messaging-test")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.setenv("AUTH_SECRET", "too-short")
    request_id, line = _first_request_fails_with_one_config_line(app, caplog)
    assert line == (f"configuration error request_id={request_id}: "
                    "AUTH_SECRET: each token signing secret must be at least 16 characters")
    assert "too-short" not in "\n".join(r.getMessage() for r in caplog.records)
